"""Fleet-charging LP: the reference optimum ("the LP optimum") for the scaling studies.

N cars over one day on a fixed grid (96 steps of 15 minutes by default). Car ``i`` is plugged in from
``arrival_step[i]`` up to (not including) ``departure_step[i]``; a departure at or before the arrival wraps past
midnight, so the day is periodic (a car that plugs in at 19:00 and leaves at 07:00 is available over the night
of the same representative day). The site has PV, a non-EV base load, a grid connection limit on import and a
time-of-use tariff. The model::

    min  Σ_t c_t Δt g_t  +  P Σ_i u_i  +  Σ_it ε_it Δt x_it
    s.t. Σ_t x_it Δt + u_i = E_i                       (energy by departure; u_i unmet, reported)
         Σ_i x_it - g_t ≤ pv_t - base_t                 (import covers the net load; PV surplus is spilled)
         0 ≤ x_it ≤ p_i in the car's window, 0 ≤ g_t ≤ limit, 0 ≤ u_i ≤ E_i

``ε_it`` is a tiny tie-break that prefers earlier steps in each car's window (among equally priced steps, a
car charged sooner is worth more to its driver). The matrix is built column-wise with numpy in one go and
handed to HiGHS (Huangfu & Hall, "Parallelizing the dual revised simplex method", Math. Prog. Comp. 2018)
through ``highspy.Highs.passModel`` — no Python loop over variables.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np

STEPS_PER_DAY = 96
STEP_H = 0.25
UNMET_PENALTY_JPY_PER_KWH = 1_000.0  # far above any tariff: energy is never left unmet to save money
TIE_BREAK_JPY_PER_KWH = 1e-3  # the whole span of the earliness tie-break, far below any tariff difference


@dataclass(frozen=True)
class Fleet:
    """The cars' charging sessions (arrays of length N); steps index the day's grid."""

    arrival_step: np.ndarray  # int, first step plugged in
    departure_step: np.ndarray  # int, first step gone (≤ arrival wraps past midnight)
    energy_kwh: np.ndarray  # energy wanted by departure
    max_power_kw: np.ndarray  # charger/car limit

    @property
    def n(self) -> int:
        return len(self.energy_kwh)


@dataclass(frozen=True)
class Site:
    """The site: per-step PV, base load and tariff, and the grid connection limit on import."""

    pv_kw: np.ndarray
    base_load_kw: np.ndarray
    price_jpy_per_kwh: np.ndarray
    grid_limit_kw: float
    step_h: float = STEP_H
    unmet_penalty_jpy_per_kwh: float = UNMET_PENALTY_JPY_PER_KWH

    @property
    def n_steps(self) -> int:
        return len(self.price_jpy_per_kwh)

    @property
    def surplus_kw(self) -> np.ndarray:
        """PV left after the base load (negative where the base load needs the grid)."""
        return np.asarray(self.pv_kw, float) - np.asarray(self.base_load_kw, float)


@dataclass(frozen=True)
class FleetSchedule:
    """A schedule and what it costs; ``solve_s`` is the wall time of the method that made it."""

    power_kw: np.ndarray  # N × T
    unmet_kwh: np.ndarray  # N
    grid_import_kw: np.ndarray  # T
    objective_jpy: float
    solve_s: float
    status: str = "optimal"
    lower_bound_jpy: float | None = None  # a valid lower bound on the LP optimum, where the method has one


def check_site(site: Site) -> None:
    """Raise if the base load alone breaks the connection limit: then no EV schedule can be feasible."""
    short = site.grid_limit_kw + site.surplus_kw < -1e-9
    if short.any():
        steps = np.nonzero(short)[0].tolist()
        raise ValueError(f"base load less PV exceeds the grid limit at steps {steps}; raise grid_limit_kw")


def window_offset(fleet: Fleet, n_steps: int) -> np.ndarray:
    """Steps since arrival (N × T), or -1 where the car is not plugged in (periodic day)."""
    a = np.asarray(fleet.arrival_step, np.int64)[:, None]
    d = np.asarray(fleet.departure_step, np.int64)[:, None]
    length = (d - a - 1) % n_steps + 1
    off = (np.arange(n_steps)[None, :] - a) % n_steps
    return np.where(off < length, off, -1)


def availability(fleet: Fleet, n_steps: int) -> np.ndarray:
    """Boolean N × T: car plugged in at step t."""
    return window_offset(fleet, n_steps) >= 0


def tie_break(fleet: Fleet, n_steps: int) -> np.ndarray:
    """ε_it in JPY/kWh (N × T): grows from 0 at arrival to ``TIE_BREAK_JPY_PER_KWH`` at the end of the day."""
    off = window_offset(fleet, n_steps)
    return np.where(off >= 0, TIE_BREAK_JPY_PER_KWH * off / n_steps, 0.0)


def deliverable_kwh(fleet: Fleet, n_steps: int, step_h: float = STEP_H) -> np.ndarray:
    """The most energy each car can take in its window at full power."""
    return availability(fleet, n_steps).sum(axis=1) * np.asarray(fleet.max_power_kw, float) * step_h


def evaluate(power_kw: np.ndarray, fleet: Fleet, site: Site) -> tuple[float, np.ndarray, np.ndarray]:
    """Objective (JPY), unmet energy (kWh per car) and grid import (kW) of any schedule, as the LP counts them."""
    p = np.asarray(power_kw, float)
    dt = site.step_h
    unmet = np.maximum(np.asarray(fleet.energy_kwh, float) - p.sum(axis=1) * dt, 0.0)
    grid = np.maximum(p.sum(axis=0) - site.surplus_kw, 0.0)
    eps = tie_break(fleet, site.n_steps)
    obj = float(
        np.dot(site.price_jpy_per_kwh, grid) * dt
        + site.unmet_penalty_jpy_per_kwh * unmet.sum()
        + np.einsum("it,it->", eps, p) * dt
    )
    return obj, unmet, grid


def violation_kw(power_kw: np.ndarray, fleet: Fleet, site: Site) -> float:
    """Largest breach of any constraint in kW (connection limit, power bounds, window, over-delivery)."""
    p = np.asarray(power_kw, float)
    grid = p.sum(axis=0) - site.surplus_kw
    avail = availability(fleet, site.n_steps)
    over_e = (p.sum(axis=1) * site.step_h - np.asarray(fleet.energy_kwh, float)) / site.step_h
    return float(
        max(
            (grid - site.grid_limit_kw).max(initial=0.0),
            (p - np.asarray(fleet.max_power_kw, float)[:, None]).max(initial=0.0),
            (-p).max(initial=0.0),
            np.abs(p[~avail]).max(initial=0.0),
            over_e.max(initial=0.0),
        )
    )


def solve_fleet_lp(
    fleet: Fleet,
    site: Site,
    *,
    solver: str = "ipm",
    time_limit_s: float = 3600.0,
    threads: int = 0,
) -> FleetSchedule:
    """Solve the fleet LP with HiGHS; ``solver`` is HiGHS's option (``ipm``, ``simplex``, ``pdlp``)."""
    t0 = time.perf_counter()
    check_site(site)
    n, n_steps, dt = fleet.n, site.n_steps, site.step_h
    avail = availability(fleet, n_steps)
    car, step = np.nonzero(avail)  # car-major: one column per (car, step) in a window
    k = len(car)
    energy = np.asarray(fleet.energy_kwh, float)
    pmax = np.asarray(fleet.max_power_kw, float)
    price = np.asarray(site.price_jpy_per_kwh, float)
    eps = tie_break(fleet, n_steps)[car, step]

    # Columns: x (k), u (n), g (T). Rows: energy (n), coupling (T).
    num_col, num_row = k + n + n_steps, n + n_steps
    cost = np.concatenate([eps * dt, np.full(n, site.unmet_penalty_jpy_per_kwh), price * dt])
    col_lo = np.zeros(num_col)
    col_hi = np.concatenate([pmax[car], energy, np.full(n_steps, site.grid_limit_kw)])
    start = np.concatenate([np.arange(0, 2 * k, 2), 2 * k + np.arange(n + n_steps + 1)]).astype(np.int32)
    index = np.empty(2 * k + n + n_steps, np.int32)
    index[0 : 2 * k : 2] = car
    index[1 : 2 * k : 2] = n + step
    index[2 * k : 2 * k + n] = np.arange(n)
    index[2 * k + n :] = n + np.arange(n_steps)
    value = np.empty(2 * k + n + n_steps)
    value[0 : 2 * k : 2] = dt
    value[1 : 2 * k : 2] = 1.0
    value[2 * k : 2 * k + n] = 1.0
    value[2 * k + n :] = -1.0
    row_lo = np.concatenate([energy, np.full(n_steps, -highspy.kHighsInf)])
    row_hi = np.concatenate([energy, site.surplus_kw])

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("solver", solver)
    h.setOptionValue("time_limit", float(time_limit_s))
    if threads:
        h.setOptionValue("threads", int(threads))
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = num_col, num_row
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, col_lo, col_hi
    lp.row_lower_, lp.row_upper_ = row_lo, row_hi
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = start, index, value
    if h.passModel(lp) != highspy.HighsStatus.kOk:
        raise RuntimeError("HiGHS rejected the fleet LP")
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"fleet LP not solved: {status}")
    x = np.asarray(h.getSolution().col_value)
    power = np.zeros((n, n_steps))
    power[car, step] = np.clip(x[:k], 0.0, pmax[car])
    solve_s = time.perf_counter() - t0
    obj, unmet, grid = evaluate(power, fleet, site)
    return FleetSchedule(power, unmet, grid, obj, solve_s, status, lower_bound_jpy=obj)
