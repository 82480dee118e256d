"""The EV-sharing fleet during a run: bookings revealed as they are made, departures, returns and trips.

At the start of each step: cars whose booking ended come back and are plugged in; bookings made by now
become visible to the controller; cars whose booking starts now leave, with enough charge or not.
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
    km_requested: float = 0.0
    km_unmet: float = 0.0
    energy_kwh: float = 0.0
    green_energy_kwh: float = 0.0


class Fleet:
    """Per-car state: stored energy, green share of it, plugged or away, and the next known booking."""

    def __init__(self, bookings: Bookings, capacity_kwh: np.ndarray, kwh_per_km: np.ndarray, soc_initial: float,
                 reserve_soc: float) -> None:
        acc = np.flatnonzero(bookings.accepted)
        self.car_of = bookings.car
        self.start_step = bookings.start_step
        self.km = bookings.km
        self.capacity_kwh = capacity_kwh
        self.kwh_per_km = kwh_per_km
        self.reserve_kwh = reserve_soc * capacity_kwh
        n = len(capacity_kwh)
        self.energy_kwh = soc_initial * capacity_kwh
        self.green_fraction = np.zeros(n)
        self.plugged = np.ones(n, dtype=bool)
        self.next_departure_step = np.full(n, NO_DEPARTURE, dtype=np.int64)
        self.next_trip_kwh = np.zeros(n)
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
            self.plugged[self.car_of[self._return[p[2]]]] = True
            p[2] += 1
        while p[0] < len(self._reveal) and self._reveal_step[p[0]] <= t:
            b = int(self._reveal[p[0]])
            c = int(self.car_of[b])
            heapq.heappush(self._known[c], (int(self.start_step[b]), b))
            self._refresh(c)
            p[0] += 1
        while p[1] < len(self._depart) and self.start_step[self._depart[p[1]]] <= t:
            self._leave(int(self._depart[p[1]]))
            p[1] += 1

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
        self._refresh(c)

    def _refresh(self, c: int) -> None:
        known = self._known[c]
        if known:
            b = known[0][1]
            self.next_departure_step[c] = known[0][0]
            self.next_trip_kwh[c] = self.km[b] * self.kwh_per_km[c]
        else:
            self.next_departure_step[c] = NO_DEPARTURE
            self.next_trip_kwh[c] = 0.0
