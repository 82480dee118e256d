"""The EV-sharing fleet during a run: bookings revealed as they are made, departures, returns and trips.

At the start of each step: cars whose booking ended come back and are plugged in; bookings made by now
become visible to the controller; cars whose booking starts now leave, with enough charge or not.

When a booking is made, the booking system checks its car against the fleet's live state, as a real one
would: the car must be free and, charging flat out from now, able to serve this booking and every known
booking of that car. If the car chosen in advance cannot, another free car of the station that can is given
instead (``reassigned``); if none can, the request is refused (``rejected``). A controller that leaves cars
short therefore shows up as refused requests, and a booking that starts is one no charging plan could
avoid serving.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from hotoku.twin.bookings import Bookings
from hotoku.twin.controller import NO_DEPARTURE


@dataclass
class TripTotals:
    """Running totals of the bookings that have started."""

    started: int = 0
    failed: int = 0
    reassigned: int = 0  # given another car when made: the car chosen in advance could not serve it
    rejected: int = 0  # refused when made: no car of the station could serve it
    km_requested: float = 0.0
    km_unmet: float = 0.0
    energy_kwh: float = 0.0
    green_energy_kwh: float = 0.0


class Fleet:
    """Per-car state: stored energy, green share of it, plugged or away, and the next known booking."""

    def __init__(self, bookings: Bookings, capacity_kwh: np.ndarray, kwh_per_km: np.ndarray, soc_initial: float,
                 reserve_soc: float, *, car_station: np.ndarray | None = None,
                 gain_kwh_per_step: np.ndarray | None = None, soc_max: float = 1.0) -> None:
        acc = np.flatnonzero(bookings.accepted)
        self.car_of = bookings.car.copy()  # as realised: changed when a booking is reassigned or refused
        self.start_step = bookings.start_step
        self.end_step = bookings.end_step
        self.station = bookings.station
        n = len(capacity_kwh)
        self.car_station = np.zeros(n, dtype=int) if car_station is None else np.asarray(car_station)
        self.check_energy = gain_kwh_per_step is not None
        self.gain = np.zeros(n) if gain_kwh_per_step is None else np.asarray(gain_kwh_per_step, dtype=float)
        self.full_kwh = soc_max * np.asarray(capacity_kwh, dtype=float)
        self.away_until = np.zeros(n, dtype=np.int64)  # end of the booking a car is out on
        self.km = bookings.km
        self.capacity_kwh = capacity_kwh
        self.kwh_per_km = kwh_per_km
        self.reserve_kwh = reserve_soc * capacity_kwh
        self.energy_kwh = soc_initial * capacity_kwh
        self.green_fraction = np.zeros(n)
        self.plugged = np.ones(n, dtype=bool)
        self.next_departure_step = np.full(n, NO_DEPARTURE, dtype=np.int64)
        self.next_trip_kwh = np.zeros(n)
        self.next_need_kwh = np.zeros(n)  # at the next departure, for every known booking of the car
        self._known: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        self._reveal = acc[np.argsort(bookings.created_step[acc], kind="stable")]
        self._reveal_step = bookings.created_step[self._reveal]
        self._depart = acc  # already sorted by start step
        self._return = acc[np.argsort(bookings.end_step[acc], kind="stable")]
        self._return_step = bookings.end_step[self._return]
        self._ptr = [0, 0, 0]  # reveal, depart, return
        self.totals = TripTotals()
        self.trip_green_kwh_step = 0.0
        self.trip_kwh_step = 0.0

    def begin_step(self, t: int) -> None:
        """Returns, then newly made bookings, then departures at step ``t``."""
        self.trip_kwh_step = self.trip_green_kwh_step = 0.0
        p = self._ptr
        while p[2] < len(self._return) and self._return_step[p[2]] <= t:
            if (c := self.car_of[self._return[p[2]]]) >= 0:
                self.plugged[c] = True
            p[2] += 1
        while p[0] < len(self._reveal) and self._reveal_step[p[0]] <= t:
            b = int(self._reveal[p[0]])
            c = self._book(b, t)
            if c >= 0:
                heapq.heappush(self._known[c], (int(self.start_step[b]), b))
                self._refresh(c)
            p[0] += 1
        while p[1] < len(self._depart) and self.start_step[self._depart[p[1]]] <= t:
            if self.car_of[self._depart[p[1]]] >= 0:
                self._leave(int(self._depart[p[1]]))
            p[1] += 1

    def _book(self, b: int, t: int) -> int:
        """The car that serves booking ``b``, made at step ``t``: the one chosen in advance if it can, else
        the free car of the station that can and holds the most energy; -1 (refused) if none can."""
        first = int(self.car_of[b])
        if self._can_serve(first, b, t):
            return first
        others = [c for c in np.flatnonzero(self.car_station == self.station[b]) if c != first]
        others.sort(key=lambda c: -self.energy_kwh[c])
        for c in others:
            if self._can_serve(int(c), b, t):
                self.car_of[b] = c
                self.totals.reassigned += 1
                return int(c)
        self.car_of[b] = -1
        self.totals.rejected += 1
        return -1

    def _chain(self, c: int, extra: int | None = None) -> list[int]:
        """Car ``c``'s known bookings (and ``extra``) in start order."""
        chain = [b for _, b in self._known[c]] + ([extra] if extra is not None else [])
        return sorted(chain, key=lambda b: int(self.start_step[b]))

    def _can_serve(self, c: int, b: int, t: int) -> bool:
        s, e = int(self.start_step[b]), int(self.end_step[b])
        if not self.plugged[c] and self.away_until[c] > s:
            return False
        if any(int(self.start_step[x]) < e and s < int(self.end_step[x]) for _, x in self._known[c]):
            return False
        if not self.check_energy:
            return True
        energy, since = float(self.energy_kwh[c]), t if self.plugged[c] else int(self.away_until[c])
        for x in self._chain(c, b):
            start = int(self.start_step[x])
            energy = max(energy, min(float(self.full_kwh[c]), energy + self.gain[c] * (start - since)))
            trip = float(self.km[x] * self.kwh_per_km[c])
            if energy < trip + self.reserve_kwh[c] - 1e-6:
                return False
            energy, since = energy - trip, int(self.end_step[x])
        return True

    def _leave(self, b: int) -> None:
        c = int(self.car_of[b])
        known = self._known[c]
        if known and known[0][1] == b:
            heapq.heappop(known)
        else:  # made and started in the same step: never seen by the controller
            known[:] = [k for k in known if k[1] != b]
            heapq.heapify(known)
        need = float(self.km[b] * self.kwh_per_km[c])
        usable = max(float(self.energy_kwh[c] - self.reserve_kwh[c]), 0.0)
        used = min(need, usable)
        tot = self.totals
        tot.started += 1
        tot.km_requested += float(self.km[b])
        if used < need - 1e-9:
            tot.failed += 1
            tot.km_unmet += (need - used) / float(self.kwh_per_km[c])
        tot.energy_kwh += used
        tot.green_energy_kwh += used * float(self.green_fraction[c])
        self.trip_kwh_step += used
        self.trip_green_kwh_step += used * float(self.green_fraction[c])
        self.energy_kwh[c] -= used
        self.plugged[c] = False
        self.away_until[c] = int(self.end_step[b])
        self._refresh(c)

    def _refresh(self, c: int) -> None:
        known = self._known[c]
        if known:
            b = known[0][1]
            self.next_departure_step[c] = known[0][0]
            self.next_trip_kwh[c] = self.km[b] * self.kwh_per_km[c]
            self.next_need_kwh[c] = self._chain_need(c) if self.check_energy else \
                self.next_trip_kwh[c] + self.reserve_kwh[c]
        else:
            self.next_departure_step[c] = NO_DEPARTURE
            self.next_trip_kwh[c] = self.next_need_kwh[c] = 0.0

    def _chain_need(self, c: int) -> float:
        """Energy car ``c`` must hold at its next departure so that, charging flat out between bookings, every
        known booking of it can be served (backwards: each trip plus what the next one needs beyond the
        charge it can gain in between, never less than the trip plus the reserve)."""
        need, after = 0.0, None
        for x in reversed(self._chain(c)):
            trip = float(self.km[x] * self.kwh_per_km[c])
            own = trip + float(self.reserve_kwh[c])
            if after is not None:
                need_next, start_next = after
                own = max(own, trip + need_next - self.gain[c] * (start_next - int(self.end_step[x])))
            need = min(own, float(self.full_kwh[c]))
            after = (need, int(self.start_step[x]))
        return need
