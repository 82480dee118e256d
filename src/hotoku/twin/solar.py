"""Sun, sky and PV arrays, composed from pvlib's vectorised models.

The chain per array: clear-sky irradiance (Ineichen, pvlib's Linke turbidity climatology) × clear-sky
index → Erbs decomposition → Hay–Davies transposition to the array plane → ASHRAE incidence-angle loss
on the beam → Faiman cell temperature → PVWatts DC power with lumped system losses → PVWatts inverter
with AC clipping at ``capacity_kwp / dc_ac_ratio``.

References
----------
.. [1] Holmgren, W., Hansen, C., Mikofski, M. (2018). pvlib python. JOSS 3(29), 884.
.. [2] Erbs, D. G., Klein, S. A., Duffie, J. A. (1982). Solar Energy 28(4), 293-302.
.. [3] Hay, J. E., Davies, J. A. (1980). Calculation of the solar radiation incident on an inclined surface.
.. [4] Faiman, D. (2008). Assessing the outdoor operating temperature of photovoltaic modules.
   Progress in Photovoltaics 16(4), 307-315.
.. [5] Dobos, A. P. (2014). PVWatts Version 5 Manual. NREL/TP-6A20-62641.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pvlib

from hotoku.twin.weather import DAYS_IN_MONTH


@dataclass(frozen=True)
class Sky:
    """Sun position and clear-sky irradiance at one place on the grid's step midpoints (W/m², degrees)."""

    solar_zenith_deg: np.ndarray
    solar_azimuth_deg: np.ndarray
    ghi_clear_w_m2: np.ndarray
    dni_extra_w_m2: np.ndarray
    day_of_year: np.ndarray


def clear_sky(times_utc: pd.DatetimeIndex, latitude_deg: float, longitude_deg: float, altitude_m: float) -> Sky:
    """Solar position (NREL SPA, numpy) and Ineichen clear-sky GHI with pvlib's Linke turbidity."""
    loc = pvlib.location.Location(latitude_deg, longitude_deg, tz="UTC", altitude=altitude_m)
    sp = loc.get_solarposition(times_utc)
    cs = loc.get_clearsky(times_utc, model="ineichen", solar_position=sp)
    return Sky(
        solar_zenith_deg=sp["apparent_zenith"].to_numpy(),
        solar_azimuth_deg=sp["azimuth"].to_numpy(),
        ghi_clear_w_m2=np.nan_to_num(cs["ghi"].to_numpy()),
        dni_extra_w_m2=pvlib.irradiance.get_extra_radiation(times_utc).to_numpy(),
        day_of_year=times_utc.dayofyear.to_numpy(),
    )


def monthly_clear_sky_kwh_m2_day(latitude_deg: float, longitude_deg: float, altitude_m: float) -> np.ndarray:
    """Mean daily clear-sky GHI per month over a reference (non-leap) year, sampled hourly at mid-hour."""
    times = pd.date_range("2021-01-01 00:30", periods=8760, freq="h", tz="UTC")
    sky = clear_sky(times, latitude_deg, longitude_deg, altitude_m)
    per_month = pd.Series(sky.ghi_clear_w_m2, index=times).groupby(times.month).sum().to_numpy() / 1000
    return per_month / DAYS_IN_MONTH


def all_sky_irradiance(sky: Sky, clear_sky_index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GHI = index × clear-sky GHI, split into DNI and DHI with the Erbs correlation. Returns (ghi, dni, dhi)."""
    ghi = np.asarray(clear_sky_index) * sky.ghi_clear_w_m2
    parts = pvlib.irradiance.erbs(ghi, sky.solar_zenith_deg, sky.day_of_year)
    dni = np.nan_to_num(np.asarray(parts["dni"], dtype=float))
    dhi = np.nan_to_num(np.asarray(parts["dhi"], dtype=float))
    return ghi, dni, dhi


def array_ac_power_kw(
    ghi_w_m2: np.ndarray, dni_w_m2: np.ndarray, dhi_w_m2: np.ndarray, sky: Sky, temp_air_c: np.ndarray, *,
    capacity_kwp: float, surface_tilt_deg: float, surface_azimuth_deg: float, losses_fraction: float = 0.14,
    gamma_pdc_per_c: float = -0.004, dc_ac_ratio: float = 1.2, inverter_efficiency: float = 0.96,
    albedo: float = 0.2, wind_speed_m_per_s: float = 2.0,
) -> np.ndarray:
    """AC power of one array in kW (step means when the inputs are sampled at step midpoints)."""
    aoi = pvlib.irradiance.aoi(surface_tilt_deg, surface_azimuth_deg, sky.solar_zenith_deg, sky.solar_azimuth_deg)
    poa = pvlib.irradiance.get_total_irradiance(
        surface_tilt_deg, surface_azimuth_deg, sky.solar_zenith_deg, sky.solar_azimuth_deg,
        dni_w_m2, ghi_w_m2, dhi_w_m2, dni_extra=sky.dni_extra_w_m2, albedo=albedo, model="haydavies")
    beam = np.nan_to_num(np.asarray(poa["poa_direct"], dtype=float))
    diffuse = np.nan_to_num(np.asarray(poa["poa_diffuse"], dtype=float))
    iam = np.nan_to_num(np.asarray(pvlib.iam.ashrae(aoi), dtype=float))
    effective = np.clip(beam * iam + diffuse, 0, None)
    temp_cell = pvlib.temperature.faiman(beam + diffuse, temp_air_c, wind_speed_m_per_s)
    pdc = pvlib.pvsystem.pvwatts_dc(effective, temp_cell, capacity_kwp, gamma_pdc_per_c) * (1 - losses_fraction)
    pdc0_inverter = capacity_kwp / dc_ac_ratio / inverter_efficiency
    pac = pvlib.inverter.pvwatts(np.clip(pdc, 0, None), pdc0_inverter, eta_inv_nom=inverter_efficiency)
    return np.clip(np.nan_to_num(np.asarray(pac, dtype=float)), 0, None)
