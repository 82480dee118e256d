"""Each model against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hotoku.twin import demand, solar, storage, weather
from hotoku.twin.bookings import Bookings, FleetEnergy, assign_cars
from hotoku.twin.calendar import HOLIDAY, SATURDAY, WEEKDAY, day_types
from hotoku.twin.grid import Period, align_hourly, monthly_peaks_kw, outage_mask, tou_price_jpy_per_kwh


def test_extraterrestrial_radiation_and_day_length_match_fao56_examples() -> None:
    # FAO-56 examples 8 and 9: 3 September (day 246) at 20°S: Ra = 32.2 MJ/m²/day, N = 11.7 h
    assert weather.extraterrestrial_daily_mj_m2(246, -20.0) == pytest.approx(32.2, abs=0.1)
    assert weather.daylength_hours(246, -20.0) == pytest.approx(11.7, abs=0.05)
    assert weather.daylength_hours(np.arange(1, 366), 0.0) == pytest.approx(12.0)


def test_angstrom_prescott_bounds() -> None:
    days = weather.DAYS_IN_MONTH
    none = weather.monthly_irradiation_kwh_m2_day(np.zeros(12), 35.0, 0.25, 0.5)
    full = weather.monthly_irradiation_kwh_m2_day(days * 24.0, 35.0, 0.25, 0.5)  # capped at day length
    assert full == pytest.approx(none * 3)  # (a + b) / a
    june = weather.extraterrestrial_daily_mj_m2(np.arange(152, 182), 35.0).mean() / 3.6
    assert none[5] == pytest.approx(0.25 * june)


def test_daily_clear_sky_index_keeps_its_monthly_mean() -> None:
    rng = np.random.default_rng(0)
    months = np.repeat(np.arange(12), 2000)
    target = np.linspace(0.4, 0.8, 12)
    k = weather.daily_clear_sky_index(rng, months, target, persistence=0.5)
    assert k.min() >= 0 and k.max() <= 1
    got = np.bincount(months, weights=k) / 2000
    assert got == pytest.approx(target, abs=0.02)


def test_intraday_index_keeps_each_days_irradiation() -> None:
    rng = np.random.default_rng(1)
    day = np.repeat(np.arange(3), 96)
    clear = np.tile(np.clip(np.sin(np.linspace(-np.pi / 2, 3 * np.pi / 2, 96)), 0, None) * 900, 3)
    kd = np.array([0.3, 0.6, 0.9])
    k = weather.intraday_clear_sky_index(rng, day, kd, clear, 0.25)
    per_day = np.bincount(day, weights=k * clear) / np.bincount(day, weights=clear)
    assert per_day == pytest.approx(kd, rel=0.02)


def test_pv_array_at_flat_standard_conditions() -> None:
    # horizontal array, 1000 W/m² diffuse only, no temperature effect: DC = kWp·(1 - losses)
    sky = solar.Sky(np.array([30.0]), np.array([180.0]), np.array([1000.0]), np.array([1367.0]), np.array([172]))
    ac = solar.array_ac_power_kw(np.array([1000.0]), np.array([0.0]), np.array([1000.0]), sky, np.array([25.0]),
                                 capacity_kwp=10, surface_tilt_deg=0, surface_azimuth_deg=180, losses_fraction=0.14,
                                 gamma_pdc_per_c=0.0, dc_ac_ratio=1.2, inverter_efficiency=0.96)
    assert ac[0] == pytest.approx(8.6 * 0.96, rel=0.02)
    assert ac[0] <= 10 / 1.2 + 1e-9


def test_pv_is_zero_at_night() -> None:
    times = pd.date_range("2030-06-21 12:00", periods=4, freq="h", tz="UTC")  # 21:00-00:00 in Japan
    sky = solar.clear_sky(times, 35.26, 139.16, 10)
    ghi, dni, dhi = solar.all_sky_irradiance(sky, np.ones(4))
    ac = solar.array_ac_power_kw(ghi, dni, dhi, sky, np.full(4, 20.0), capacity_kwp=5, surface_tilt_deg=30,
                                 surface_azimuth_deg=180)
    assert ac == pytest.approx(0.0)


def test_storage_limits_and_losses_by_hand() -> None:
    lo, hi = storage.power_limits_kw(50.0, 100.0, 20.0, 20.0, 0.1, 0.9, 0.9, 0.9, 0.25)
    assert (lo, hi) == (-20.0, 20.0)
    lo, hi = storage.power_limits_kw(89.0, 100.0, 20.0, 20.0, 0.1, 0.9, 0.9, 0.9, 0.25)
    assert hi == pytest.approx(1.0 / (0.9 * 0.25))
    lo, hi = storage.power_limits_kw(10.5, 100.0, 20.0, 20.0, 0.1, 0.9, 0.9, 0.9, 0.25)
    assert lo == pytest.approx(-0.5 * 0.9 / 0.25)
    assert storage.next_energy_kwh(50.0, 10.0, 0.9, 0.9, 0.25) == pytest.approx(52.25)
    assert storage.next_energy_kwh(50.0, -9.0, 0.9, 0.9, 0.25) == pytest.approx(47.5)
    assert storage.one_way_efficiency(0.81) == pytest.approx(0.9)
    assert storage.equivalent_full_cycles(300.0, 100.0) == 3.0


def test_tou_tariff_day_night_and_wrapping_periods() -> None:
    hours = np.arange(24, dtype=float)
    p = tou_price_jpy_per_kwh(hours, 35.76, [Period(1, 6, 27.86)], surcharge_jpy_per_kwh=3.98)
    assert p[1:6] == pytest.approx(27.86 + 3.98)
    assert p[0] == p[6] == p[23] == pytest.approx(35.76 + 3.98)
    wrap = tou_price_jpy_per_kwh(hours, 30.0, [Period(22, 6, 20.0)])
    assert list(np.flatnonzero(wrap == 20.0)) == [0, 1, 2, 3, 4, 5, 22, 23]


def test_outages_and_series_alignment() -> None:
    times = pd.date_range("2030-01-01", periods=8, freq="15min", tz="Asia/Tokyo").tz_convert("UTC")
    down = outage_mask(times, [(pd.Timestamp("2030-01-01 00:30", tz="Asia/Tokyo"), 0.5)])
    assert list(down) == [False, False, True, True, False, False, False, False]
    s = pd.Series([1.0, 2.0], index=pd.DatetimeIndex(["2030-01-01 00:00", "2030-01-01 01:00"], tz="Asia/Tokyo"))
    assert list(align_hourly(s.tz_convert("UTC"), times, "x")) == [1, 1, 1, 1, 2, 2, 2, 2]
    with pytest.raises(ValueError, match="covers"):
        align_hourly(s, times + pd.Timedelta(days=1), "grid.price_series_file")
    assert list(monthly_peaks_kw(np.array([1.0, 5.0, 2.0]), np.array([1, 1, 2]))) == [5.0, 2.0]


def test_japanese_day_types() -> None:
    dates = pd.DatetimeIndex(["2030-01-01", "2030-01-04", "2030-01-05", "2030-01-14", "2030-05-06", "2030-08-14",
                              "2030-11-04", "2030-02-23"])
    # New Year; Friday; Saturday; Coming of Age Day; substitute holiday; Obon; substitute for Culture Day;
    # the Emperor's Birthday on a Saturday
    assert list(day_types(dates)) == [HOLIDAY, WEEKDAY, SATURDAY, HOLIDAY, HOLIDAY, HOLIDAY, HOLIDAY, HOLIDAY]


def test_demand_meets_its_annual_energy_under_normal_temperatures() -> None:
    hours = np.arange(8760) % 24 + 0.0
    dtype = np.zeros(8760, dtype=int)
    temp = np.where(np.arange(8760) < 4380, 6.0, 29.0)  # half a year at 10 °C below, half 5 °C above the bases
    shape = demand.shape_on_grid(demand.SHAPES["home"], dtype, hours)
    cal = demand.calibrate(shape, temp)
    kw = demand.shaped_load_kw(4175.0, shape, temp, cal, heating_share=0.2, cooling_share=0.1, noise_fraction=0.0,
                               rng=np.random.default_rng(0), step_h=1.0)
    weekday_mean = float(demand.SHAPES["home"][0].mean() / (demand.DAY_TYPE_SHARE @ demand.SHAPES["home"].mean(1)))
    base = 4175 * 0.7 * weekday_mean  # only weekdays here: their share of the typical-year mean
    assert kw.sum() == pytest.approx(base + 4175 * 0.3, rel=1e-9)
    weather_driven = kw - shape * 4175 * 0.7 / 8760
    assert weather_driven[:4380].sum() == pytest.approx(4175 * 0.2, rel=1e-9)  # heating half
    assert weather_driven[4380:].sum() == pytest.approx(4175 * 0.1, rel=1e-9)  # cooling half


def test_shapes_average_one_over_a_typical_year() -> None:
    for s in demand.SHAPES.values():
        hourly = np.array([demand.shape_on_grid(s, np.full(24, d), np.arange(24.0)).mean() for d in range(3)])
        assert float(demand.DAY_TYPE_SHARE @ hourly) == pytest.approx(1.0)


def _requests(station, start, end, created) -> Bookings:
    n = len(start)
    return Bookings(np.array(station), np.full(n, -1), np.array(created), np.array(start), np.array(end),
                    np.full(n, 10.0))


def test_cars_are_never_double_booked_and_late_requests_are_rejected() -> None:
    # one car; made in the order 2, 1, 0: request 1 overlaps request 2, request 0 ends as request 2 starts
    got = assign_cars(_requests([0, 0, 0], [10, 12, 20], [20, 30, 25], [5, 1, 0]), [[0]])
    assert list(got.car) == [0, -1, 0]
    got = assign_cars(_requests([0, 0, 1], [10, 12, 10], [20, 30, 20], [0, 1, 2]), [[0, 1], [2]])
    assert list(got.car) == [0, 1, 2]


def test_a_booking_that_would_leave_this_or_a_later_trip_short_is_refused() -> None:
    """One car of 40 kWh at 20 kWh, 0.1 kWh/km, gaining 1 kWh a step, 4 kWh reserve. A trip of 15 kWh at
    step 20 is accepted first; a 25 kWh trip at 10-12 would fit itself (30 kWh by then) but leave only 13 kWh
    for step 20, so it is refused; a 5 kWh trip in the same slot is accepted."""
    energy = FleetEnergy(capacity_kwh=np.array([40.0]), kwh_per_km=np.array([0.1]),
                         gain_kwh_per_step=np.array([1.0]), soc_max=1.0, soc_initial=0.5, reserve_soc=0.1)
    req = Bookings(np.zeros(3, dtype=int), np.full(3, -1), np.array([0, 1, 2]), np.array([20, 10, 10]),
                   np.array([22, 12, 12]), np.array([150.0, 250.0, 50.0]))
    assert list(assign_cars(req, [[0]], energy).car) == [0, -1, 0]
    assert list(assign_cars(req, [[0]]).car) == [0, 0, -1]  # by time slots alone the long trip gets the car
    # back-to-back: 5 kWh left at step 4, 7 by step 6, a 15 kWh trip then is refused
    req = Bookings(np.zeros(2, dtype=int), np.full(2, -1), np.array([0, 1]), np.array([0, 6]), np.array([4, 8]),
                   np.array([150.0, 150.0]))
    assert list(assign_cars(req, [[0]], energy).car) == [0, -1]
