"""The twin's commands, driven as a user would (through a Typer app wired like the main CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
import yaml
from typer.testing import CliRunner

from hotoku.cli_twin import register
from hotoku.town.loader import SHIPPED_DIR

REQUIRED = ("green_share", "self_sufficiency", "grid_import_kwh", "grid_export_kwh", "co2_t", "cost_jpy",
            "peak_import_kw", "curtailment_kwh", "bookings", "failed_bookings", "service_level",
            "pv_yield_kwh_per_kwp", "runtime_s")


@pytest.fixture(scope="module")
def cli():
    app = typer.Typer()
    bench = typer.Typer()
    app.add_typer(bench, name="bench")
    register(app, bench)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def test_scenarios_lists_the_shipped_ones(cli) -> None:
    r = cli("scenarios", "--json")
    assert r.exit_code == 0
    assert {"odawara-zero-carbon-town", "odawara-eemo"} <= {s["name"] for s in json.loads(r.stdout)}


def test_validate_accepts_a_shipped_scenario_strictly(cli) -> None:
    r = cli("scenario", "validate", SHIPPED_DIR / "odawara-eemo.yaml", "--strict")
    assert r.exit_code == 0, r.output
    assert "ok" in r.output


def test_validate_names_the_field_and_what_to_do(cli, tmp_path: Path) -> None:
    raw = yaml.safe_load((SHIPPED_DIR / "odawara-zero-carbon-town.yaml").read_text(encoding="utf-8"))
    raw["batteries"][0]["charge_kw"] = -5
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    r = cli("scenario", "validate", p)
    assert r.exit_code != 0
    assert f"{p}: batteries[0].charge_kw" in r.output and "greater than 0" in r.output
    j = json.loads(cli("scenario", "validate", p, "--json").stdout)
    assert j["valid"] is False and j["problems"][0]["field"] == "batteries[0].charge_kw"


def test_simulate_json_report_and_parquet(cli, tmp_path: Path) -> None:
    report, out = tmp_path / "r.html", tmp_path / "series"
    r = cli("simulate", "odawara-zero-carbon-town", "--days", 2, "--start", "2030-05-01", "--controller", "tou",
            "--controller", "pv-following", "--seed", 3, "--json", "--report", report, "--out", out)
    assert r.exit_code == 0, r.output
    kpis = json.loads(r.stdout)
    assert set(kpis) == {"tou", "pv-following"}
    for k in REQUIRED:
        assert k in kpis["tou"], k
    page = report.read_text(encoding="utf-8")
    assert page.count("<svg") >= 5 and "<script" not in page  # opens offline: nothing to fetch
    assert not any(f'{attr}="{scheme}' in page for attr in ("src", "href") for scheme in ("http", "//"))
    df = pd.read_parquet(out / "tou.parquet")
    assert len(df) == 192 and "grid_import_kw" in df.columns and str(df.index.tz) == "UTC"
    assert json.loads((out / "kpis.json").read_text())["pv-following"]["bookings"] == kpis["pv-following"]["bookings"]


def test_simulate_prints_a_table_side_by_side(cli) -> None:
    r = cli("simulate", "odawara-eemo", "--days", 1)
    assert r.exit_code == 0, r.output
    assert "uncontrolled" in r.output and "pv-following" in r.output and "service_level" in r.output


def test_unknown_controller_lists_the_known_ones(cli) -> None:
    r = cli("simulate", "odawara-eemo", "--days", 1, "--controller", "magic")
    assert r.exit_code == 2
    assert "uncontrolled" in r.output and "magic" in r.output


def test_bench_twin_json(cli) -> None:
    r = cli("bench", "twin", "--days", 1, "--json")
    assert r.exit_code == 0, r.output
    j = json.loads(r.stdout)
    assert {"inputs_s", "uncontrolled_s", "tou_s", "pv-following_s"} <= set(j) and j["steps"] == 96
