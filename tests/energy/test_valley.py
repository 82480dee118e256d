"""Valley filling: feasible every time, within 1 % of the LP optimum, and its dual bound really is a bound."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("highspy")

from hotoku.energy.fleet_lp import Fleet, Site, solve_fleet_lp, violation_kw
from hotoku.energy.scaling import make_fleet, make_site, run_scaling
from hotoku.energy.valley import solve_valley


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_valley_matches_lp_on_200_cars(seed: int) -> None:
    fleet, site = make_fleet(200, seed=seed), make_site(200)
    lp = solve_fleet_lp(fleet, site)
    valley = solve_valley(fleet, site)
    assert violation_kw(valley.power_kw, fleet, site) <= 1e-6
    assert valley.objective_jpy >= lp.objective_jpy - 1e-6 * lp.objective_jpy  # no schedule beats the optimum
    assert (valley.objective_jpy - lp.objective_jpy) / lp.objective_jpy <= 0.01
    assert valley.lower_bound_jpy is not None
    assert valley.lower_bound_jpy <= lp.objective_jpy * (1 + 1e-9)
    assert (lp.objective_jpy - valley.lower_bound_jpy) / lp.objective_jpy <= 0.01


def test_valley_is_feasible_under_a_tight_limit() -> None:
    """A limit that binds most of the night, with some needs no window can meet: still feasible, still close."""
    fleet, base = make_fleet(150, seed=7), make_site(150)
    site = Site(base.pv_kw, base.base_load_kw, base.price_jpy_per_kwh, grid_limit_kw=0.9 * 150, step_h=base.step_h)
    lp = solve_fleet_lp(fleet, site)
    valley = solve_valley(fleet, site, iterations=600)
    assert violation_kw(valley.power_kw, fleet, site) <= 1e-6
    assert (valley.objective_jpy - lp.objective_jpy) / lp.objective_jpy <= 0.01


def test_valley_spreads_cars_at_the_limit() -> None:
    """Two cars, one cheap hour, room for one: the second must move, not overload the connection."""
    site = Site(np.zeros(4), np.zeros(4), np.array([10.0, 30, 30, 30]), grid_limit_kw=1.0, step_h=1.0)
    fleet = Fleet(np.array([0, 0]), np.array([4, 4]), np.array([1.0, 1.0]), np.array([1.0, 1.0]))
    valley = solve_valley(fleet, site, iterations=400)
    assert violation_kw(valley.power_kw, fleet, site) <= 1e-9
    assert valley.unmet_kwh.sum() == pytest.approx(0, abs=1e-6)
    assert valley.objective_jpy == pytest.approx(40, rel=0.01)


def test_scaling_rows_have_the_promised_shape() -> None:
    rows = run_scaling(quick=True, sizes=(300,))
    assert {r["method"] for r in rows} == {"lp", "valley"}
    for r in rows:
        assert r["cars"] == 300 and r["solve_s"] > 0 and np.isfinite(r["gap"])
    assert max(r["gap"] for r in rows) <= 0.01
