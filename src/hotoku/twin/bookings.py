"""EV-sharing bookings: requested per station by hour and day type, made ahead of time, assigned to cars.

As in station-based round-trip sharing (eemo), a member books a car at a station for a time slot,
usually hours to days ahead; the car returns to the same station and is plugged in. Which car serves a
booking depends only on other bookings, so assignment is settled before the simulation runs; the
simulator still reveals each booking only from the step it was made.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from hotoku.twin.calendar import HOLIDAY, SATURDAY

# Starts per local hour (relative). Weekdays: business and errand trips from 8:00, a lunchtime dip, fewer
# after 19:00; holidays: leisure trips spread over 8:00-16:00. Reasoned shapes, not measured ones.
WEEKDAY_STARTS = [0.05, 0.02, 0.02, 0.02, 0.02, 0.05, 0.15, 0.35, 0.70, 1.00, 1.10, 1.00,
                  0.80, 1.00, 1.00, 0.90, 0.80, 0.70, 0.60, 0.45, 0.30, 0.20, 0.10, 0.05]
HOLIDAY_STARTS = [0.05, 0.02, 0.02, 0.02, 0.02, 0.03, 0.10, 0.30, 0.80, 1.20, 1.30, 1.20,
                  1.00, 1.10, 1.00, 0.90, 0.70, 0.50, 0.40, 0.30, 0.20, 0.15, 0.10, 0.05]


@dataclass(frozen=True)
class BookingParams:
    """Plain parameters of booking behaviour (see ``hotoku.town.schema_loads.BookingBehaviour``)."""

    weekday_hourly_profile: np.ndarray
    holiday_hourly_profile: np.ndarray
    holiday_factor: float = 1.2
    same_day_share: float = 0.4
    same_day_lead_mean_h: float = 2.0
    lead_time_mean_h: float = 36.0
    max_lead_days: float = 14.0
    duration_median_h: float = 3.0
    duration_sigma: float = 0.6
    duration_max_h: float = 24.0
    km_per_hour: float = 8.0
    km_sigma: float = 0.5


@dataclass(frozen=True)
class Bookings:
    """Booking requests sorted by start; ``car`` is -1 where no car of the station was free."""

    station: np.ndarray
    car: np.ndarray
    created_step: np.ndarray
    start_step: np.ndarray
    end_step: np.ndarray
    km: np.ndarray

    def __len__(self) -> int:
        return len(self.start_step)

    @property
    def accepted(self) -> np.ndarray:
        return self.car >= 0


def booking_requests(rng: np.random.Generator, day_type_per_day: np.ndarray, steps_per_day: int,
                     bookings_per_day: np.ndarray, params: BookingParams,
                     max_km: np.ndarray | None = None) -> Bookings:
    """Poisson booking requests per station, day and hour; lead times, durations and distances drawn per request.

    ``bookings_per_day`` is the mean on a weekday per station; holidays get ``holiday_factor`` times that.
    ``max_km`` (per station) caps distances: members do not book a car for a trip beyond its range.
    Returns unassigned requests (``car`` = -1), sorted by start step.
    """
    step_h = 24 / steps_per_day
    off = (day_type_per_day == HOLIDAY) | (day_type_per_day == SATURDAY)
    wk = np.asarray(params.weekday_hourly_profile, dtype=float)
    ho = np.asarray(params.holiday_hourly_profile, dtype=float)
    shape = np.where(off[:, None], ho / ho.sum() * params.holiday_factor, wk / wk.sum())  # days × 24
    lam = np.asarray(bookings_per_day, dtype=float)[:, None, None] * shape[None, :, :]  # stations × days × 24
    counts = rng.poisson(lam)
    station, day, hour = np.nonzero(counts)
    reps = counts[station, day, hour]
    station, day, hour = np.repeat(station, reps), np.repeat(day, reps), np.repeat(hour, reps)
    n = len(station)
    start_h = day * 24 + hour + rng.random(n)
    start = np.floor(start_h / step_h).astype(np.int64)
    duration_h = np.clip(params.duration_median_h * np.exp(params.duration_sigma * rng.standard_normal(n)),
                         step_h, params.duration_max_h)
    end = start + np.maximum(1, np.ceil(duration_h / step_h)).astype(np.int64)
    km = params.km_per_hour * duration_h * np.exp(params.km_sigma * rng.standard_normal(n) - params.km_sigma**2 / 2)
    if max_km is not None:
        km = np.minimum(km, np.asarray(max_km, dtype=float)[station])
    same_day = rng.random(n) < params.same_day_share
    lead_h = np.where(same_day, rng.exponential(params.same_day_lead_mean_h, n),
                      rng.exponential(params.lead_time_mean_h, n))
    lead_steps = np.clip(np.ceil(np.minimum(lead_h, params.max_lead_days * 24) / step_h), 1, None).astype(np.int64)
    order = np.argsort(start, kind="stable")
    return Bookings(station=station[order], car=np.full(n, -1, dtype=np.int64),
                    created_step=(start - lead_steps)[order], start_step=start[order], end_step=end[order],
                    km=km[order])


@dataclass(frozen=True)
class FleetEnergy:
    """What the booking system knows of each car's energy: enough to tell whether a chain of bookings can be
    served at all when the car charges flat out whenever it is plugged in (per-car arrays, kWh per step)."""

    capacity_kwh: np.ndarray
    kwh_per_km: np.ndarray
    gain_kwh_per_step: np.ndarray  # charger power × efficiency × step length
    soc_max: float
    soc_initial: float
    reserve_soc: float


class _CarChain:
    """One car's accepted bookings in start order, with the energy it holds at each departure if charged flat
    out (the most it can hold). A new booking is accepted only if every booking of the chain stays servable."""

    def __init__(self, full: float, initial: float, reserve: float, gain: float) -> None:
        self.full, self.initial, self.reserve, self.gain = full, initial, reserve, gain
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.trips: list[float] = []
        self.at_departure: list[float] = []

    def free(self, s: int, e: int) -> tuple[bool, int]:
        k = bisect.bisect_left(self.starts, s)
        ok = (k == 0 or self.ends[k - 1] <= s) and (k == len(self.starts) or self.starts[k] >= e)
        return ok, k

    def _charged(self, k: int, start: int, ends: list[int], trips: list[float], energy: list[float]) -> float:
        """Energy at a departure at ``start`` after booking ``k - 1`` of the given chain (flat-out charging)."""
        if k == 0:
            e, since = self.initial, 0
        else:
            e = energy[k - 1] - min(trips[k - 1], max(energy[k - 1] - self.reserve, 0.0))
            since = ends[k - 1]
        return max(e, min(self.full, e + self.gain * (start - since)))

    def insert(self, k: int, s: int, e: int, trip: float, *, commit: bool) -> bool:
        """Whether the booking fits at position ``k`` energy-wise; with ``commit`` also record it."""
        if self.full == float("inf"):  # no energy limits: only the time slot matters
            if commit:
                self.starts.insert(k, s)
                self.ends.insert(k, e)
            return True
        starts, ends = [*self.starts[:k], s], [*self.ends[:k], e]
        trips, energy = [*self.trips[:k], trip], self.at_departure[:k]
        energy.append(self._charged(k, s, ends, trips, energy))
        if energy[k] < trip + self.reserve - 1e-9:
            return False
        j = k
        while j < len(self.starts):  # later bookings change until the car is back on its old trajectory
            starts.append(self.starts[j])
            ends.append(self.ends[j])
            trips.append(self.trips[j])
            energy.append(self._charged(j + 1, self.starts[j], ends, trips, energy))
            if energy[-1] < self.trips[j] + self.reserve - 1e-9:
                return False
            j += 1
            if abs(energy[-1] - self.at_departure[j - 1]) < 1e-9:
                break
        if commit:
            self.starts, self.ends = starts + self.starts[j:], ends + self.ends[j:]
            self.trips, self.at_departure = trips + self.trips[j:], energy + self.at_departure[j:]
        return True


def assign_cars(requests: Bookings, cars_of_station: list[list[int]], energy: FleetEnergy | None = None) -> Bookings:
    """Give each request, in the order it was made, a car of its station free for the whole slot.

    Among free cars the one with the fewest booked hours so far is chosen (the fleet wears evenly). With
    ``energy``, a car is also refused where even flat-out charging between bookings could not give this trip,
    or an accepted later one, its energy (as a booking system does that shows only cars able to make the trip).
    Requests with no such car stay at -1 (rejected: a fleet-size problem, not a charging one).
    """
    n_cars = sum(len(c) for c in cars_of_station)
    if energy is None:  # only the time slots matter: cars that are always full
        chains = [_CarChain(float("inf"), float("inf"), 0.0, 0.0) for _ in range(n_cars)]
        trip_kwh = np.zeros((len(requests), n_cars))
    else:
        cap = energy.capacity_kwh
        chains = [_CarChain(energy.soc_max * cap[c], energy.soc_initial * cap[c], energy.reserve_soc * cap[c],
                            float(energy.gain_kwh_per_step[c])) for c in range(n_cars)]
        trip_kwh = requests.km[:, None] * energy.kwh_per_km[None, :]
    booked = np.zeros(n_cars)
    car = np.full(len(requests), -1, dtype=np.int64)
    for i in np.argsort(requests.created_step, kind="stable"):
        s, e = int(requests.start_step[i]), int(requests.end_step[i])
        best, best_k = -1, 0
        for c in cars_of_station[int(requests.station[i])]:
            ok, k = chains[c].free(s, e)
            if ok and (best < 0 or booked[c] < booked[best]) and \
                    chains[c].insert(k, s, e, float(trip_kwh[i, c]), commit=False):
                best, best_k = c, k
        if best >= 0:
            chains[best].insert(best_k, s, e, float(trip_kwh[i, best]), commit=True)
            booked[best] += e - s
            car[i] = best
    return Bookings(requests.station, car, requests.created_step, requests.start_step, requests.end_step,
                    requests.km)
