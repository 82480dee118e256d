"""The twin's commands: ``hotoku scenarios``, ``hotoku scenario validate``, ``hotoku simulate``, ``hotoku bench twin``.

The composition root registers them (see ``register``); each is a plain Typer function.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

scenario_app = typer.Typer(help="Check and inspect town scenarios.", no_args_is_help=True)

KPI_ROWS = ("green_share", "self_sufficiency", "self_consumption", "grid_import_kwh", "grid_export_kwh", "co2_t",
            "cost_jpy", "peak_import_kw", "curtailment_kwh", "unserved_kwh", "battery_cycles", "bookings",
            "failed_bookings", "rejected_requests", "service_level", "unmet_km", "v2g_kwh", "pv_yield_kwh_per_kwp",
            "outage_h", "clipped_commands", "runtime_s")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Wire the twin's commands into the main CLI."""
    app.command()(scenarios)
    app.add_typer(scenario_app, name="scenario")
    app.command()(simulate)
    bench_app.command("twin")(bench_twin)


def _fail(message: str, hint: str) -> typer.Exit:
    typer.echo(message, err=True)
    typer.echo(hint, err=True)
    return typer.Exit(2)


def _load(name_or_path: str):
    from hotoku.town import ScenarioError, load_scenario

    try:
        return load_scenario(name_or_path)
    except ScenarioError as e:
        raise _fail(str(e), "Fix the fields named above (`hotoku scenario validate FILE` re-checks), or run "
                            "`hotoku scenarios` for the shipped ones.") from e


def scenarios(json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the shipped scenarios (and those plug-ins add). Copy one and edit it to model another town."""
    from hotoku.town import list_scenarios

    found = list_scenarios()
    if json_:
        typer.echo(json.dumps([{"name": s.name, "title": s.title, "path": str(s.path)} for s in found]))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "title", "file")
    for s in found:
        table.add_row(s.name, s.title, str(s.path))
    Console().print(table)


@scenario_app.command("validate")
def validate(
    file: Annotated[str, typer.Argument(help="A scenario YAML file, or the name of a shipped one.")],
    strict: Annotated[bool, typer.Option(help="Also fail on figures without a source.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check a scenario: schema, cross-references, and that every figure names its source."""
    from hotoku.town import ScenarioError, load_scenario, provenance_gaps, resolve_scenario

    try:
        path = resolve_scenario(file)
        sc = load_scenario(path)
    except ScenarioError as e:
        if json_:
            typer.echo(json.dumps({"valid": False, "file": e.path,
                                   "problems": [{"field": p.field, "message": p.message} for p in e.problems]}))
            raise typer.Exit(1) from e
        raise _fail(str(e), "Fix the fields named above and run this again.") from e
    gaps = provenance_gaps(sc)
    ok = not (strict and gaps)
    if json_:
        typer.echo(json.dumps({"valid": ok, "file": str(path), "name": sc.name,
                               "unsourced": [{"field": g.field, "message": g.message} for g in gaps]}))
    else:
        for g in gaps:
            typer.echo(f"{path}: {g}", err=True)
        typer.echo(f"{path}: {'ok' if ok else 'figures without a source'} ({sc.name}: {len(sc.pv_arrays)} PV arrays, "
                   f"{len(sc.batteries)} batteries, {sum(s.cars for s in sc.mobility.stations) if sc.mobility else 0}"
                   f" cars; {len(gaps)} figure(s) without a source)")
    if not ok:
        raise typer.Exit(1)


def _progress(enabled: bool):
    from contextlib import nullcontext

    if not enabled:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                    TimeRemainingColumn(), console=Console(stderr=True), transient=True)


