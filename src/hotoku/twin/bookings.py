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


def assign_cars(requests: Bookings, cars_of_station: list[list[int]]) -> Bookings:
    """Give each request, in the order it was made, a car of its station free for the whole slot.

    Among free cars the one with the fewest booked hours so far is chosen (the fleet wears evenly);
    requests with no free car stay at -1 (rejected: a fleet-size problem, not a charging one).
    """
    n_cars = sum(len(c) for c in cars_of_station)
    starts: list[list[int]] = [[] for _ in range(n_cars)]
    ends: list[list[int]] = [[] for _ in range(n_cars)]
    booked = np.zeros(n_cars)
    car = np.full(len(requests), -1, dtype=np.int64)
    for i in np.argsort(requests.created_step, kind="stable"):
        s, e = int(requests.start_step[i]), int(requests.end_step[i])
        best = -1
        for c in cars_of_station[int(requests.station[i])]:
            k = bisect.bisect_left(starts[c], s)
            if (k == 0 or ends[c][k - 1] <= s) and (k == len(starts[c]) or starts[c][k] >= e) and \
                    (best < 0 or booked[c] < booked[best]):
                best = c
        if best >= 0:
            k = bisect.bisect_left(starts[best], s)
            starts[best].insert(k, s)
            ends[best].insert(k, e)
            booked[best] += e - s
            car[i] = best
    return Bookings(requests.station, car, requests.created_step, requests.start_step, requests.end_step,
                    requests.km)
