"""The sharing cars as stores with appointments: when each is plugged in, and the energy each booking needs.

Booking safety is built into the bounds, not the costs: at the end of the period before a booking starts,
the car holds the trip's energy plus the reserve and a margin, capped only by what charging flat out can
reach (so the LP stays feasible, and then charges flat out). The booking system says what each car must
hold at its next departure for all its known bookings, so a chain of bookings is planned for, not only the
next one. A car therefore never serves as a battery at the expense of a booking. While a car is plugged in,
a low floor keeps it ready for short walk-up trips, and it never feeds the grid below its V2G floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hotoku.energy.network import Network

TRIP_MARGIN = 0.05  # share of the trip's energy added: consumption varies with traffic and weather
SOC_MARGIN = 0.02  # added to the reserve
READY_RATE = 0.5  # share of the charger's rating that brings a car up to its readiness floor: half rate keeps
# a fleet coming back at once (after an outage) from setting the year's import peak
RETURN_SOC = 0.0  # a car need not come back charged: the booking system gives a booking made while it is out
# only to a car that can serve it from its real state (``hotoku.twin.fleet``), so only the reserve is kept


@dataclass(frozen=True)
class CarBounds:
    """Per car and period: plugged in, energy leaving with a trip at the period's start, the energy window."""

    plugged: np.ndarray
    trip_kwh: np.ndarray
    min_kwh: np.ndarray
    max_kwh: np.ndarray


def need_kwh(net: Network, trip_kwh: np.ndarray, car: np.ndarray | slice = slice(None),
             return_soc: float = 0.0) -> np.ndarray:
    """Energy a car must hold when a booking starts: the trip, the reserve (or ``return_soc`` if higher, to
    come back ready for a booking right after), and margins; at most full."""
    cap = net.car_capacity_kwh[car]
    after = max(net.car_reserve_soc + SOC_MARGIN, return_soc)
    return np.minimum(trip_kwh * (1 + TRIP_MARGIN) + after * cap, net.car_soc_max * cap)


def car_bounds(net: Network, energy_kwh: np.ndarray, home: np.ndarray, trip_kwh: np.ndarray,
               need_before: np.ndarray, floor_kwh: np.ndarray, dt_h: np.ndarray,
               keep_kwh: np.ndarray | None = None, floor_rate: float = 1.0,
               down: np.ndarray | None = None) -> CarBounds:
    """Energy windows from plug-in periods, trips, booking needs (at the end of the period before each trip,
    NaN where none) and a floor while plugged in. Needs are capped by the flat-out trajectory, the floor by
    charging at ``floor_rate`` of the charger's rating; ``keep_kwh`` forces no charging, only no discharging
    below it (or below the energy now) until the car first leaves. While the grid is ``down`` no bound forces
    charging: the shelters come first, so a bound there only keeps what the car holds."""
    full = net.car_soc_max * net.car_capacity_kwh
    gain = (net.car_charge_kw * net.car_eta_charge)[:, None] * dt_h * (home if down is None else home & ~down)
    reach, slow = np.empty_like(gain), np.empty_like(gain)
    e = np.asarray(energy_kwh, dtype=float).copy()
    e_slow = e.copy()
    top = np.maximum(full, e)
    for k in range(gain.shape[1]):
        e = np.where(home[:, k], np.minimum(e + gain[:, k], top), e) - trip_kwh[:, k]
        e_slow = np.where(home[:, k], np.minimum(e_slow + floor_rate * gain[:, k], top), e_slow) - trip_kwh[:, k]
        top = np.where(home[:, k], top, full)
        reach[:, k], slow[:, k] = e, e_slow
    lo = np.where(home, np.minimum(floor_kwh[:, None], slow), -np.inf)
    if keep_kwh is not None:  # until the car first leaves: what it holds after a trip is not known here
        first = np.cumprod(home, axis=1).astype(bool)
        lo = np.where(first, np.maximum(lo, np.minimum(keep_kwh, energy_kwh)[:, None]), lo)
    need = np.isfinite(need_before)
    lo[need] = np.maximum(lo[need], np.minimum(need_before, reach)[need])
    if down is not None:  # each outage stretch: bounds capped by what the car holds when it starts
        for k0 in np.flatnonzero(down & ~np.concatenate([[False], down[:-1]])):
            k1 = k0 + int(np.argmin(np.append(down[k0:], False)))
            cap = np.asarray(energy_kwh, dtype=float) if k0 == 0 else lo[:, k0 - 1]
            lo[:, k0:k1] = np.minimum(lo[:, k0:k1], cap[:, None])
    hi = np.where(home, np.maximum(full, energy_kwh)[:, None], np.inf)
    return CarBounds(plugged=home, trip_kwh=trip_kwh, min_kwh=lo, max_kwh=hi)


