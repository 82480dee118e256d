"""``hotoku bench energy``: one JSON object with the year, scaling and ACN-Sim parts."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from hotoku import cli_energy


def test_bench_energy_json_has_every_controller_and_marks_missing_peers(monkeypatch):
    def missing(quick: bool) -> dict:
        return {"scaling": {"unavailable": "not here"}, "acnsim": {"unavailable": "not here"}}

    monkeypatch.setattr(cli_energy, "_peers", missing)
    app, bench = typer.Typer(), typer.Typer()
    app.add_typer(bench, name="bench")
    cli_energy.register(app, bench)
    out = CliRunner().invoke(app, ["bench", "energy", "--days", "1", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert set(data["year"]) == {"uncontrolled", "tou", "pv-following", "hotoku", "clairvoyant"}
    assert data["year"]["hotoku"]["solve_p95_s"] > 0
    assert data["scaling"] == {"unavailable": "not here"} and "acnsim" in data
    assert {g["goal"] for g in data["goals"]} >= {"solve time p95 (s)", "bookings failed or refused by the controller"}


def test_unknown_mode_says_what_to_do():
    app, bench = typer.Typer(), typer.Typer()
    app.add_typer(bench, name="bench")
    cli_energy.register(app, bench)
    out = CliRunner().invoke(app, ["bench", "energy", "--days", "1", "--mode", "greenest"])
    assert out.exit_code == 2
