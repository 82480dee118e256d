"""The energy district's command: ``hotoku bench energy``. The composition root registers it (``register``)."""

from __future__ import annotations

import json as jsonlib
from typing import Annotated, Any

import typer

YEAR_ROWS = ("green_share", "self_sufficiency", "grid_import_kwh", "grid_export_kwh", "co2_t", "cost_jpy",
             "peak_import_kw", "curtailment_kwh", "unserved_kwh", "battery_cycles", "v2g_kwh", "booking_requests",
             "rejected_requests", "rejected_when_made", "reassigned_bookings", "bookings", "failed_bookings",
             "avoidable_failed_bookings", "failed_after_v2g", "clipped_commands", "grid_cap_kwh", "outage_h",
             "runtime_s")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Wire the energy commands into the main CLI."""
    bench_app.command("energy")(bench_energy)


def _peers(quick: bool) -> dict[str, Any]:
    """The other benchmarks of the district (fleet scaling, ACN-Sim); absent ones are reported as such."""
    out: dict[str, Any] = {}
    for key, module, func in (("scaling", "hotoku.energy.scaling", "run_scaling"),
                              ("acnsim", "hotoku.energy.acnsim_adapter", "run_acnsim")):
        try:
            from importlib import import_module

            out[key] = getattr(import_module(module), func)(quick)
        except (ImportError, AttributeError, RuntimeError) as e:
            out[key] = {"unavailable": str(e) or type(e).__name__}
    return out


def bench_energy(
    days: Annotated[int, typer.Option(help="Days to simulate (a year by default).")] = 365,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    scenario: Annotated[str, typer.Option(help="Scenario name or YAML file.")] = "odawara-zero-carbon-town",
    mode: Annotated[str, typer.Option(help="hotoku's mode: green, cost, peak-cut, resilience, island.")] = "green",
    horizon_h: Annotated[float, typer.Option(help="hotoku's horizon in hours (at most 48).")] = 24.0,
    quick: Annotated[bool, typer.Option(help="Small scaling and ACN-Sim cases.")] = False,
) -> None:
    """Baselines, hotoku and the clairvoyant bound on one scenario; fleet scaling; ACN-Sim comparison."""
    from hotoku.energy.bench import compare
    from hotoku.energy.objective import Mode
    from hotoku.town import ScenarioError, load_scenario

    try:
        sc = load_scenario(scenario)
        Mode(mode)
    except (ScenarioError, ValueError) as e:
        typer.echo(str(e), err=True)
        typer.echo("Pick a scenario from `hotoku scenarios` and a mode from --help.", err=True)
        raise typer.Exit(2) from e
    with _progress(not json and days > 3) as bar:
        tasks: dict[str, Any] = {}

        def progress(name: str, done: int, total: int) -> None:
            if bar is None:
                return
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done)

        out = compare(sc, days, mode=mode, horizon_h=horizon_h, progress=progress)
    out.update(_peers(quick or days < 365))
    if json:
        typer.echo(jsonlib.dumps(out, default=float))
        return
    _print(out)


def _progress(enabled: bool):
    from contextlib import nullcontext

    if not enabled:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                    TimeRemainingColumn(), console=Console(stderr=True), transient=True)


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:.3f}" if abs(v) < 10 else f"{v:,.1f}" if abs(v) < 1000 else f"{v:,.0f}"


def _print(out: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    year = out["year"]
    t = Table("KPI", *year, title=f"{out['scenario']}: {out['days']} days, hotoku in {out['mode']} mode, "
                                  f"{out['horizon_h']:g} h horizon")
    for k in (*YEAR_ROWS, *(k for k in year["hotoku"] if k.startswith("shelter_")), "solve_p95_s",
              "stretched_share"):
        t.add_row(k, *(_fmt(year[c][k]) if k in year[c] else "" for c in year))
    con.print(t)
    if out["warnings"]:
        con.print(f"hotoku was warned of {len(out['warnings'])} outage(s), 24 h ahead of each.")
    t = Table("goal", "value", "target", "met", title="goals")
    for g in out["goals"]:
        t.add_row(g["goal"], _fmt(g["value"]), g["target"], "yes" if g["met"] else "NO")
    con.print(t)
    t = Table("forecast", "lead", "MAE kW", "persistence", "day-ahead", "skill", title="hotoku's forecasts")
    for what, by_lead in out["forecast"].items():
        for lead, m in by_lead.items():
            t.add_row(what, lead, _fmt(m["mae"]), _fmt(m["mae_persistence"]), _fmt(m["mae_day_ahead"]),
                      _fmt(m["skill"]))
    con.print(t)
    for key, title in (("scaling", "fleet LP scaling"), ("acnsim", "ACN-Sim comparison")):
        rows = out[key]
        if isinstance(rows, dict):
            con.print(f"{title}: unavailable ({rows['unavailable']})")
        elif rows:
            t = Table(*rows[0], title=title)
            for r in rows:
                t.add_row(*(_fmt(v) for v in r.values()))
            con.print(t)
