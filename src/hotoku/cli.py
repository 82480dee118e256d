"""The ``hotoku`` command line: ``hotoku <noun> <verb>``."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from hotoku.cli_energy import register as register_energy
from hotoku.cli_twin import register as register_twin
from hotoku.settings import Settings, get_settings

app = typer.Typer(help="hotoku: a city OS for zero-carbon digital towns.", no_args_is_help=True)
bench_app = typer.Typer(help="Measure a district; prints a table, or JSON with --json.", no_args_is_help=True)
token_app = typer.Typer(help="Credentials for the NGSI-LD API.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(token_app, name="token")
register_twin(app, bench_app)
register_energy(app, bench_app)


def _migrate(settings: Settings) -> None:
    from hotoku.broker.store.sql import SqlStore

    store = SqlStore(settings.resolved_database_url())
    try:
        store.migrate()
    finally:
        store.dispose()


def _run_server(settings: Settings, workers: int) -> None:
    import uvicorn

    _migrate(settings)  # once, before the workers start
    if workers > 1:
        os.environ["HOTOKU_ADMIN_TOKEN"] = settings.admin_token or ""
        os.environ["HOTOKU_JWT_SECRET"] = settings.jwt_secret or ""
        uvicorn.run("hotoku.app:create_app", factory=True, host=settings.host, port=settings.port,
                    workers=workers, log_level="warning", access_log=False)
    else:
        from hotoku.app import create_app

        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning",
                    access_log=False)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Run the NGSI-LD API server."""
    from hotoku.app import with_secrets

    base = get_settings().model_copy(update={k: v for k, v in {"host": host, "port": port}.items() if v})
    settings, _ = with_secrets(base)
    _run_server(settings, workers or settings.workers)


@app.command()
def up(
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run everything on embedded defaults (SQLite in ./data) and print how to use it."""
    from hotoku.app import ADMIN_TOKEN_FILE, with_secrets

    base = get_settings().model_copy(update={"port": port} if port else {})
    settings, created = with_secrets(base)
    url = f"http://{settings.host}:{settings.port}/ngsi-ld/v1"
    db = settings.resolved_database_url()
    token_src = ("HOTOKU_ADMIN_TOKEN" if get_settings().admin_token else
                 f"{settings.data_dir / ADMIN_TOKEN_FILE} ({'created now' if created else 'kept from before'})")
    typer.echo(f"""hotoku is starting on embedded defaults
  NGSI-LD API : {url}   (OpenAPI: http://{settings.host}:{settings.port}/openapi.json)
  database    : {db}
  admin token : {settings.admin_token}
                from {token_src}
  try it      : curl -H 'Authorization: Bearer {settings.admin_token}' -H 'Content-Type: application/json' \\
                  -d '{{"id":"urn:ngsi-ld:Building:odawara:hall","type":"Building","floors":5}}' {url}/entities
                curl '{url}/entities?type=Building'
Reads of open data are anonymous (HOTOKU_ANONYMOUS_READ=false to require a token); writes need the token.""")
    stop = None
    if settings.twin_enabled:
        from hotoku.live import start_live_town

        _migrate(settings)
        stop = start_live_town(settings, url.removesuffix("/ngsi-ld/v1"))
        typer.echo(f"""  town twin   : {settings.twin_scenario} live at {settings.twin_speed:g}x real time, controller \
{settings.twin_controller}
                curl '{url}/entities?type=TownEnergyStatus&options=keyValues'""")
    typer.echo("Press Ctrl+C to stop.")
    try:
        _run_server(settings, 1)
    finally:
        if stop is not None:
            stop.set()


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Who the key is for, e.g. 'kuno-pv-gateway'.")],
    role: Annotated[str, typer.Option(help="operator, service, device, resident or reader.")] = "service",
    tenant: Annotated[list[str], typer.Option(help="Tenant the key is bound to; repeat; '*' for all.")] = ["*"],  # noqa: B006
) -> None:
    """Create an API key (printed once; only its hash is stored)."""
    from hotoku.app import with_secrets
    from hotoku.broker.auth import Authenticator
    from hotoku.broker.store.sql import SqlStore

    settings, _ = with_secrets(get_settings())
    store = SqlStore(settings.resolved_database_url())
    store.migrate()
    auth = Authenticator(store, admin_token=None, jwt_secret=settings.jwt_secret or "", anonymous_read=False)
    try:
        key = auth.create_key(name, role, [t if t != "default" else "" for t in tenant])
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        store.dispose()
    typer.echo(key)


@bench_app.command("broker")
def bench_broker(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object keyed by backend.")] = False,
    quick: Annotated[bool, typer.Option(help="A smaller run, under a minute.")] = False,
    backend: Annotated[list[str], typer.Option(help="sqlite and/or postgresql.")] = ["sqlite", "postgresql"],  # noqa: B006
    pg_url: Annotated[str, typer.Option(envvar="HOTOKU_BENCH_PG_URL")] = "postgresql://postgres@127.0.0.1:5432/test",
) -> None:
    """Measure the broker: upsert, retrieve, patch, query, geo-query, notifications."""
    from hotoku.broker.bench import format_table, run_bench

    results = run_bench(backends=backend, quick=quick, pg_url=pg_url, progress=not as_json)
    typer.echo(json.dumps(results, indent=2) if as_json else format_table(results))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
