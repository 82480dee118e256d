"""``clairvoyant``: the same LP given perfect knowledge of the period, the reference for causal controllers.

It reads the simulation's actual inputs (PV, loads, prices, outages, every booking with its return) and
solves windows of ``window_days`` that overlap by ``overlap_days``: each window's schedule is applied
through the twin for its first ``window_days - overlap_days`` days, then the next window starts from the
state the twin reached (and, while the grid is down, every step: a grid-forming battery takes up whatever
the plan did not foresee, and in an island that drift must not add up). The twin's physics and KPIs are
therefore the same as for any controller.

How it relates to the true bound: a single LP over the whole year would be the exact optimum of this
model, and so an upper bound (for its objective) on what any causal controller using the same model can
reach. The windows lose a little at each boundary (the terminal value of stored energy is a guess, and the
peak seen so far starts each window), so the figures are an approximate bound: a causal controller may come
out marginally ahead on a KPI the objective weighs lightly, but not by much on the objective itself.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hotoku.energy.cars import known_bookings_bounds
from hotoku.energy.model import DispatchModel, Horizon, Plan
from hotoku.energy.network import Network
from hotoku.energy.objective import Mode, Weights, weights_for
from hotoku.energy.orchestrator import BACKLOG_HOURS, plan_setpoints
from hotoku.energy.solver import LpSolver
from hotoku.twin import Observation, Results, Setpoints, Simulation, run


def _window(a: np.ndarray, t: int, w: int) -> np.ndarray:
    """Columns [t, t + w) of a per-step array (last axis), holding the last value past the end."""
    part = a[..., t:t + w]
    short = w - part.shape[-1]
    return np.concatenate([part, np.repeat(part[..., -1:], short, axis=-1)], axis=-1) if short > 0 else part


class Clairvoyant:
    """The clairvoyant as a controller (name ``clairvoyant``): it reads the future from the simulation it is
    attached to (``obs._sim``), which no real controller may do; every ``window_days - overlap_days`` it
    plans the next ``window_days`` from the state the twin reached."""

    def __init__(self, mode: Mode | str = Mode.GREEN, *, window_days: float = 7.0, overlap_days: float = 2.0,
                 weights: Weights | None = None) -> None:
        self.mode, self.weights = Mode(mode), weights
        self.window_days, self.overlap_days = window_days, overlap_days
        self._plan: Plan | None = None
        self._h: Horizon | None = None
        self._from = 0

    def _setup(self, sim: Simulation) -> None:
        inp, s = sim.inputs, sim.system
        self.sim, self.net = sim, Network.from_scenario(sim.scenario, s)
        spd = sim.grid.steps_per_day
        n = sim.grid.n_steps
        self.w = min(max(1, round(self.window_days * spd)), n)
        self.keep = n if self.w == n else max(1, self.w - round(self.overlap_days * spd))
        self.model = DispatchModel(self.net, np.full(self.w, s.step_h))
        self.solver = LpSolver(self.model.A)
        self.wts = self.weights or weights_for(self.mode, float(inp.price_jpy_per_kwh.mean()),
                                               float(inp.co2_kg_per_kwh.mean()))
        self.noncritical = inp.homes_kw + inp.buildings_kw
        self.shelters = np.where(inp.grid_up, inp.shelter_normal_kw, inp.shelter_critical_kw)
        n = sim.grid.n_steps
        self.up = inp.grid_up.astype(bool) if self.mode is not Mode.ISLAND else np.zeros(n, dtype=bool)
        self.backlog = np.zeros(self.net.n_site)

    def decide(self, obs: Observation) -> Setpoints:
        sim = obs._sim
        if sim is None:
            raise RuntimeError("the clairvoyant needs the simulation's inputs: run it offline on a Simulation")
        if self._plan is None:
            self._setup(sim)
        t, inp, s = obs.step, sim.inputs, sim.system
        if t > 0:
            self.backlog = np.maximum(self.backlog + s.step_h * (inp.compute_kw[:, t - 1] - obs.site_load_kw), 0.0)
        if self._plan is None or t - self._from >= self.keep or not obs.grid_available:
            self._replan(obs)  # in an island every step: the grid-forming battery's drift must not add up
        j = t - self._from
        assert self._plan is not None and self._h is not None
        return plan_setpoints(self._plan, self._h, j, obs)

    def _replan(self, obs: Observation) -> None:
        sim, t, w, net = self.sim, obs.step, self.w, self.net
        inp, b = sim.inputs, sim.inputs.bookings
        car = sim.fleet.car_of  # as realised so far (a booking system may have moved one), else as planned
        ok = car >= 0
        trip = b.km[ok] * sim.system.car_kwh_per_km[car[ok]]
        car_kwh = obs.car_soc * net.car_capacity_kwh
        cars = known_bookings_bounds(net, car_kwh, car[ok], b.start_step[ok] - t, b.end_step[ok] - t, trip, w,
                                     ~_window(self.up, t, w))
        peak = max(float(sim.rec.col["grid_import_kw"][:t].max()) if t else 0.0,
                   sim.scenario.grid.demand_target_kw or 0.0)
        self._h = h = Horizon(
            pv_town_kw=_window(inp.pv_town_kw, t, w), pv_site_kw=_window(inp.pv_site_kw, t, w),
            noncritical_kw=_window(self.noncritical, t, w), shelter_kw=_window(self.shelters, t, w),
            compute_kw=_window(inp.compute_kw, t, w), price_jpy_per_kwh=_window(inp.price_jpy_per_kwh, t, w),
            export_price_jpy_per_kwh=_window(inp.export_price_jpy_per_kwh, t, w),
            co2_kg_per_kwh=_window(inp.co2_kg_per_kwh, t, w), grid_up=_window(self.up, t, w),
            bat_energy_kwh=obs.battery_soc * net.bat_capacity_kwh,
            bat_min_kwh=np.broadcast_to((net.bat_soc_min * net.bat_capacity_kwh)[:, None], (net.n_bat, w)),
            car_energy_kwh=car_kwh, car_plugged=cars.plugged, car_trip_kwh=cars.trip_kwh, car_min_kwh=cars.min_kwh,
            car_max_kwh=cars.max_kwh,
            backlog_kwh=self.backlog.copy(), backlog_max_kwh=BACKLOG_HOURS * net.compute_profile_kw.mean(axis=1),
            peak_so_far_kw=peak)
        x, obj = self.solver.solve(*self.model.bounds_and_costs(h, self.wts))
        self._plan, self._from = self.model.plan(x, obj), t


def run_clairvoyant(sim: Simulation, mode: Mode | str = Mode.GREEN, *, window_days: float = 7.0,
                    overlap_days: float = 2.0, weights: Weights | None = None,
                    progress: Callable[[int, int], None] | None = None) -> Results:
    """Run ``sim`` to its end under the clairvoyant schedule; returns the twin's ``Results`` ("clairvoyant")."""
    ctl = Clairvoyant(mode, window_days=window_days, overlap_days=overlap_days, weights=weights)
    return run(sim, ctl, "clairvoyant", progress=progress)
