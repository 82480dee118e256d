"""Everything the simulator needs that does not depend on control, precomputed for the whole period.

Weather, PV output, loads, prices, outages, forecasts and bookings are vectorised arrays on the time
grid; only battery and EV dispatch is left for the per-step loop. Each component draws from its own
seeded random stream, so adding a load group does not change the weather.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from hotoku.town import TOWN_BUS, Scenario, TimeGrid
from hotoku.twin import demand, solar, weather
from hotoku.twin.bookings import (
    HOLIDAY_STARTS,
    WEEKDAY_STARTS,
    BookingParams,
    Bookings,
    FleetEnergy,
    assign_cars,
    booking_requests,
)
from hotoku.twin.calendar import day_types
from hotoku.twin.grid import Period, align_hourly, outage_mask, tou_price_jpy_per_kwh

PV_FORECAST_ERROR = 0.25  # log-normal σ of the day-ahead PV forecast (typical day-ahead error for one site)
LOAD_FORECAST_ERROR = 0.05
TRIP_RANGE_SHARE = 0.8  # longest booked trip, as a share of what a full car can drive down to its reserve


def rng_for(seed: int, component: str) -> np.random.Generator:
    """A random stream per (seed, component): deterministic, and independent of other components."""
    return np.random.default_rng([seed, zlib.crc32(component.encode())])


@dataclass(frozen=True)
class Inputs:
    """Uncontrollable inputs on the grid (kW are step means)."""

    grid: TimeGrid
    seed: int
    clear_sky_index: np.ndarray
    ghi_w_m2: np.ndarray
    temp_air_c: np.ndarray
    pv_array_kw: dict[str, np.ndarray]
    pv_town_kw: np.ndarray
    pv_site_kw: np.ndarray  # sites × steps
    homes_kw: np.ndarray
    buildings_kw: np.ndarray
    shelter_normal_kw: np.ndarray  # shelters × steps
    shelter_critical_kw: np.ndarray  # shelters × steps
    compute_kw: np.ndarray  # sites × steps (0 for sites without compute)
    price_jpy_per_kwh: np.ndarray
    export_price_jpy_per_kwh: np.ndarray
    co2_kg_per_kwh: np.ndarray
    grid_up: np.ndarray
    pv_forecast_kw: np.ndarray  # town bus + sites, as a day-ahead forecast would give it
    load_forecast_kw: np.ndarray  # town bus loads (no EVs)
    bookings: Bookings
    day_type: np.ndarray  # per step

    @property
    def town_load_kw(self) -> np.ndarray:
        """Town bus load in normal operation (homes, buildings, shelters' normal use)."""
        return self.homes_kw + self.buildings_kw + self.shelter_normal_kw.sum(axis=0)


def build_inputs(scenario: Scenario, grid: TimeGrid, seed: int) -> Inputs:
    """Precompute the scenario's uncontrollable inputs on ``grid`` for ``seed``."""
    loc, clim = scenario.location, scenario.climate
    n = grid.n_steps
    hour_mid = grid.local_hour + grid.step_h / 2
    doy = weather.day_of_year(grid.times_local) + grid.step_h / 48
    dtype_day = day_types(grid.local_dates)
    dtype_step = dtype_day[grid.day_index]

    # weather: one cloud field for the town and its surroundings, calibrated at the town's location
    sky = solar.clear_sky(grid.midpoints_utc, loc.latitude, loc.longitude, loc.altitude_m)
    h_month = weather.monthly_irradiation_kwh_m2_day(np.array(clim.monthly_sunshine_hours), loc.latitude,
                                                     clim.angstrom_a, clim.angstrom_b)
    k_month = h_month / solar.monthly_clear_sky_kwh_m2_day(loc.latitude, loc.longitude, loc.altitude_m)
    k_day = weather.daily_clear_sky_index(rng_for(seed, "clouds-daily"), grid.local_dates.month.to_numpy() - 1,
                                          k_month, clim.day_persistence)
    k = weather.intraday_clear_sky_index(rng_for(seed, "clouds-intraday"), grid.day_index, k_day,
                                         sky.ghi_clear_w_m2, grid.step_h)
    temp = weather.air_temperature_c(rng_for(seed, "temperature"), doy, hour_mid, grid.day_index, k_day,
                                     np.array(clim.monthly_mean_temp_c), clim.diurnal_range_c,
                                     clim.temp_anomaly_sd_c)

    # PV per array, at the array's own coordinates (its site's, else the town's)
    skies: dict[tuple[float, float], solar.Sky] = {(loc.latitude, loc.longitude): sky}
    pv_array: dict[str, np.ndarray] = {}
    site_ids = [s.id for s in scenario.sites]
    pv_site = np.zeros((len(site_ids), n))
    pv_town = np.zeros(n)
    for a in scenario.pv_arrays:
        site = scenario.site(a.site)
        lat = a.latitude if a.latitude is not None else site.latitude if site and site.latitude else loc.latitude
        lon = a.longitude if a.longitude is not None else site.longitude if site and site.longitude else loc.longitude
        if (lat, lon) not in skies:
            skies[(lat, lon)] = solar.clear_sky(grid.midpoints_utc, lat, lon, loc.altitude_m)
        s = skies[(lat, lon)]
        ghi, dni, dhi = solar.all_sky_irradiance(s, k)
        p = solar.array_ac_power_kw(
            ghi, dni, dhi, s, temp, capacity_kwp=a.capacity_kwp, surface_tilt_deg=a.tilt_deg,
            surface_azimuth_deg=a.azimuth_deg, losses_fraction=a.losses_fraction, gamma_pdc_per_c=a.gamma_pdc_per_c,
            dc_ac_ratio=a.dc_ac_ratio, inverter_efficiency=a.inverter_efficiency, albedo=clim.albedo,
            wind_speed_m_per_s=clim.wind_speed_m_per_s)
        pv_array[a.id] = p
        if a.site == TOWN_BUS:
            pv_town += p
        else:
            pv_site[site_ids.index(a.site)] += p

    # demand, calibrated against a normal-climate year
    ref = _reference_year(grid.start)
    ref_hour = ref.local_hour + 0.5
    ref_temp = weather.normal_temperature_c(weather.day_of_year(ref.times_local), ref_hour,
                                            np.array(clim.monthly_mean_temp_c), clim.diurnal_range_c)
    ref_dtype = day_types(ref.local_dates)[ref.day_index]

    def load(kind: str, annual_kwh: float, heating: float, cooling: float, noise: float, key: str) -> np.ndarray:
        cal = demand.calibrate(demand.shape_on_grid(demand.SHAPES[kind], ref_dtype, ref_hour), ref_temp)
        return demand.shaped_load_kw(annual_kwh, demand.shape_on_grid(demand.SHAPES[kind], dtype_step, hour_mid),
                                     temp, cal, heating_share=heating, cooling_share=cooling, noise_fraction=noise,
                                     rng=rng_for(seed, key), step_h=grid.step_h)

    homes = np.zeros(n)
    for h in scenario.loads.homes:
        homes += load("home", h.count * h.annual_kwh_per_home, h.heating_share, h.cooling_share, h.noise_fraction,
                      f"home:{h.id}")
    buildings = np.zeros(n)
    for b in scenario.loads.buildings:
        buildings += load(b.kind, b.floor_area_m2 * b.annual_kwh_per_m2, b.heating_share, b.cooling_share,
                          b.noise_fraction, f"building:{b.id}")
    shelters = scenario.loads.shelters
    public = demand.shape_on_grid(demand.SHAPES["public"], dtype_step, hour_mid)
    shelter_normal = np.array([s.normal_kw * public for s in shelters]).reshape(len(shelters), n)
    shelter_critical = np.array([np.full(n, s.critical_kw) for s in shelters]).reshape(len(shelters), n)

    compute = np.zeros((len(site_ids), n))
    for i, s in enumerate(scenario.sites):
        if s.compute is not None:
            c = s.compute
            compute[i] = demand.profile_kw(np.array(c.hourly_profile_kw), grid.local_hour) \
                if c.hourly_profile_kw is not None else np.full(n, c.constant_kw)

    # grid: tariff or series, carbon intensity, outages
    g = scenario.grid
    times = grid.times_utc
    if "price_jpy_per_kwh" in scenario.series:
        price = align_hourly(scenario.series["price_jpy_per_kwh"], times, "grid.price_series_file") \
            + g.tariff.surcharge_jpy_per_kwh
    else:
        price = tou_price_jpy_per_kwh(grid.local_hour, g.tariff.default_price_jpy_per_kwh,
                                      [Period(p.start_hour, p.end_hour, p.price_jpy_per_kwh) for p in g.tariff.periods],
                                      g.tariff.surcharge_jpy_per_kwh)
    co2 = align_hourly(scenario.series["co2_kg_per_kwh"], times, "grid.co2_series_file") \
        if "co2_kg_per_kwh" in scenario.series else np.full(n, g.co2_kg_per_kwh)
    outages = [(_aware(o.start, loc.timezone), o.hours) for o in g.outages]
    grid_up = ~outage_mask(times, outages)

    # day-ahead style forecasts: truth with seeded, persistent errors
    pv_total = pv_town + pv_site.sum(axis=0)
    err = weather.ar1(rng_for(seed, "pv-forecast"), n, float(np.exp(-grid.step_h / 6)))
    pv_fc = pv_total * np.exp(PV_FORECAST_ERROR * err - PV_FORECAST_ERROR**2 / 2)
    town_load = homes + buildings + shelter_normal.sum(axis=0)
    load_fc = town_load * (1 + LOAD_FORECAST_ERROR * weather.ar1(rng_for(seed, "load-forecast"), n,
                                                                 float(np.exp(-grid.step_h / 6))))

    return Inputs(
        grid=grid, seed=seed, clear_sky_index=k, ghi_w_m2=k * sky.ghi_clear_w_m2, temp_air_c=temp,
        pv_array_kw=pv_array, pv_town_kw=pv_town, pv_site_kw=pv_site, homes_kw=homes, buildings_kw=buildings,
        shelter_normal_kw=shelter_normal, shelter_critical_kw=shelter_critical, compute_kw=compute,
        price_jpy_per_kwh=price, export_price_jpy_per_kwh=np.full(n, g.tariff.export_price_jpy_per_kwh),
        co2_kg_per_kwh=co2, grid_up=grid_up, pv_forecast_kw=pv_fc, load_forecast_kw=np.clip(load_fc, 0, None),
        bookings=_bookings(scenario, grid, dtype_day, seed), day_type=dtype_step,
    )


def _bookings(scenario: Scenario, grid: TimeGrid, dtype_day: np.ndarray, seed: int) -> Bookings:
    m = scenario.mobility
    if m is None or not m.stations:
        empty = np.zeros(0, dtype=np.int64)
        return Bookings(empty, empty, empty, empty, empty, np.zeros(0))
    b = m.booking
    params = BookingParams(
        weekday_hourly_profile=np.array(b.weekday_hourly_profile or WEEKDAY_STARTS),
        holiday_hourly_profile=np.array(b.holiday_hourly_profile or HOLIDAY_STARTS),
        holiday_factor=b.holiday_factor, same_day_share=b.same_day_share, same_day_lead_mean_h=b.same_day_lead_mean_h,
        lead_time_mean_h=b.lead_time_mean_h, max_lead_days=b.max_lead_days, duration_median_h=b.duration_median_h,
        duration_sigma=b.duration_sigma, duration_max_h=b.duration_max_h, km_per_hour=b.km_per_hour,
        km_sigma=b.km_sigma)
    rates = np.array([s.bookings_per_day for s in m.stations])
    models = {x.id: x for x in m.models}
    usable = m.soc_max - b.reserve_soc
    max_km = np.array([TRIP_RANGE_SHARE * usable * models[s.model].capacity_kwh / models[s.model].kwh_per_km
                       for s in m.stations])
    req = booking_requests(rng_for(seed, "bookings"), dtype_day, grid.steps_per_day, rates, params, max_km)
    cars, first = [], 0
    for s in m.stations:
        cars.append(list(range(first, first + s.cars)))
        first += s.cars
    per_car = [(models[s.model], s) for s in m.stations for _ in range(s.cars)]
    energy = FleetEnergy(
        capacity_kwh=np.array([mo.capacity_kwh for mo, _ in per_car]),
        kwh_per_km=np.array([mo.kwh_per_km for mo, _ in per_car]),
        gain_kwh_per_step=np.array([min(s.charger_kw, mo.onboard_charger_kw) * m.charge_efficiency * grid.step_h
                                    for mo, s in per_car]),
        soc_max=m.soc_max, soc_initial=m.soc_initial, reserve_soc=b.reserve_soc)
    return assign_cars(req, cars, energy)


def _reference_year(start: date) -> TimeGrid:
    year = start.year
    while pd.Timestamp(year=year, month=12, day=31).dayofyear == 366:
        year += 1
    return TimeGrid.from_days(date(year, 1, 1), 365, 60)


def _aware(t: object, timezone: str) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return ts.tz_localize(timezone) if ts.tzinfo is None else ts
