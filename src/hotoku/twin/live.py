"""Live mode: the twin and a controller meet only on the broker, as real devices would.

Each step the twin publishes what an operator could know (status, batteries, cars and a
forecast) through the NGSI-LD API, waits a bounded time for DeviceSetpoint entities for
that step, applies them, and publishes the step's measurements. The controller side
reads the same entities back, decides, and writes setpoints. Neither imports the other.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import httpx

from hotoku.twin import ngsi
from hotoku.twin.controller import Controller, Setpoints, SystemInfo
from hotoku.twin.simulation import Simulation

log = logging.getLogger("hotoku.twin.live")


def iso(ts: Any) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class BrokerClient:
    """The few NGSI-LD calls live mode needs, over HTTP with a bearer token."""

    def __init__(self, base_url: str, token: str, *, tenant: str = "", timeout: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if tenant:
            headers["NGSILD-Tenant"] = tenant
        self.http = httpx.Client(base_url=base_url.rstrip("/") + "/ngsi-ld/v1", headers=headers, timeout=timeout)

    def upsert(self, entities: list[dict[str, Any]]) -> None:
        r = self.http.post("/entityOperations/upsert", params={"options": "update"}, json=entities)
        if r.status_code not in (201, 204):
            raise RuntimeError(f"broker refused the upsert ({r.status_code}): {r.text[:300]}")

    def entities(self, types: str, q: str | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {"type": types, "limit": 1000, "offset": 0}
        if q:
            params["q"] = q
        while True:
            r = self.http.get("/entities", params=params)
            r.raise_for_status()
            page = r.json()
            out += page
            if len(page) < 1000:
                return out
            params["offset"] += 1000

    def close(self) -> None:
        self.http.close()


class LiveTwin:
    """Advances a Simulation one step per ``step_s / speed`` seconds of wall time."""

    def __init__(self, sim: Simulation, town: str, client: BrokerClient, *, speed: float = 60.0,
                 setpoint_wait_s: float | None = None) -> None:
        self.sim, self.town, self.client, self.speed = sim, town, client, speed
        self.step_wall_s = sim.system.step_h * 3600 / speed
        self.setpoint_wait_s = self.step_wall_s * 0.8 if setpoint_wait_s is None else setpoint_wait_s
        self.applied: list[dict[str, float]] = []  # the commands used at each step, for checks

    def publish_observation(self) -> int:
        obs = self.sim.observation()
        fc = self.sim.forecast(obs.step, ngsi.FORECAST_STEPS)
        self.client.upsert(ngsi.observation_entities(self.town, obs, fc, iso(self.sim.grid.times_utc[obs.step])))
        return obs.step

    def wait_for_setpoints(self, step: int) -> dict[str, float]:
        deadline = time.monotonic() + self.setpoint_wait_s
        while True:
            found = self.client.entities(ngsi.SETPOINT_TYPE, q=f"forStep=={step}")
            if found or time.monotonic() >= deadline:
                return ngsi.commands_from_entities(found, step)
            time.sleep(min(0.05, self.step_wall_s / 20))

    def step(self) -> None:
        step = self.publish_observation()
        commands = self.wait_for_setpoints(step)
        self.applied.append(commands)
        sp = Setpoints.from_ids(self.sim.system, commands) if commands else None
        result = self.sim.step(sp)
        self.client.upsert(ngsi.step_entities(self.town, result, iso(result.time_utc)))

    def run(self, stop: threading.Event, max_steps: int | None = None) -> None:
        done = 0
        while not self.sim.done and not stop.is_set() and (max_steps is None or done < max_steps):
            t0 = time.monotonic()
            self.step()
            done += 1
            stop.wait(max(0.0, self.step_wall_s - (time.monotonic() - t0)))


class BrokerController:
    """Runs any twin controller against the broker: entities in, DeviceSetpoint entities out."""

    def __init__(self, system: SystemInfo, town: str, client: BrokerClient, controller: Controller) -> None:
        self.system, self.town, self.client, self.controller = system, town, client, controller
        self.last_step = -1

    def poll(self) -> bool:
        """Decide once for a step not decided yet; False when there was nothing new."""
        entities = self.client.entities(f"{ngsi.STATUS_TYPE},Battery,Vehicle")
        if not any(e["type"] == ngsi.STATUS_TYPE for e in entities):
            return False
        obs, _ = ngsi.observation_from_entities(self.system, entities)
        if obs.step <= self.last_step:
            return False
        sp = self.controller.decide(obs)
        at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        self.client.upsert(ngsi.setpoint_entities(self.town, obs.step,
                                                  ngsi.commands_from_setpoints(self.system, sp), at))
        publish = getattr(self.controller, "published_entities", None)  # e.g. the orchestrator's plan
        if publish is not None and (extra := publish(self.town, at)):
            self.client.upsert(extra)
        self.last_step = obs.step
        return True

    def run(self, stop: threading.Event, poll_s: float = 0.05) -> None:
        while not stop.is_set():
            try:
                if not self.poll():
                    stop.wait(poll_s)
            except (httpx.HTTPError, RuntimeError) as exc:  # the broker restarting: try again shortly
                log.warning("controller loop: %s", exc)
                stop.wait(1.0)
