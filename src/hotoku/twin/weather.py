"""A seeded weather year calibrated to monthly climate normals; nothing is downloaded.

Irradiance is clear-sky (pvlib's Ineichen model with its shipped Linke turbidity climatology) times a
stochastic clear-sky index whose monthly means follow the Angström–Prescott relation applied to the
station's sunshine-duration normals. Temperature is the monthly normal plus a diurnal cycle and a
persistent daily anomaly.

References
----------
.. [1] Allen, R. G., Pereira, L. S., Raes, D., Smith, M. (1998). Crop evapotranspiration, FAO Irrigation
   and Drainage Paper 56, ch. 3, eqs. 21-25, 34-35 (extraterrestrial radiation, day length, Angström
   coefficients a=0.25, b=0.50).
.. [2] Ineichen, P., Perez, R. (2002). A new airmass independent formulation for the Linke turbidity
   coefficient. Solar Energy 73(3), 151-157 (via ``pvlib.clearsky.ineichen``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

GSC_MJ_PER_M2_MIN = 0.0820  # solar constant, FAO-56 eq. 21
MID_MONTH_DOY = np.array([15.5, 45, 74.5, 105, 135.5, 166, 196.5, 227.5, 258, 288.5, 319, 349.5])
DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
DAILY_CONCENTRATION = 3.0  # Beta "sample size" of the daily clear-sky index: broad, as Kanto days are
INTRADAY_TAU_H = 1.0  # decorrelation time of cloud passages within a day


def _declination_rad(doy: np.ndarray) -> np.ndarray:
    return 0.409 * np.sin(2 * np.pi * doy / 365 - 1.39)  # FAO-56 eq. 24


def _sunset_hour_angle_rad(doy: np.ndarray, latitude_deg: float) -> np.ndarray:
    phi = np.radians(latitude_deg)
    return np.arccos(np.clip(-np.tan(phi) * np.tan(_declination_rad(doy)), -1.0, 1.0))  # eq. 25


def daylength_hours(doy: np.ndarray | float, latitude_deg: float) -> np.ndarray:
    """Astronomical day length N = 24/π·ωs (FAO-56 eq. 34), the denominator of sunshine fraction."""
    return 24 / np.pi * _sunset_hour_angle_rad(np.asarray(doy, dtype=float), latitude_deg)


def extraterrestrial_daily_mj_m2(doy: np.ndarray | float, latitude_deg: float) -> np.ndarray:
    """Daily extraterrestrial radiation on a horizontal surface Ra in MJ/m²/day (FAO-56 eq. 21)."""
    doy = np.asarray(doy, dtype=float)
    phi = np.radians(latitude_deg)
    dr = 1 + 0.033 * np.cos(2 * np.pi * doy / 365)
    d = _declination_rad(doy)
    ws = _sunset_hour_angle_rad(doy, latitude_deg)
    return 24 * 60 / np.pi * GSC_MJ_PER_M2_MIN * dr * (ws * np.sin(phi) * np.sin(d) + np.cos(phi) * np.cos(d) *
                                                        np.sin(ws))


def monthly_irradiation_kwh_m2_day(monthly_sunshine_hours: np.ndarray, latitude_deg: float,
                                   angstrom_a: float = 0.25, angstrom_b: float = 0.50) -> np.ndarray:
    """Mean daily global horizontal irradiation per month, H = Ra·(a + b·n/N) (FAO-56 eq. 35), in kWh/m²."""
    out = np.empty(12)
    start = 1
    for m, nd in enumerate(DAYS_IN_MONTH):
        doy = np.arange(start, start + nd)
        start += nd
        fraction = min(float(monthly_sunshine_hours[m]) / daylength_hours(doy, latitude_deg).sum(), 1.0)
        out[m] = extraterrestrial_daily_mj_m2(doy, latitude_deg).mean() * (angstrom_a + angstrom_b * fraction) / 3.6
    return out


def daily_clear_sky_index(rng: np.random.Generator, month_of_day: np.ndarray, monthly_mean_index: np.ndarray,
                          persistence: float = 0.5, concentration: float = DAILY_CONCENTRATION) -> np.ndarray:
    """Daily clear-sky index: Beta marginals with each month's mean, AR(1)-correlated through a Gaussian copula.

    ``persistence`` is the lag-one correlation of the latent series (weather comes in spells).
    """
    n = len(month_of_day)
    z = np.empty(n)
    e = rng.standard_normal(n)
    z[0] = e[0]
    s = np.sqrt(1 - persistence**2)
    for i in range(1, n):
        z[i] = persistence * z[i - 1] + s * e[i]
    mean = np.clip(monthly_mean_index[month_of_day], 0.05, 0.97)
    return stats.beta.ppf(stats.norm.cdf(z), mean * concentration, (1 - mean) * concentration)


def ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """A unit-variance AR(1) series (vectorised through ``scipy.signal.lfilter``)."""
    from scipy.signal import lfilter

    e = rng.standard_normal(n) * np.sqrt(1 - phi**2)
    e[0] = rng.standard_normal()
    return lfilter([1.0], [1.0, -phi], e)


def intraday_clear_sky_index(rng: np.random.Generator, day_index: np.ndarray, daily_index: np.ndarray,
                             ghi_clear_w_m2: np.ndarray, step_h: float) -> np.ndarray:
    """Per-step clear-sky index: the day's value plus cloud passages, rescaled so each day keeps its value.

    Variability peaks on partly cloudy days (σ ∝ √(k(1−k))) and vanishes on clear or overcast ones.
    """
    kd = daily_index[day_index]
    x = ar1(rng, len(day_index), float(np.exp(-step_h / INTRADAY_TAU_H)))
    k = np.clip(kd + 0.5 * np.sqrt(kd * (1 - kd)) * x, 0.02, 1.1)
    w = np.asarray(ghi_clear_w_m2, dtype=float)
    got = np.bincount(day_index, weights=w * k, minlength=len(daily_index))
    want = np.bincount(day_index, weights=w * kd, minlength=len(daily_index))
    scale = np.divide(want, got, out=np.ones_like(want), where=got > 0)
    return np.clip(k * scale[day_index], 0.0, 1.2)


def air_temperature_c(rng: np.random.Generator, doy: np.ndarray, local_hour: np.ndarray, day_index: np.ndarray,
                      daily_index: np.ndarray, monthly_mean_temp_c: np.ndarray, diurnal_range_c: float,
                      anomaly_sd_c: float, persistence: float = 0.7) -> np.ndarray:
    """Air temperature: monthly normal (interpolated), a daily anomaly, and a diurnal cycle peaking at 14:00.

    Clear days swing more than overcast ones (range scaled by 0.5 + daily clear-sky index).
    """
    n_days = len(daily_index)
    anomaly = anomaly_sd_c * ar1(rng, n_days, persistence) if anomaly_sd_c > 0 else np.zeros(n_days)
    swing = diurnal_range_c * (0.5 + daily_index) / 1.2
    return (normal_temperature_c(doy, local_hour, monthly_mean_temp_c, 0.0) + anomaly[day_index]
            + swing[day_index] / 2 * np.cos(2 * np.pi * (local_hour - 14) / 24))


def normal_temperature_c(doy: np.ndarray, local_hour: np.ndarray, monthly_mean_temp_c: np.ndarray,
                         diurnal_range_c: float) -> np.ndarray:
    """The climatological temperature for a day of year and hour (no weather): used to calibrate demand."""
    x = np.concatenate([MID_MONTH_DOY - 365, MID_MONTH_DOY, MID_MONTH_DOY + 365])
    y = np.tile(np.asarray(monthly_mean_temp_c, dtype=float), 3)
    return np.interp(doy, x, y) + diurnal_range_c / 2 * np.cos(2 * np.pi * (np.asarray(local_hour) - 14) / 24)


@dataclass(frozen=True)
class Weather:
    """The weather on the grid: per-step clear-sky index and air temperature, and the daily index."""

    clear_sky_index: np.ndarray
    temp_air_c: np.ndarray
    daily_clear_sky_index: np.ndarray
    monthly_mean_index: np.ndarray


def day_of_year(times_local: pd.DatetimeIndex) -> np.ndarray:
    """Fractional day of year (1-based) of local times."""
    return (times_local.dayofyear + times_local.hour / 24 + times_local.minute / 1440).to_numpy(dtype=float)