def next_booking_bounds(net: Network, energy_kwh: np.ndarray, plugged: np.ndarray, departure_offset: np.ndarray,
                        trip_kwh: np.ndarray, edges: np.ndarray, ready_soc: float | np.ndarray,
                        return_soc: float = RETURN_SOC, fill_by: int | None = None,
                        down: np.ndarray | None = None, chain_need_kwh: np.ndarray | None = None) -> CarBounds:
    """Bounds from what the operator knows now: each car's next booking, ``departure_offset`` steps from now.

    ``edges`` are the periods' first step offsets plus the horizon's end (K + 1 values). A car that is out
    stays out for the whole horizon (its return is not known); a car that leaves within it is gone from its
    departure on, with the trip's energy. Below ``ready_soc`` a car charges at once; below the V2G floor it
    never feeds the grid; it leaves with enough to come back with ``return_soc``. ``fill_by``: a period by
    whose end every car at home is full (ahead of a warned
    outage), as far as charging flat out allows. ``chain_need_kwh``: what the booking system says each car
    must hold at that departure for all its known bookings (with the same margins added).
    """
    k = len(edges) - 1
    dt_h = np.diff(edges) * net.step_h
    periods = np.arange(k)
    dep = np.searchsorted(edges, departure_offset, side="right") - 1  # k where beyond the horizon
    home = plugged[:, None] & (periods < dep[:, None])
    trip = np.where(plugged[:, None] & (periods == dep[:, None]), trip_kwh[:, None], 0.0)
    need = np.full(home.shape, np.nan)
    rows = np.flatnonzero(plugged & (dep >= 1) & (dep < k))
    need[rows, dep[rows] - 1] = need_kwh(net, trip_kwh[rows], rows, return_soc)
    if chain_need_kwh is not None:
        cap = net.car_capacity_kwh[rows]
        chain = chain_need_kwh[rows] + TRIP_MARGIN * trip_kwh[rows] + SOC_MARGIN * cap
        need[rows, dep[rows] - 1] = np.fmax(need[rows, dep[rows] - 1], np.minimum(chain, net.car_soc_max * cap))
    if fill_by is not None:
        at = home[:, fill_by]
        need[at, fill_by] = np.fmax(need[at, fill_by], net.car_soc_max * net.car_capacity_kwh[at])
    keep = net.car_v2g_soc_min * net.car_capacity_kwh
    return car_bounds(net, energy_kwh, home, trip, need, ready_soc * net.car_capacity_kwh, dt_h, keep, READY_RATE,
                      down)


def known_bookings_bounds(net: Network, energy_kwh: np.ndarray, car: np.ndarray, start_offset: np.ndarray,
                          end_offset: np.ndarray, trip_kwh: np.ndarray, k: int,
                          down: np.ndarray | None = None) -> CarBounds:
    """Bounds when every booking is known (the clairvoyant), on ``k`` one-step periods from now.

    Bookings that started by now (offset ≤ 0) have taken their energy already; a car comes back at its
    booking's end. As for ``hotoku``, no floor forces charging, and a V2G car does not feed the grid below its
    V2G floor until it first leaves.
    """
    nc = net.n_car
    keep = (end_offset > 0) & (start_offset < k) & (car >= 0)
    c, s, e = car[keep], np.clip(start_offset[keep], 0, k), np.clip(end_offset[keep], 0, k)
    marks = np.zeros((nc, k + 1))
    np.add.at(marks, (c, s), 1)
    np.add.at(marks, (c, e), -1)
    home = np.cumsum(marks, axis=1)[:, :k] <= 0
    trip = np.zeros((nc, k))
    need = np.full((nc, k), np.nan)
    future = start_offset[keep] >= 1
    cf, sf, tf = c[future], s[future], trip_kwh[keep][future]
    np.add.at(trip, (cf, sf), tf)
    need[cf, sf - 1] = need_kwh(net, tf, cf)
    v2g_floor = np.where(net.car_discharge_kw > 0, net.car_v2g_soc_min * net.car_capacity_kwh, 0.0)
    return car_bounds(net, energy_kwh, home, trip, need, np.zeros(nc), np.full(k, net.step_h), v2g_floor,
                      down=down)
