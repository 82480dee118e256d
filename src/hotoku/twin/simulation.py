"""The simulator: precomputed inputs, then a tight per-step loop of observe → decide → dispatch → record.

``Simulation`` is also the stepping API for live mode: call ``observation()``, send it to a controller
(or publish it to the broker), and pass the setpoints that come back to ``step()``; the returned
``StepResult`` holds the measurements to publish. ``run()`` does this for a whole period.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from hotoku.town import Scenario, TimeGrid
from hotoku.twin.accounting import account_step
from hotoku.twin.controller import Controller, Forecast, Observation, Setpoints, SystemInfo
from hotoku.twin.dispatch import OK, REASONS, dispatch
from hotoku.twin.fleet import Fleet
from hotoku.twin.inputs import Inputs, build_inputs
from hotoku.twin.plant import build_plant, build_system
from hotoku.twin.recorder import Recorder
from hotoku.twin.results import Results


@dataclass(frozen=True)
class Clip:
    """A command the twin could not carry out as given."""

    device: str
    requested_kw: float
    applied_kw: float
    reason: str


@dataclass(frozen=True)
class StepResult:
    """Measurements of one step, as a live runner would publish them."""

    step: int
    time_utc: pd.Timestamp
    grid_import_kw: float
    grid_export_kw: float
    pv_kw: float
    load_served_kw: float
    unserved_kw: float
    curtailment_kw: float
    battery_kw: np.ndarray
    battery_soc: np.ndarray
    car_kw: np.ndarray
    car_soc: np.ndarray
    clipped: tuple[Clip, ...]


class Simulation:
    """A town over a period, advanced one step at a time. Deterministic for a given seed."""

    def __init__(self, scenario: Scenario, *, seed: int | None = None, start: date | str | None = None,
                 days: int | None = None, step_minutes: int | None = None, inputs: Inputs | None = None) -> None:
        sim = scenario.simulation
        if inputs is None:
            grid = TimeGrid.from_days(pd.Timestamp(start or sim.start).date(), days or sim.days,
                                      step_minutes or sim.step_minutes, scenario.location.timezone)
            inputs = build_inputs(scenario, grid, sim.seed if seed is None else seed)
        self.scenario, self.inputs, self.grid = scenario, inputs, inputs.grid
        self.system: SystemInfo = build_system(scenario, inputs)
        self.plant = build_plant(scenario, self.system)
        s = self.system
        self.device_ids = ([f"battery:{b}" for b in s.battery_ids] + [f"car:{c}" for c in s.car_ids]
                           + [f"compute:{s.site_ids[i]}" for i in s.compute_sites])
        self.bat_energy = np.array([b.soc_initial * b.capacity_kwh for b in scenario.batteries])
        self.bat_green = np.zeros(len(self.bat_energy))
        mob = scenario.mobility
        self.fleet = Fleet(inputs.bookings, s.car_capacity_kwh, s.car_kwh_per_km, mob.soc_initial if mob else 0.0,
                           s.car_reserve_soc, car_station=s.car_station, soc_max=s.car_soc_max,
                           gain_kwh_per_step=s.car_charge_kw * self.plant.car_eta_charge * s.step_h)
        self.rec = Recorder(self.grid.n_steps, len(s.battery_ids), len(s.car_ids), len(s.site_ids),
                            inputs.shelter_normal_kw.shape[0], len(s.compute_sites))
        self._noncritical = inputs.homes_kw + inputs.buildings_kw
        self._link_eff = 1 - self.plant.site_link_loss
        self._last_pv = float(inputs.pv_forecast_kw[0])
        self._last_load = float(inputs.load_forecast_kw[0])
        self._last_site_pv = inputs.pv_site_kw[:, 0].copy()
        self._last_site_load = inputs.compute_kw[:, 0].copy()
        self.t = 0
        self._last_car_kw = np.zeros(len(s.car_ids))
        self.fleet.begin_step(0)
        self.rec.col["trip_kwh"][0] = self.fleet.trip_kwh_step
        self.rec.col["trip_green_kwh"][0] = self.fleet.trip_green_kwh_step

    @property
    def done(self) -> bool:
        return self.t >= self.grid.n_steps

    def observation(self) -> Observation:
        """What the operator knows at the start of the current step."""
        t, inp, f, s = self.t, self.inputs, self.fleet, self.system
        return Observation(
            step=t, local_hour=float(self.grid.local_hour[t]), day_type=int(inp.day_type[t]),
            grid_available=bool(inp.grid_up[t]), price_jpy_per_kwh=float(inp.price_jpy_per_kwh[t]),
            export_price_jpy_per_kwh=float(inp.export_price_jpy_per_kwh[t]),
            co2_kg_per_kwh=float(inp.co2_kg_per_kwh[t]), pv_kw=self._last_pv, load_kw=self._last_load,
            site_pv_kw=self._last_site_pv.copy(), site_load_kw=self._last_site_load.copy(),
            battery_soc=self.bat_energy / s.battery_capacity_kwh, car_soc=f.energy_kwh / s.car_capacity_kwh,
            car_plugged=f.plugged.copy(), car_next_departure_step=f.next_departure_step.copy(),
            car_next_trip_kwh=f.next_trip_kwh.copy(), car_next_need_kwh=f.next_need_kwh.copy(), system=s, _sim=self)

    def forecast(self, step: int, steps: int) -> Forecast:
        """The day-ahead forecast from ``step`` for ``steps`` steps (the tariff is known exactly)."""
        sl = slice(step, min(step + steps, self.grid.n_steps))
        inp = self.inputs
        return Forecast(inp.pv_forecast_kw[sl], inp.load_forecast_kw[sl], inp.price_jpy_per_kwh[sl],
                        inp.co2_kg_per_kwh[sl])

    def step(self, setpoints: Setpoints | None = None) -> StepResult:
        """Apply ``setpoints`` for the current step, advance, and return the step's measurements."""
        t = self.t
        self._advance(setpoints)
        r = self.rec
        clipped = tuple(
            Clip(self.device_ids[d], float(r.clip_requested_kw[t, d]), float(r.clip_applied_kw[t, d]),
                 REASONS[r.clip_reason[t, d]]) for d in np.flatnonzero(r.clip_reason[t] != OK))
        c = r.col
        return StepResult(
            step=t, time_utc=self.grid.times_utc[t], grid_import_kw=c["grid_import_kw"][t],
            grid_export_kw=c["grid_export_kw"][t], pv_kw=c["pv_available_kw"][t], load_served_kw=c["load_served_kw"][t],
            unserved_kw=c["unserved_kw"][t], curtailment_kw=c["curtailment_kw"][t], battery_kw=r.battery_kw[t].copy(),
            battery_soc=r.battery_soc[t].copy(), car_kw=self._last_car_kw, car_soc=r.car_soc[t].astype(float),
            clipped=clipped)

    def _vector(self, v: object, n: int, what: str) -> np.ndarray:
        if v is None:
            return np.zeros(n)
        a = np.nan_to_num(np.asarray(v, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
        if a.shape != (n,):
            raise ValueError(f"setpoints.{what} needs {n} values (one per device in SystemInfo), got shape {a.shape}")
        return a

    def _advance(self, sp: Setpoints | None) -> None:
        if self.done:
            raise RuntimeError("the simulation has reached the end of its period")
        t, inp, plant, s, f, rec = self.t, self.inputs, self.plant, self.system, self.fleet, self.rec
        sp = sp or Setpoints()
        bat_req = self._vector(sp.battery_kw, len(s.battery_ids), "battery_kw")
        car_req = self._vector(sp.car_kw, len(s.car_ids), "car_kw")
        comp = inp.compute_kw[:, t].copy()
        comp_req = comp[s.compute_sites].copy()
        if sp.compute_kw is not None:
            given = self._vector(sp.compute_kw, len(s.compute_sites), "compute_kw")
            asked = ~np.isnan(np.asarray(sp.compute_kw, dtype=float))
            comp_req[asked] = given[asked]
            comp[s.compute_sites] = np.clip(comp_req, plant.compute_min_kw, plant.compute_max_kw)
        up = bool(inp.grid_up[t])
        shelters = inp.shelter_normal_kw[:, t] if up else inp.shelter_critical_kw[:, t]
        fl = dispatch(plant, t, bat_req, car_req, comp, self.bat_energy,
                      f.energy_kwh, f.plugged, float(inp.pv_town_kw[t]), inp.pv_site_kw[:, t],
                      float(self._noncritical[t]), shelters, up,
                      1.0 if sp.noncritical_share is None else float(sp.noncritical_share),
                      (sp.import_cap_kw, sp.export_cap_kw))
        account_step(self, t, fl, comp_req)
        self._last_car_kw = fl.car_kw
        # advance state: stores, then the next step's fleet events
        dt = plant.step_h
        bat, car = fl.bat_kw, fl.car_kw
        self.bat_energy = np.clip(self.bat_energy + np.where(bat > 0, bat * plant.bat_eta, bat / plant.bat_eta) * dt,
                                  0, s.battery_capacity_kwh)
        f.energy_kwh[:] = np.clip(f.energy_kwh + np.where(car > 0, car * plant.car_eta_charge,
                                                          car / plant.car_eta_discharge) * dt, 0, s.car_capacity_kwh)
        rec.battery_soc[t] = self.bat_energy / s.battery_capacity_kwh
        rec.car_soc[t] = f.energy_kwh / s.car_capacity_kwh
        self._last_pv = float(inp.pv_town_kw[t] + np.clip(fl.site_flow_kw, 0, None) @ self._link_eff)
        self._last_load = fl.town_load_kw
        self._last_site_pv = inp.pv_site_kw[:, t].copy()
        self._last_site_load = comp
        self.t += 1
        if not self.done:
            f.begin_step(self.t)
            rec.col["trip_kwh"][self.t] = f.trip_kwh_step
            rec.col["trip_green_kwh"][self.t] = f.trip_green_kwh_step

    def results(self, controller: str = "", runtime_s: float = 0.0) -> Results:
        """The records so far, with KPIs and series helpers."""
        return Results(self.scenario, controller, self.inputs, self.system, self.rec, self.fleet.totals,
                       self.t, runtime_s, self.device_ids, self.fleet.car_of.copy())


def run(sim: Simulation, controller: Controller, name: str = "",
        progress: Callable[[int, int], None] | None = None) -> Results:
    """Run ``sim`` to its end under ``controller``; ``progress(done, total)`` is called about 100 times."""
    t0 = time.perf_counter()
    every = max(1, sim.grid.n_steps // 100)
    decide, observe, advance = controller.decide, sim.observation, sim._advance
    while not sim.done:
        advance(decide(observe()))
        if progress is not None and sim.t % every == 0:
            progress(sim.t, sim.grid.n_steps)
    return sim.results(name, time.perf_counter() - t0)