def run_controllers(scenario, names: list[str], *, days: int | None, start: str | None, seed: int | None,
                    show_progress: bool = False) -> list:
    """Simulate ``scenario`` once per controller on the same precomputed inputs (the same weather and bookings)."""
    from hotoku.twin import Simulation, make_controller, run

    try:
        controllers = [make_controller(n) for n in names]
    except KeyError as e:
        raise _fail(str(e.args[0]), "Pick names from the list above (--controller NAME, repeatable).") from e
    first = Simulation(scenario, seed=seed, start=start, days=days)
    out = []
    with _progress(show_progress) as bar:
        for i, (name, ctl) in enumerate(zip(names, controllers, strict=True)):
            sim = first if i == 0 else Simulation(scenario, inputs=first.inputs)
            task = bar.add_task(name, total=sim.grid.n_steps) if bar else None
            cb = (lambda done, total, task=task: bar.update(task, completed=done)) if bar else None
            out.append(run(sim, ctl, name, progress=cb))
    return out


def simulate(
    scenario: Annotated[str, typer.Argument(help="Name of a shipped scenario, or a YAML file.")],
    days: Annotated[int | None, typer.Option(help="Days to simulate (default: the scenario's).")] = None,
    start: Annotated[str | None, typer.Option(help="First day, e.g. 2030-01-01 (default: the scenario's).")] = None,
    controller: Annotated[list[str] | None, typer.Option(
        help="Controller by name; repeat to compare (default: the three baselines).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the scenario's).")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object {controller: {kpi: value}}.")] = False,
    report: Annotated[Path | None, typer.Option(help="Write a self-contained HTML report here.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write time series (Parquet) and KPIs (JSON) into this folder.")]
    = None,
) -> None:
    """Simulate a town with one or more controllers and compare their KPIs side by side."""
    from hotoku.twin import BASELINES

    sc = _load(scenario)
    names = controller or list(BASELINES)
    n_days = days or sc.simulation.days
    results = run_controllers(sc, names, days=days, start=start, seed=seed, show_progress=not json_ and n_days > 7)
    if out is not None:
        from hotoku.twin.export import write_parquet

        write_parquet(results, out)
    if report is not None:
        from hotoku.twin.export import write_report

        write_report(results, report)
    if json_:
        typer.echo(json.dumps({r.controller: r.kpis for r in results}))
        return
    _print_table(f"{sc.name}: {n_days} days", [r.controller for r in results], [r.kpis for r in results])
    for path, what in ((out, "time series"), (report, "report")):
        if path is not None:
            typer.echo(f"{what} written to {path}")


def _print_table(title: str, columns: list[str], kpis: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("KPI")
    for c in columns:
        table.add_column(c, justify="right")
    rows = [k for k in KPI_ROWS if k in kpis[0]] + [k for k in kpis[0] if k.startswith("shelter_")]
    for k in rows:
        table.add_row(k, *(_fmt(d[k]) for d in kpis))
    Console().print(table)


def _fmt(v: float) -> str:
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:.3f}" if abs(v) < 10 else f"{v:,.1f}" if abs(v) < 1000 else f"{v:,.0f}"


def bench_twin(
    scenario: Annotated[str, typer.Option(help="Scenario to time.")] = "odawara-zero-carbon-town",
    days: Annotated[int, typer.Option(help="Days per run.")] = 365,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Seconds to simulate a year with each baseline controller (inputs are precomputed once, timed apart)."""
    from hotoku.twin import BASELINES, Simulation, make_controller, run

    sc = _load(scenario)
    t0 = time.perf_counter()
    first = Simulation(sc, days=days)
    timings: dict[str, float] = {"inputs_s": time.perf_counter() - t0}
    for name in BASELINES:
        sim = Simulation(sc, inputs=first.inputs)
        timings[f"{name}_s"] = run(sim, make_controller(name), name).runtime_s
    if json_:
        typer.echo(json.dumps({"scenario": sc.name, "days": days, "steps": first.grid.n_steps, **timings}))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("part", "seconds", title=f"twin: {sc.name}, {days} days, {first.grid.n_steps} steps")
    for k, v in timings.items():
        table.add_row(k.removesuffix("_s"), f"{v:.2f}")
    Console().print(table)
