"""The ``hotoku`` controller on short runs of the shipped town: feasible, exclusive, better than the baselines."""

from __future__ import annotations

import numpy as np
import pytest

from hotoku.energy.clairvoyant import Clairvoyant, run_clairvoyant
from hotoku.energy.model import Plan
from hotoku.energy.orchestrator import Orchestrator
from hotoku.energy.outage import OutageWarning
from hotoku.town import Outage, load_scenario
from hotoku.twin import Controller, Simulation, make_controller, run


@pytest.fixture(scope="module")
def town():
    return load_scenario("odawara-zero-carbon-town")


@pytest.fixture(scope="module")
def three_days(town):
    first = Simulation(town, days=3, start="2030-04-01")
    plans: list[Plan] = []
    ctl = Orchestrator()
    solve = ctl._solve

    def keep(h):
        p = solve(h)
        plans.append(p)
        return p

    ctl._solve = keep
    out = {"hotoku": run(first, ctl, "hotoku")}
    for name in ("uncontrolled", "pv-following"):
        out[name] = run(Simulation(town, inputs=first.inputs), make_controller(name), name)
    out["clairvoyant"] = run_clairvoyant(Simulation(town, inputs=first.inputs))
    return out, ctl, plans


def test_controllers_follow_the_twins_protocol():
    assert isinstance(Orchestrator(), Controller)
    assert isinstance(Clairvoyant(), Controller)


def test_every_step_is_solved_and_no_store_charges_and_discharges_at_once(three_days):
    _, ctl, plans = three_days
    assert ctl.failed_solves == 0 and len(plans) == 3 * 96
    for p in plans:
        assert np.minimum(p.battery_charge_kw, p.battery_discharge_kw).max() < 1e-6
        assert np.minimum(p.car_charge_kw, p.car_discharge_kw).max() < 1e-6


def test_greener_than_the_baselines_and_close_to_the_clairvoyant(three_days):
    out, _, _ = three_days
    k = {name: r.kpis for name, r in out.items()}
    assert k["hotoku"]["green_share"] > k["pv-following"]["green_share"] > k["uncontrolled"]["green_share"]
    assert k["hotoku"]["grid_import_kwh"] < k["pv-following"]["grid_import_kwh"]
    assert k["clairvoyant"]["green_share"] >= k["hotoku"]["green_share"] - 0.005
    assert k["hotoku"]["failed_bookings"] == 0 and k["hotoku"]["clipped_commands"] <= 5


def test_forecasts_beat_persistence(three_days):
    _, ctl, _ = three_days
    errors = ctl.forecast_errors()
    for what in ("pv_kw", "load_kw"):
        assert errors[what]["1h"]["skill"] > 0.3
        assert errors[what]["1h"]["mae"] < errors[what]["1h"]["mae_day_ahead"]  # the correction helps


def test_a_warned_outage_finds_the_stores_full_in_resilience_mode(town):
    sc = town.model_copy(update={"grid": town.grid.model_copy(
        update={"outages": [Outage(start="2030-04-02T18:00:00", hours=12)]})})
    start = 96 + 72  # day two, 18:00
    soc = {}
    for warned in (False, True):
        sim = Simulation(sc, days=3, start="2030-04-01")
        warnings = [OutageWarning(start, 12, start - 96)] if warned else []
        res = run(sim, Orchestrator("resilience", warnings=warnings), "hotoku")
        soc[warned] = res.rec.battery_soc[start - 1]
        assert min(v for k, v in res.kpis.items() if k.startswith("shelter_")) == pytest.approx(12.0)
    full = sim.system.battery_soc_max
    assert np.all(soc[True] >= full - 0.02)
    assert soc[True].sum() > soc[False].sum()


def _first_horizons(sc, steps: int, **kw) -> list:
    """The Horizons ``hotoku`` plans over in the first ``steps`` steps of 1 April."""
    sim = Simulation(sc, days=3, start="2030-04-01")  # the day after the horizon lies within the run
    ctl, seen = Orchestrator(**kw), []
    solve = ctl._solve
    ctl._solve = lambda h: (seen.append(h), solve(h))[1]
    for _ in range(steps):
        sim.step(ctl.decide(sim.observation()))
    return seen


def test_import_up_to_the_demand_target_is_no_peak(town):
    assert town.grid.demand_target_kw == 250
    assert all(h.peak_so_far_kw >= 250 for h in _first_horizons(town, 3))
    none = town.model_copy(update={"grid": town.grid.model_copy(update={"demand_target_kw": None})})
    assert _first_horizons(none, 1)[0].peak_so_far_kw == 0.0


def test_a_day_after_beyond_the_peak_stretches_the_horizon_to_two_days(town):
    # a 1 kW demand target: on the first step the day after the horizon needs far more than the stores hold
    low = town.model_copy(update={"grid": town.grid.model_copy(update={"demand_target_kw": 1.0})})
    assert _first_horizons(low, 1, stretch=True)[0].dt_h.sum() == 48
    assert _first_horizons(low, 1)[0].dt_h.sum() == 24  # off by default
    assert _first_horizons(town, 1, stretch=True)[0].dt_h.sum() == 24  # an April day after within 250 kW


def test_the_first_hours_are_planned_step_by_step_and_the_rest_hourly(town):
    h = _first_horizons(town, 1)[0]
    assert list(h.dt_h) == [0.25] * 32 + [1.0] * 16
    assert h.car_min_kwh.shape[1] == h.bat_min_kwh.shape[1] == len(h.pv_town_kw) == 48
    # an hourly period carries the mean of its four steps' forecasts
    fine = _first_horizons(town, 1, fine_h=None)[0]
    assert list(fine.dt_h) == [0.25] * 96
    np.testing.assert_allclose(h.price_jpy_per_kwh[32:], fine.price_jpy_per_kwh[32:].reshape(16, 4).mean(axis=1))
    np.testing.assert_allclose(h.compute_kw[:, 32:], fine.compute_kw[:, 32:].reshape(-1, 16, 4).mean(axis=2))
    # ... and a car leaving within an hourly period leaves at its start, with the trip's energy due before it
    cars, steps = np.nonzero(fine.car_trip_kwh[:, 32:])
    assert len(cars) > 0
    for c, p in zip(cars, 32 + (steps // 4), strict=True):
        assert h.car_trip_kwh[c, p] == fine.car_trip_kwh[c].sum()
        assert h.car_plugged[c, :p].all() and not h.car_plugged[c, p:].any()
        assert h.car_min_kwh[c, p - 1] >= h.car_trip_kwh[c, p]
