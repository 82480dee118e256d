"""Live mode round trip: twin → broker → controller → broker → twin, on a real server."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hotoku.live import live_controller
from hotoku.town import load_scenario
from hotoku.twin import Simulation
from hotoku.twin.live import BrokerClient, BrokerController, LiveTwin
from hotoku.twin.ngsi import commands_from_setpoints
from server import LiveServer

STEPS = 12
START = "2030-07-01"


@pytest.fixture
def server(tmp_path: Path):
    s = LiveServer(f"sqlite:///{tmp_path / 'live.db'}", tmp_path / "data", "live-token")
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.mark.parametrize("name", ["pv-following", "hotoku"])
def test_live_run_matches_offline_run(server: LiveServer, name: str) -> None:
    scenario = load_scenario("odawara-zero-carbon-town")
    live_sim = Simulation(scenario, seed=3, start=START, days=1)
    twin = LiveTwin(live_sim, "odawara", BrokerClient(server.url, server.token), speed=1e9, setpoint_wait_s=30)
    ctl = BrokerController(live_sim.system, "odawara", BrokerClient(server.url, server.token),
                           live_controller(name, live_sim))
    stop = threading.Event()
    worker = threading.Thread(target=ctl.run, args=(stop,), daemon=True)
    worker.start()
    try:
        twin.run(threading.Event(), max_steps=STEPS)
    finally:
        stop.set()
        worker.join(5)

    offline = Simulation(scenario, seed=3, start=START, days=1)
    ref = live_controller(name, offline)
    expected = []
    for _ in range(STEPS):
        sp = ref.decide(offline.observation())
        expected.append(commands_from_setpoints(offline.system, sp))
        offline.step(sp)

    assert len(twin.applied) == STEPS
    for got, want in zip(twin.applied, expected, strict=True):
        assert got.keys() == want.keys()
        assert np.allclose([got[k] for k in want], [want[k] for k in want])
    np.testing.assert_allclose(live_sim.bat_energy, offline.bat_energy)
    np.testing.assert_allclose(live_sim.fleet.energy_kwh, offline.fleet.energy_kwh)

    # the measurements are in the broker, and every step is in its temporal history
    client = BrokerClient(server.url, server.token)
    pv = client.entities("PhotovoltaicMeasurement")
    assert pv and pv[0]["activePower"]["unitCode"] == "KWT"
    hist = client.http.get(f"/temporal/entities/{pv[0]['id']}", params={"attrs": "activePower", "lastN": 100})
    assert len(hist.json()["activePower"]) == STEPS

    if name == "hotoku":  # the orchestrator's plan for the next 24 h is in the broker, with its history
        plan = client.entities("EnergySchedule")
        assert len(plan) == 1 and plan[0]["forStep"]["value"] == STEPS - 1
        sched = plan[0]["schedule"]["json"]
        k = sched["periods"]  # the first 8 h step by step, then hourly periods
        assert sum(sched["periodMinutes"]) == 24 * 60 and sched["periodMinutes"][:32] == [15.0] * 32
        assert len(sched["gridImport"]) == len(sched["pvForecast"]) == k == 32 + 16
        assert set(sched["vehiclePower"]) == set(live_sim.system.car_ids)
        assert plan[0]["plannedImport"]["value"] == pytest.approx(sched["gridImport"][0])
        # the plan's first period is what was applied: its fleet power equals the sum of the car setpoints
        last = twin.applied[-1]
        fleet = sum(v for k, v in last.items() if k.startswith("car:"))
        assert sched["fleetPower"][0] == pytest.approx(fleet, abs=1e-2)
        hist = client.http.get(f"/temporal/entities/{plan[0]['id']}", params={"attrs": "plannedImport", "lastN": 100})
        assert len(hist.json()["plannedImport"]) == STEPS
