"""Was a failed booking the controller's fault? Each departure against a fleet that charged flat out.

A booking fails when its car leaves with less than the trip's energy plus the reserve. The reference is the
same fleet, with the same bookings, charging flat out whenever plugged in (the ``uncontrolled`` rule, the
most a car can hold at any moment): a failure the reference avoids is the controller's (the car was left
short, or served as a battery, when it could have been ready); one the reference also suffers (a car back
late and booked again at once for a long trip) no controller could have saved. The twin records car SOC in
float32, hence the tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hotoku.twin import Results

EPS_KWH = 1e-3


@dataclass(frozen=True)
class BookingAudit:
    """Bookings started, failed, failed although the flat-out fleet served them, and failed after the car
    fed the grid since it last came back (the seed's "failed by a car that served as a battery")."""

    started: int
    failed: int
    avoidable: int
    after_v2g: int
    worst_shortfall_kwh: float  # largest (need - energy at departure) among avoidable failures, 0 if none
    avoidable_bookings: tuple[int, ...] = ()  # indices into the run's bookings


def flat_out_energy_kwh(res: Results) -> np.ndarray:
    """Energy each car holds at the start of each step (steps × cars) when it charges flat out when plugged in."""
    s, b, mob = res.system, res.bookings, res.scenario.mobility
    assert mob is not None
    n, cap = res.steps, s.car_capacity_kwh
    ok = np.flatnonzero(b.car >= 0)
    leave = np.zeros((n + 1, len(cap)))
    away = np.zeros((n + 1, len(cap)))
    inside = ok[b.start_step[ok] < n]
    np.add.at(leave, (b.start_step[inside], b.car[inside]), b.km[inside] * s.car_kwh_per_km[b.car[inside]])
    np.add.at(away, (b.start_step[inside], b.car[inside]), 1)
    np.add.at(away, (np.minimum(b.end_step[inside], n), b.car[inside]), -1)
    out = np.cumsum(away, axis=0)[:n] > 0
    gain = s.car_charge_kw * mob.charge_efficiency * s.step_h
    full, reserve = s.car_soc_max * cap, s.car_reserve_soc * cap
    e = mob.soc_initial * cap
    at_start = np.empty((n, len(cap)))
    for t in range(n):
        at_start[t] = e  # before this step's departures, as the twin checks them
        e = e - np.minimum(leave[t], np.maximum(e - reserve, 0.0))
        e = np.where(out[t], e, np.maximum(e, np.minimum(e + gain, full)))
    return at_start


def audit_bookings(res: Results) -> BookingAudit:
    """Check every booking that started within the run (from the twin's records of SOC per step)."""
    s, b, mob = res.system, res.bookings, res.scenario.mobility
    if mob is None or len(b) == 0:
        return BookingAudit(0, 0, 0, 0, 0.0)
    cap = s.car_capacity_kwh
    soc = res.rec.car_soc[: res.steps]
    reference = flat_out_energy_kwh(res)
    started = np.flatnonzero((b.car >= 0) & (b.start_step < res.steps))
    failed = after_v2g = 0
    worst = 0.0
    avoidable: list[int] = []
    for i in started:
        c, d = int(b.car[i]), int(b.start_step[i])
        need = float(b.km[i] * s.car_kwh_per_km[c] + s.car_reserve_soc * cap[c])
        have = float(soc[d - 1, c] * cap[c]) if d > 0 else float(mob.soc_initial * cap[c])
        if have >= need - EPS_KWH:
            continue
        failed += 1
        if reference[d, c] >= need - EPS_KWH:
            avoidable.append(int(i))
            worst = max(worst, need - have)
        before = (b.car == c) & (b.end_step <= d) & (b.start_step < d)
        back = int(b.end_step[before].max()) if before.any() else 0
        after_v2g += bool((np.diff(soc[max(back - 1, 0):d, c]) < -1e-4).any())
    return BookingAudit(len(started), failed, len(avoidable), after_v2g, worst, tuple(avoidable))
