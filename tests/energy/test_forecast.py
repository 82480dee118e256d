"""Forecast building blocks: clear-sky PV, the AR(1) error model and the error tracker."""

from __future__ import annotations

import numpy as np
import pytest

from hotoku.energy.forecast import ErrorModel, ErrorTracker, clear_sky_pv_kw
from hotoku.town import load_scenario
from hotoku.twin import Simulation


def test_clear_sky_output_bounds_the_simulated_pv():
    """Clouds only take away: measured PV stays below clear-sky output (a little slack for cloud enhancement)."""
    sc = load_scenario("odawara-zero-carbon-town")
    sim = Simulation(sc, days=14, start="2030-05-01")
    town, sites = clear_sky_pv_kw(sc, sim.grid.midpoints_utc)
    actual = sim.inputs.pv_town_kw + sim.inputs.pv_site_kw.sum(axis=0)
    day = town + sites.sum(axis=0) > 50
    assert np.quantile(actual[day] / (town + sites.sum(axis=0))[day], 0.99) < 1.15
    assert town.max() == pytest.approx(850 / 1.2, rel=0.05)  # the town's 850 kWp clip at their inverters


def test_error_model_learns_persistence_and_spread():
    rng = np.random.default_rng(3)
    phi, sigma = 0.9, 0.2
    e = np.zeros(5000)
    for i in range(1, len(e)):
        e[i] = phi * e[i - 1] + sigma * np.sqrt(1 - phi**2) * rng.standard_normal()
    m = ErrorModel()
    for x in e:
        m.observe(float(x))
    assert m.phi == pytest.approx(phi, abs=0.03)
    assert np.sqrt(m.var) == pytest.approx(sigma, rel=0.15)
    assert m.predict(2) == pytest.approx(e[-1] * m.phi ** np.arange(1, 3))


def test_tracker_scores_a_perfect_forecast_at_zero_and_persistence_worse():
    t = ErrorTracker(horizon=4, leads=(0, 3))
    truth = np.sin(np.arange(40) / 3) + 2
    t.issue(0, truth[:4], np.nan, None)
    for s in range(1, 36):
        t.measure(s - 1, truth[s - 1])
        t.issue(s, truth[s:s + 4], truth[s - 1], None)
    r = t.report(15)
    assert r["15min"]["mae"] == pytest.approx(0.0) and r["1h"]["mae"] == pytest.approx(0.0)
    assert r["1h"]["mae_persistence"] > 0 and r["1h"]["skill"] == pytest.approx(1.0)
