"""``hotoku``: the rolling-horizon (MPC) controller. Each step: measure, forecast, solve the LP, apply step one.

It sees only what the twin's ``Observation`` gives an operator, plus static facts: the scenario (ratings,
links, array orientations) and the calendar, both read once from the simulation it is attached to (or
given). PV and load come from ``forecast``; cars' needs from the bookings made so far; outages from
warnings the caller hands it. Only the first period of each plan is applied (Rawlings, Mayne, Diehl 2017,
Model Predictive Control, ch. 1: receding horizon).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from hotoku.energy.cars import RETURN_SOC, next_booking_bounds
from hotoku.energy.forecast import ErrorTracker, LoadForecaster, PVForecaster, clear_sky_pv_kw
from hotoku.energy.model import DispatchModel, Horizon, Plan, reachable_kwh
from hotoku.energy.network import Network
from hotoku.energy.objective import Mode, Weights, weights_for
from hotoku.energy.outage import OutageWarning, expected_down
from hotoku.energy.plan_entity import plan_entity
from hotoku.energy.solver import LpSolver
from hotoku.town import Scenario, TimeGrid
from hotoku.twin.controller import Observation, Setpoints

READY_SOC = 0.3  # a plugged-in car charges at once below this: enough for a typical walk-up trip (about 50 km);
# a longer trip booked at short notice goes to a car that holds enough (the booking system checks), and a
# higher floor means charging at night from the grid what the next day's sun would have given
STANDING_RESERVE_SOC = 0.5  # resilience mode: town batteries keep this much for an unannounced outage
BACKLOG_HOURS = 6.0  # compute work may wait at most this long (in hours of its profile)
PEAK_Z = 3.0  # planned import stays this many load-forecast spreads below the peak (the first period: scenarios)
LONG_TRIP_CARS = 1  # per station, the fullest idle car is kept ready for the longest walk-up trip ...
LONG_TRIP_SOC = 0.75  # ... about 165 km plus the reserve (the longest trip members book)
LONG_TRIP_FREE_H = 12.0  # ... among cars booked by no one for this long (a long trip lasts up to a day)
ISLAND_Z = 1.65  # without the grid, plan on PV and load each at their 5 % worst
FINE_H = 8.0  # the horizon's first hours are planned step by step (what is applied, and where the latest error
COARSE_STEPS = 4  # moves the forecast most); beyond them, in periods of this many steps (an hour): "move
# blocking" (Cagienard et al. 2007, J. Process Control 17(6), 563-570), which keeps the look-ahead with half
# the LP. On four windows of the Odawara year (77 days) it halved the runtime for +0.015 % import; with 4 h
# step by step the runtime fell to 0.36 of it but import rose 0.34 %


class Orchestrator:
    """The town's MPC controller (name ``hotoku``); one instance serves one run."""

    def __init__(self, mode: Mode | str = Mode.GREEN, horizon_h: float = 24.0, *, scenario: Scenario | None = None,
                 grid: TimeGrid | None = None, warnings: Iterable[OutageWarning] = (), ready_soc: float = READY_SOC,
                 return_soc: float = RETURN_SOC, weights: Weights | None = None, warm_start: bool = True,
                 use_day_ahead: bool = True, stretch: bool = False, fine_h: float | None = FINE_H) -> None:
        if not 0 < horizon_h <= 48:
            raise ValueError("horizon_h must lie in (0, 48]")
        self.mode, self.horizon_h = Mode(mode), horizon_h
        self.scenario, self.grid = scenario, grid
        self.warnings = list(warnings)
        self.ready_soc, self.return_soc, self.weights = ready_soc, return_soc, weights
        self.warm_start, self.use_day_ahead, self.stretch = warm_start, use_day_ahead, stretch
        self.fine_h = fine_h  # None: every period one step
        self.stretched_steps = 0  # steps planned over twice the horizon (see ``decide``)
        self.solve_s: list[float] = []
        self.failed_solves = 0
        self.last_error = ""
        self.last: tuple[int, Plan, Horizon] | None = None  # the latest plan: step, schedule, inputs
        self._ready = False

    def warn(self, warning: OutageWarning) -> None:
        """Tell the controller the grid is expected down (usable from ``warning.issued_step``)."""
        self.warnings.append(warning)

    def _setup(self, obs: Observation) -> None:
        sim = obs._sim  # static facts only: the scenario's ratings and the calendar, never its inputs
        self.scenario = self.scenario or (sim.scenario if sim is not None else None)
        self.grid = self.grid or (sim.grid if sim is not None else None)
        if self.scenario is None or self.grid is None:
            raise ValueError("Orchestrator needs the scenario and time grid: pass scenario= and grid=")
        s = obs.system
        self.net = net = Network.from_scenario(self.scenario, s)
        self.K = k = max(1, round(self.horizon_h / s.step_h))
        self._lps: dict[tuple[int, ...], tuple[DispatchModel, LpSolver]] = {}
        g = self.grid
        longer = TimeGrid(g.start, g.n_steps + 2 * k, g.step_minutes, g.timezone)
        town, sites = clear_sky_pv_kw(self.scenario, longer.midpoints_utc)
        self.pv = PVForecaster(town, sites)
        self.load = LoadForecaster(g.steps_per_day)
        self.pv_errors, self.load_errors = ErrorTracker(k), ErrorTracker(k)
        fc = obs.forecast(round(24 / s.step_h))
        self.w = self.weights or weights_for(self.mode, float(np.mean(fc.price_jpy_per_kwh)),
                                             float(np.mean(fc.co2_kg_per_kwh)))
        self.system = s
        self.backlog = np.zeros(net.n_site)
        self.peak_kw = self.scenario.grid.demand_target_kw or 0.0  # import may reach this at no cost: the demand
        # target, then the highest import measured (the contract follows the year's highest demand)
        self._prev: Observation | None = None
        self._prev_car_kw = np.zeros(net.n_car)
        self._ready = True

    def decide(self, obs: Observation) -> Setpoints:
        if not self._ready:
            self._setup(obs)
        k, t = self.K, obs.step
        self._measure(obs)
        # ``stretch``: a day after the horizon that the stores cannot meet within the peak (a cloudy heat wave)
        # is planned with the LP over both days instead of a bound on the last stores. Off by default: on the
        # Odawara year it left the peak where the bound had it (267 kW against 265) at a longer runtime
        if self.stretch and self._day_after_kwh(obs, k).sum() > 0:
            k = 2 * k
            self.stretched_steps += 1
        fc = obs.forecast(k)
        da_pv = _pad(fc.pv_kw, k) if self.use_day_ahead else None
        da_load = _pad(fc.load_kw, k) if self.use_day_ahead else None
        pv_town, pv_site = self.pv.forecast(t, k, da_pv)
        load = self.load.forecast(k, da_load)
        self.pv_errors.issue(t, pv_town + pv_site.sum(axis=0), self._last_pv, da_pv)
        self.load_errors.issue(t, load, obs.load_kw if t else np.nan, da_load)
        h = self._horizon(obs, self.periods(k), pv_town, pv_site, load, _pad(fc.price_jpy_per_kwh, k),
                          _pad(fc.co2_kg_per_kwh, k))
        plan = self._solve(h)
        self._prev = obs
        if plan is None:
            return self._fallback(obs, h)
        self.last = (t, plan, h)
        sp = plan_setpoints(plan, h, 0, obs)
        self._prev_car_kw = np.asarray(sp.car_kw)
        return sp

    def _measure(self, obs: Observation) -> None:
        """Turn the measurements of the step just ended into forecast updates, the peak and the work backlog."""
        prev, net, dt = self._prev, self.net, self.net.step_h
        self._last_pv = np.nan
        if prev is None:
            return
        d_kwh = (obs.battery_soc - prev.battery_soc) * net.bat_capacity_kwh
        bat_kw = np.where(d_kwh > 0, d_kwh / (net.bat_eta * dt), d_kwh * net.bat_eta / dt)
        at_site = np.zeros(net.n_site)
        np.add.at(at_site, net.bat_site[net.bat_site >= 0], bat_kw[net.bat_site >= 0])
        flow = obs.site_pv_kw - obs.site_load_kw - at_site
        delivered = np.minimum(np.maximum(flow, 0), net.site_link_kw) * (1 - net.site_link_loss)
        drawn = np.maximum(-flow, 0) / (1 - net.site_link_loss)
        total = max(obs.pv_kw - float(delivered.sum()), 0.0) + float(obs.site_pv_kw.sum())
        self._last_pv = total
        self.pv.measure(prev.step, total)
        self.pv_errors.measure(prev.step, total)
        self.load.measure(obs.load_kw)
        self.load_errors.measure(prev.step, obs.load_kw)
        if prev.grid_available:
            town = net.bat_site < 0
            imp = (obs.load_kw + float(self._prev_car_kw.sum()) + float(bat_kw[town].sum()) - obs.pv_kw
                   + float(drawn.sum()))
            self.peak_kw = max(self.peak_kw, imp)
        hour = int(prev.local_hour) % 24
        self.backlog = np.maximum(self.backlog + dt * (net.compute_profile_kw[:, hour] - obs.site_load_kw), 0.0)

    def periods(self, steps: int) -> np.ndarray:
        """Lengths in steps of the horizon's periods: one step each for ``fine_h``, then ``COARSE_STEPS``."""
        fine = steps if self.fine_h is None else min(steps, max(1, round(self.fine_h / self.net.step_h)))
        rest = steps - fine
        coarse = [COARSE_STEPS] * (rest // COARSE_STEPS) + ([rest % COARSE_STEPS] if rest % COARSE_STEPS else [])
        return np.array([1] * fine + coarse, dtype=int)

    def _horizon(self, obs: Observation, lengths: np.ndarray, pv_town: np.ndarray, pv_site: np.ndarray,
                 load: np.ndarray, price: np.ndarray, co2: np.ndarray) -> Horizon:
        """The LP's inputs over periods of ``lengths`` steps, from forecasts per step."""
        net, t, step = self.net, obs.step, self.net.step_h
        n, edges = int(lengths.sum()), np.concatenate([[0], np.cumsum(lengths)])
        k, dt = len(lengths), lengths * step
        down = expected_down(self.warnings, t, edges, step, obs.grid_available) | (self.mode is Mode.ISLAND)
        up = ~down
        hours = np.floor(obs.local_hour + np.arange(n) * step).astype(int) % 24
        compute = net.compute_profile_kw[:, hours]
        if down.any():  # without the grid a forecast error cuts loads: plan on a pessimistic forecast there
            off = np.repeat(down, lengths)
            pv_low = np.exp(-ISLAND_Z * self.pv.error.spread(n))
            pv_town, pv_site = np.where(off, pv_town * pv_low, pv_town), np.where(off, pv_site * pv_low, pv_site)
            load = np.where(off, load + ISLAND_Z * self.load.spread_kw, load)
        shelters = np.where(up, net.shelter_normal_kw[:, None], net.shelter_critical_kw[:, None])
        cap = net.bat_capacity_kwh
        bat_e = obs.battery_soc * cap
        bat_min = np.broadcast_to(net.bat_soc_min[:, None] * cap[:, None], (net.n_bat, k)).copy()
        fill_by = None
        reach = reachable_kwh(bat_e, net.bat_charge_kw, net.bat_eta, dt)
        if self.mode is Mode.RESILIENCE:
            town = net.bat_site < 0
            bat_min[town] = np.maximum(bat_min[town], np.minimum(STANDING_RESERVE_SOC * cap[town, None], reach[town]))
        if not down.any():  # the day after the horizon: enter it with what keeps its import within the peak
            town = net.bat_site < 0
            # ... charged within that peak's headroom on the forecast (the bound must not itself set a peak)
            own = load + compute.sum(axis=0) - pv_town - pv_site.sum(axis=0)
            room = np.minimum(np.maximum(self.peak_kw - own, 0.0)[None, :], net.bat_charge_kw[town, None])
            within = bat_e[town] + net.bat_eta[town] * room.sum(axis=1) * step * cap[town] / cap[town].sum()
            bat_min[town, -1] = np.maximum(bat_min[town, -1], np.minimum.reduce([
                self._day_after_kwh(obs, n) / net.bat_eta[town] + net.bat_soc_min[town] * cap[town],
                net.bat_soc_max[town] * cap[town], reach[town, -1], np.maximum(within, bat_min[town, -1])]))
        first = int(np.argmax(down)) if down.any() else 0
        if first >= 1:  # a warned outage ahead: every store full when it starts (planned from the warning on)
            fill_by = first - 1
            bat_min[:, fill_by] = np.maximum(bat_min[:, fill_by], np.minimum(net.bat_soc_max * cap, reach[:, fill_by]))
        ready = self._ready_floor(obs) if obs.grid_available else 0.0  # in an outage V2G may go down to its floor
        cars = next_booking_bounds(net, obs.car_soc * net.car_capacity_kwh, obs.car_plugged,
                                   obs.car_next_departure_step - t, obs.car_next_trip_kwh, edges, ready,
                                   self.return_soc, fill_by, down, obs.car_next_need_kwh)
        starts = edges[:-1]

        def mean(a: np.ndarray) -> np.ndarray:  # per-step values to per-period means
            return np.add.reduceat(np.asarray(a, dtype=float), starts, axis=-1) / lengths

        load = mean(load)
        margin = PEAK_Z * self.load.spread_kw[edges[1:] - 1]
        margin[0] = 0.0
        return Horizon(
            pv_town_kw=mean(pv_town), pv_site_kw=mean(pv_site),
            noncritical_kw=np.maximum(load - float(net.shelter_normal_kw.sum()), 0.0), shelter_kw=shelters,
            compute_kw=mean(compute), price_jpy_per_kwh=mean(price),
            export_price_jpy_per_kwh=np.full(k, obs.export_price_jpy_per_kwh), co2_kg_per_kwh=mean(co2),
            grid_up=up, bat_energy_kwh=bat_e, bat_min_kwh=bat_min, car_energy_kwh=obs.car_soc * net.car_capacity_kwh,
            car_plugged=cars.plugged, car_trip_kwh=cars.trip_kwh,
            car_min_kwh=cars.min_kwh, car_max_kwh=cars.max_kwh, backlog_kwh=self.backlog,
            backlog_max_kwh=BACKLOG_HOURS * net.compute_profile_kw.mean(axis=1),
            peak_so_far_kw=self.peak_kw,
            spread_kw=float(np.hypot(self.pv.spread_kw[0], self.load.spread_kw[0])),
            peak_margin_kw=margin, dt_h=dt)

    def _day_after_kwh(self, obs: Observation, k: int) -> np.ndarray:
        """Energy the town batteries (shared by capacity) must hold at the horizon's end so that, on the
        day-ahead forecast of the 24 h after it, import need not exceed the peak so far: the largest running
        sum, from the horizon's end, of net load above that peak. A cheap look-ahead in place of a longer
        horizon (a cloudy heat wave needs the stores filled, within the peak, the night before)."""
        net = self.net
        town = net.bat_site < 0
        fc = obs.forecast(2 * k)
        if len(fc.pv_kw) < 2 * k or self.peak_kw <= 0 or not town.any():
            return np.zeros(int(town.sum()))
        hours = np.floor(obs.local_hour + np.arange(k, 2 * k) * net.step_h).astype(int) % 24
        net_load = fc.load_kw[k:] + net.compute_profile_kw[:, hours].sum(axis=0) - fc.pv_kw[k:]
        need = max(float(np.max(np.cumsum((net_load - self.peak_kw) * net.step_h))), 0.0)
        cap = net.bat_capacity_kwh[town]
        return need * cap / cap.sum()

    def _ready_floor(self, obs: Observation) -> np.ndarray:
        """Per car, the SOC below which it charges at once: low for most cars (a typical trip), high for the
        ``LONG_TRIP_CARS`` cars of each station free for a long trip (unbooked for ``LONG_TRIP_FREE_H``, else at
        least 4 h; the fullest first), so a long trip booked at short notice finds a car (the booking system
        would refuse it otherwise)."""
        s = obs.system
        floor = np.full(len(s.car_ids), self.ready_soc)
        free_for = np.where(obs.car_plugged, obs.car_next_departure_step - obs.step, -1)
        idle, long_free = free_for > round(4 / s.step_h), free_for > round(LONG_TRIP_FREE_H / s.step_h)
        for st in range(len(s.station_ids)):
            mine = np.flatnonzero((s.car_station == st) & idle)
            order = np.lexsort((-obs.car_soc[mine], ~long_free[mine]))  # free the longest, then the fullest
            floor[mine[order[:LONG_TRIP_CARS]]] = LONG_TRIP_SOC
        return floor

    def forecast_errors(self) -> dict[str, dict[str, dict[str, float]]]:
        """MAE and skill against persistence of the PV and load forecasts so far, by lead."""
        minutes = round(self.net.step_h * 60)
        return {"pv_kw": self.pv_errors.report(minutes), "load_kw": self.load_errors.report(minutes)}

    def published_entities(self, town: str, at: str) -> list[dict]:
        """The latest plan as an ``EnergySchedule`` entity, for the live loop to write to the broker."""
        if self.last is None:
            return []
        step, plan, h = self.last
        minutes = _period_h(h, self.net.step_h) * 60
        return [plan_entity(town, step, minutes, self.mode.value, plan, h, self.system.battery_ids,
                            self.system.car_ids, self.solve_s[-1], at)]

    def solve_p95_s(self) -> float:
        return float(np.percentile(self.solve_s, 95)) if self.solve_s else 0.0

    def _lp(self, dt_h: np.ndarray) -> tuple[DispatchModel, LpSolver]:
        """The LP over periods of ``dt_h`` hours and its solver (kept, so each horizon warm-starts from its own
        last basis)."""
        key = tuple(np.round(dt_h / self.net.step_h).astype(int))
        if key not in self._lps:
            model = DispatchModel(self.net, dt_h)
            self._lps[key] = model, LpSolver(model.A, warm=self.warm_start)
        return self._lps[key]

    def _solve(self, h: Horizon) -> Plan | None:
        model, solver = self._lp(_period_h(h, self.net.step_h))
        cost, lo, hi, rlo, rhi = model.bounds_and_costs(h, self.w)
        try:
            x, obj = solver.solve(cost, lo, hi, rlo, rhi)
        except Exception as e:  # any failure of the solver falls back to the safe rule, and is counted
            self.failed_solves += 1
            self.last_error = f"step {len(self.solve_s)}: {e}"
            self.solve_s.append(solver.last_solve_s)
            return None
        self.solve_s.append(solver.last_solve_s)
        return model.plan(x, obj)

    def _fallback(self, obs: Observation, h: Horizon) -> Setpoints:
        """No plan: with the grid, charge every plugged car flat out (no booking fails), batteries idle; without
        it, only shelters are served and the stores are left to them."""
        up = obs.grid_available
        car = self.net.car_charge_kw * (obs.car_plugged & (obs.car_soc < self.net.car_soc_max)) * up
        self._prev_car_kw = car
        return Setpoints(car_kw=car, noncritical_share=None if up else 0.0)


def plan_setpoints(plan: Plan, h: Horizon, j: int, obs: Observation) -> Setpoints:
    """Period ``j`` of a plan as the twin's setpoints: device powers (cars only where plugged in), the share of
    homes and buildings served where the plan sheds, and, with the grid up, the plan's grid flow as caps that
    the batteries hold against what the forecast missed (grid-limit mode)."""
    share = None
    if not h.grid_up[j] or plan.shed_kw[j] > 1e-6:
        share = float(np.clip(1 - plan.shed_kw[j] / max(h.noncritical_kw[j], 1e-9), 0.0, 1.0))
    up = bool(h.grid_up[j] and obs.grid_available)
    return Setpoints(battery_kw=plan.battery_kw[:, j], car_kw=np.where(obs.car_plugged, plan.car_kw[:, j], 0.0),
                     compute_kw=plan.compute_kw[obs.system.compute_sites, j], noncritical_share=share,
                     import_cap_kw=float(plan.import_kw[j]) if up else None,
                     export_cap_kw=float(plan.export_kw[j]) if up else None)


def _period_h(h: Horizon, step_h: float) -> np.ndarray:
    """The horizon's period lengths in hours (one step each where it does not say)."""
    return h.dt_h if h.dt_h is not None else np.full(len(h.grid_up), step_h)


def _pad(a: np.ndarray, k: int) -> np.ndarray:
    """Hold the last value past the end of the run (the horizon may reach beyond it)."""
    a = np.asarray(a, dtype=float)
    return np.pad(a, (0, k - len(a)), mode="edge") if 0 < len(a) < k else a[:k]
