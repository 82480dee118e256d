"""Scenarios: shipped files load and source every figure; errors name the file, the field and the problem."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hotoku.town import (
    ScenarioError,
    TimeGrid,
    list_scenarios,
    load_scenario,
    parse_scenario,
    provenance_gaps,
)
from hotoku.town.loader import SHIPPED_DIR

SHIPPED = ("odawara-zero-carbon-town", "odawara-eemo")


def _raw(name: str = "odawara-zero-carbon-town") -> dict:
    return yaml.safe_load((SHIPPED_DIR / f"{name}.yaml").read_text(encoding="utf-8"))


def _write(tmp_path: Path, raw: dict, name: str = "town.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return p


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenarios_load_and_source_every_figure(name: str) -> None:
    sc = load_scenario(name)
    assert sc.name == name
    assert provenance_gaps(sc) == []


def test_list_names_the_shipped_scenarios() -> None:
    assert set(SHIPPED) <= {s.name for s in list_scenarios()}


def test_the_town_matches_the_published_facts() -> None:
    town = load_scenario("odawara-zero-carbon-town")
    assert town.location.site_area_ha == pytest.approx(2.24)
    assert town.loads.homes[0].annual_kwh_per_home == 4175
    eemo = load_scenario("odawara-eemo")
    assert len(eemo.mobility.stations) == 26
    assert sum(s.cars for s in eemo.mobility.stations) == 47


def test_a_copied_and_edited_scenario_models_another_town(tmp_path: Path) -> None:
    raw = _raw()
    raw["name"] = "my-town"
    raw["loads"]["homes"][0]["count"] = 40
    sc = load_scenario(_write(tmp_path, raw))
    assert sc.name == "my-town" and sc.loads.homes[0].count == 40


@pytest.mark.parametrize(("edit", "field", "words"), [
    (lambda r: r["batteries"][0].update(soc_min=0.99), "batteries[0]", "soc_min"),
    (lambda r: r["pv_arrays"][0].update(capacty_kwp=5), "pv_arrays[0].capacty_kwp", "unknown field"),
    (lambda r: r["pv_arrays"][0].update(site="nowhere"), "pv_arrays[0].site", "unknown site 'nowhere'"),
    (lambda r: r["loads"]["homes"][0].update(count=-3), "loads.homes[0].count", "-3"),
    (lambda r: r["location"].pop("latitude"), "location.latitude", "required"),
    (lambda r: r["mobility"]["stations"][0].update(model="tesla"), "mobility.stations[0].model", "unknown car model"),
    (lambda r: r["climate"].update(monthly_sunshine_hours=[100] * 11), "climate.monthly_sunshine_hours", "12"),
])
def test_errors_name_file_field_and_problem(tmp_path: Path, edit, field: str, words: str) -> None:
    raw = _raw()
    edit(raw)
    path = _write(tmp_path, raw)
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    text = str(e.value)
    assert str(path) in text
    assert any(p.field == field for p in e.value.problems), e.value.problems
    assert words in text


def test_bad_yaml_says_where(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nlocation: [1, 2\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"bad.yaml: line \d+, column \d+: not valid YAML"):
        load_scenario(p)


def test_unknown_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ScenarioError, match="odawara-eemo"):
        load_scenario("atlantis")


def test_unsourced_figures_are_reported(tmp_path: Path) -> None:
    raw = _raw()
    raw["batteries"][0]["source"] = "capacity_kwh only"
    gaps = {g.field for g in provenance_gaps(load_scenario(_write(tmp_path, raw)))}
    assert "batteries[0].charge_kw" in gaps and "batteries[0].capacity_kwh" not in gaps


def test_hourly_price_series_is_read_beside_the_file(tmp_path: Path) -> None:
    times = pd.date_range("2030-01-01", periods=48, freq="h")
    pd.DataFrame({"time": times.strftime("%Y-%m-%d %H:%M"), "price_jpy_per_kwh": range(48)}).to_csv(
        tmp_path / "prices.csv", index=False)
    raw = _raw()
    raw["grid"]["price_series_file"] = "prices.csv"
    sc = load_scenario(_write(tmp_path, raw))
    s = sc.series["price_jpy_per_kwh"]
    assert len(s) == 48 and str(s.index.tz) == "UTC"
    assert s.index[0] == pd.Timestamp("2030-01-01", tz="Asia/Tokyo")


def test_a_missing_series_file_is_an_error_on_its_field(tmp_path: Path) -> None:
    raw = _raw()
    raw["grid"]["co2_series_file"] = "nope.csv"
    with pytest.raises(ScenarioError, match=r"grid.co2_series_file: cannot read"):
        load_scenario(_write(tmp_path, raw))


def test_parse_rejects_a_non_mapping() -> None:
    with pytest.raises(ScenarioError, match="mapping"):
        parse_scenario([1, 2, 3])


def test_time_grid_is_local_midnight_stored_in_utc() -> None:
    g = TimeGrid.from_days(date(2030, 1, 1), 2, 15)
    assert g.n_steps == 192 and g.step_h == 0.25
    assert g.times_utc[0] == pd.Timestamp("2029-12-31 15:00", tz="UTC")
    assert g.local_hour[4] == 1.0
    assert g.step_of(pd.Timestamp("2030-01-01 01:10", tz="Asia/Tokyo")) == 4
    with pytest.raises(ValueError, match="step_minutes"):
        TimeGrid(date(2030, 1, 1), 10, 7)
