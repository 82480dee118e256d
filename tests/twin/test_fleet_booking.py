"""The booking system checks each new booking against the fleet's live state (pure: the Fleet alone)."""

from __future__ import annotations

import numpy as np
import pytest

from hotoku.twin.bookings import Bookings
from hotoku.twin.fleet import Fleet


def _fleet(car, created, start, end, km, energy=(20.0, 20.0)) -> Fleet:
    """Two cars of 40 kWh at one station, 0.1 kWh/km, 4 kWh reserve, gaining 1 kWh a step when plugged."""
    n = len(car)
    b = Bookings(np.zeros(n, dtype=int), np.array(car), np.array(created), np.array(start), np.array(end),
                 np.array(km, dtype=float))
    f = Fleet(b, np.array([40.0, 40.0]), np.array([0.1, 0.1]), 0.5, 0.1, car_station=np.array([0, 0]),
              gain_kwh_per_step=np.array([1.0, 1.0]), soc_max=0.9)
    f.energy_kwh[:] = energy
    return f


def _run(f: Fleet, steps: int) -> None:
    for t in range(steps):
        f.begin_step(t)
        f.energy_kwh = np.where(f.plugged, np.minimum(f.energy_kwh + 1.0, f.full_kwh), f.energy_kwh)  # flat out


def test_a_car_that_cannot_make_the_trip_hands_the_booking_to_one_that_can() -> None:
    # a 20 kWh trip at step 2 needs 24 kWh; car 0 can reach 22 by then, car 1 (30 now) can
    f = _fleet([0], [0], [2], [4], [200.0], energy=(20.0, 30.0))
    _run(f, 3)
    assert list(f.car_of) == [1] and f.totals.reassigned == 1 and f.totals.failed == 0 and f.totals.started == 1
    # neither can: the request is refused when made, and nothing leaves
    f = _fleet([0], [0], [2], [4], [200.0])
    _run(f, 3)
    assert list(f.car_of) == [-1] and f.totals.rejected == 1 and f.totals.started == 0
    assert f.plugged.all()


def test_a_busy_car_is_not_given_an_overlapping_booking() -> None:
    # booking 1 (made at 1) was planned for car 0, which booking 0 (made at 0) holds until 6: car 1 takes it
    f = _fleet([0, 0], [0, 1], [1, 3], [6, 5], [10.0, 10.0])
    _run(f, 4)
    assert list(f.car_of) == [0, 1] and f.totals.reassigned == 1


def test_the_next_departure_needs_enough_for_the_following_bookings_too() -> None:
    # car 0: 10 kWh trips at 10-12 and 13-15; one step between them gains 1 kWh, so it must leave at 10 with
    # 10 (first trip) + 14 (second trip and reserve) - 1 = 23 kWh, not just 14
    f = _fleet([0, 0], [0, 0], [10, 13], [12, 15], [100.0, 100.0])
    f.begin_step(0)
    assert f.next_departure_step[0] == 10 and f.next_trip_kwh[0] == pytest.approx(10.0)
    assert f.next_need_kwh[0] == pytest.approx(23.0)
    assert f.next_need_kwh[1] == 0.0
