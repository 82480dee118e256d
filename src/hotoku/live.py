"""Composition of live mode for ``hotoku up``: the twin and its controller beside the API server.

Each side gets its own API key (twin: role ``device``; controller: role ``service``) and
talks to the broker over HTTP only, exactly as outside devices and services would.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import httpx

from hotoku.settings import Settings

log = logging.getLogger("hotoku.live")


def _wait_healthy(base: str, stop: threading.Event, timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        stop.wait(0.2)
    return False


def _keys(settings: Settings) -> tuple[str, str]:
    from hotoku.broker.auth import Authenticator
    from hotoku.broker.store.sql import SqlStore

    store = SqlStore(settings.resolved_database_url())
    try:
        auth = Authenticator(store, admin_token=None, jwt_secret=settings.jwt_secret or "", anonymous_read=False)
        return (auth.create_key("town-twin", "device", [""]), auth.create_key("twin-controller", "service", [""]))
    finally:
        store.dispose()


def live_controller(name: str, sim: Any) -> Any:
    """A controller for the live loop. The orchestrator gets the static facts an operator has (the
    scenario's ratings and the calendar) up front: live observations come from the broker, not a Simulation."""
    from hotoku.twin import make_controller

    if name == "hotoku":
        from hotoku.energy.orchestrator import Orchestrator

        return Orchestrator(scenario=sim.scenario, grid=sim.grid)
    return make_controller(name)


def start_live_town(settings: Settings, base: str) -> threading.Event:
    """Start the live twin and its controller in background threads; set the event to stop them."""
    from hotoku.town import load_scenario
    from hotoku.twin import Simulation
    from hotoku.twin.live import BrokerClient, BrokerController, LiveTwin

    stop = threading.Event()
    scenario = load_scenario(settings.twin_scenario)
    sim = Simulation(scenario, seed=settings.twin_seed)
    controller = live_controller(settings.twin_controller, sim)
    twin_key, ctl_key = _keys(settings)

    def run() -> None:
        if not _wait_healthy(base, stop):
            log.error("live town: the API did not come up; twin not started")
            return
        twin = LiveTwin(sim, settings.twin_town, BrokerClient(base, twin_key), speed=settings.twin_speed)
        ctl = BrokerController(sim.system, settings.twin_town, BrokerClient(base, ctl_key), controller)
        threading.Thread(target=ctl.run, args=(stop,), name="twin-controller", daemon=True).start()
        try:
            twin.run(stop)
        except Exception:  # keep the API up if the twin fails; the log says why
            log.exception("live twin stopped")

    threading.Thread(target=run, name="live-twin", daemon=True).start()
    return stop
