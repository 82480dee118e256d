"""The fleet LP on cases small enough to check by hand (hourly steps, so kW and kWh read the same)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("highspy")

from hotoku.energy.fleet_lp import Fleet, Site, availability, evaluate, solve_fleet_lp, violation_kw
from hotoku.energy.valley import solve_valley


def _site(price: list[float], limit: float = 100.0, pv: list[float] | None = None) -> Site:
    t = len(price)
    return Site(
        pv_kw=np.asarray(pv if pv is not None else [0.0] * t, float),
        base_load_kw=np.zeros(t),
        price_jpy_per_kwh=np.asarray(price, float),
        grid_limit_kw=limit,
        step_h=1.0,
    )


def _fleet(arrival: list[int], departure: list[int], energy: list[float], power: list[float]) -> Fleet:
    return Fleet(np.array(arrival), np.array(departure), np.array(energy, float), np.array(power, float))


def test_two_cars_charge_before_the_price_step() -> None:
    site = _site([10, 10, 30, 30])
    fleet = _fleet([0, 0], [4, 4], [2, 2], [1, 1])
    res = solve_fleet_lp(fleet, site)
    np.testing.assert_allclose(res.power_kw, [[1, 1, 0, 0], [1, 1, 0, 0]], atol=1e-7)
    assert res.objective_jpy == pytest.approx(2 * 2 * 10, abs=0.01)  # 4 kWh at 10 JPY, plus a tiny tie-break
    assert res.unmet_kwh.sum() == pytest.approx(0, abs=1e-9)


def test_connection_limit_spreads_the_cars() -> None:
    site = _site([10, 30, 30, 30], limit=1.0)
    fleet = _fleet([0, 0], [4, 4], [1, 1], [1, 1])
    res = solve_fleet_lp(fleet, site)
    assert res.grid_import_kw.max() <= 1.0 + 1e-7
    np.testing.assert_allclose(res.power_kw.sum(axis=0), [1, 1, 0, 0], atol=1e-7)  # the second car goes next
    assert res.objective_jpy == pytest.approx(10 + 30, abs=0.01)
    assert violation_kw(res.power_kw, fleet, site) <= 1e-7


def test_pv_is_used_first() -> None:
    site = _site([20, 20, 20, 20], pv=[0, 2, 0, 0])
    fleet = _fleet([0], [4], [2], [2])
    res = solve_fleet_lp(fleet, site)
    np.testing.assert_allclose(res.power_kw, [[0, 2, 0, 0]], atol=1e-7)
    assert res.objective_jpy == pytest.approx(0, abs=0.01)


def test_impossible_need_is_reported_unmet() -> None:
    site = _site([10, 10, 10, 10])
    fleet = _fleet([1], [3], [5], [2])  # two hours at 2 kW: 4 kWh of the 5
    res = solve_fleet_lp(fleet, site)
    assert res.unmet_kwh[0] == pytest.approx(1.0, abs=1e-7)
    assert res.objective_jpy == pytest.approx(4 * 10 + site.unmet_penalty_jpy_per_kwh, abs=0.01)


def test_overnight_window_wraps_past_midnight() -> None:
    fleet = _fleet([3], [1], [2], [1])
    assert availability(fleet, 4).tolist() == [[True, False, False, True]]
    site = _site([5, 50, 50, 5])
    res = solve_fleet_lp(fleet, site)
    np.testing.assert_allclose(res.power_kw, [[1, 0, 0, 1]], atol=1e-7)
    obj, unmet, _ = evaluate(res.power_kw, fleet, site)
    assert obj == pytest.approx(res.objective_jpy) and unmet.sum() == pytest.approx(0, abs=1e-9)


def test_base_load_over_the_limit_is_refused_with_a_reason() -> None:
    site = Site(np.zeros(2), np.array([1.0, 5.0]), np.array([10.0, 10.0]), grid_limit_kw=2.0, step_h=1.0)
    fleet = _fleet([0], [2], [1], [1])
    for solve in (solve_fleet_lp, solve_valley):
        with pytest.raises(ValueError, match="steps \\[1\\]"):
            solve(fleet, site)
