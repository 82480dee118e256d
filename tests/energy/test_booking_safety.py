"""No booking fails because a car served as a battery: dense bookings, V2G on, forecasts deliberately wrong."""

from __future__ import annotations

import dataclasses

import pytest

from hotoku.energy.audit import audit_bookings
from hotoku.energy.orchestrator import Orchestrator
from hotoku.town import load_scenario
from hotoku.twin import Forecast, Observation, Setpoints, Simulation, run


class BiasedForecast:
    """Hands the controller a day-ahead forecast with PV tripled and load halved (a badly wrong one)."""

    def __init__(self, inner: Orchestrator) -> None:
        self.inner = inner

    def decide(self, obs: Observation) -> Setpoints:
        f = obs.forecast(obs.system.n_steps)
        wrong = Forecast(f.pv_kw * 3.0, f.load_kw * 0.5, f.price_jpy_per_kwh, f.co2_kg_per_kwh)
        return self.inner.decide(dataclasses.replace(obs, _forecast=wrong))


@pytest.fixture(scope="module")
def dense_week():
    town = load_scenario("odawara-zero-carbon-town")
    mob = town.mobility
    busy = [s.model_copy(update={"bookings_per_day": 30.0}) for s in mob.stations]
    walk_up = mob.booking.model_copy(update={"same_day_share": 0.7, "same_day_lead_mean_h": 1.0})
    sc = town.model_copy(update={"mobility": mob.model_copy(update={"stations": busy, "booking": walk_up})})
    sim = Simulation(sc, days=7, start="2030-07-01")
    ctl = Orchestrator()
    return run(sim, BiasedForecast(ctl), "hotoku"), ctl


def test_no_booking_fails_for_lack_of_charge_the_controller_could_have_given(dense_week):
    res, ctl = dense_week
    audit = audit_bookings(res)
    assert audit.started > 300  # two to three bookings per car and day
    assert res.kpis["v2g_kwh"] > 0  # the cars did serve as batteries
    assert audit.avoidable == 0, f"{audit.avoidable} bookings left short by up to {audit.worst_shortfall_kwh:.2f} kWh"
    assert audit.failed == res.kpis["failed_bookings"]  # the audit reads the same departures as the twin
    assert ctl.failed_solves == 0
