"""Electricity demand: hourly shapes by day type, heating and cooling driven by temperature, seeded noise.

One model serves homes, ZEB offices, shops and public buildings; only the shapes and parameters differ.
The annual energy given in the scenario is met exactly under the climate normals; a generated weather
year then moves it a little, as a real year does.

Shapes (relative, per local hour) are reasoned, not measured: Japanese homes peak in the evening and
morning and use more at weekends (cf. 資源エネルギー庁「家庭の電力使用の時間帯別推移」 summer/winter
curves); offices follow working hours with about a third of the load at night (servers, ventilation,
standby); shops keep refrigeration overnight and trade 10:00-20:00 every day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hotoku.twin.weather import ar1

HEATING_BASE_C = 16.0  # below this outdoor temperature, space heating runs
COOLING_BASE_C = 24.0  # above this, air conditioning runs
DAY_TYPE_SHARE = np.array([244, 50, 71]) / 365  # weekdays, Saturdays, Sundays/holidays in a typical year

_HOME_WEEKDAY = [0.70, 0.60, 0.55, 0.50, 0.50, 0.60, 0.90, 1.20, 1.10, 0.90, 0.80, 0.80,
                 0.85, 0.80, 0.75, 0.80, 0.90, 1.10, 1.35, 1.50, 1.50, 1.40, 1.20, 0.90]
_HOME_HOLIDAY = [0.75, 0.65, 0.55, 0.50, 0.50, 0.55, 0.70, 0.90, 1.10, 1.15, 1.10, 1.10,
                 1.15, 1.10, 1.00, 1.00, 1.05, 1.15, 1.35, 1.45, 1.45, 1.35, 1.15, 0.90]
_OFFICE_WEEKDAY = [0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.35, 0.50, 1.00, 1.50, 1.50, 1.50,
                   1.30, 1.50, 1.50, 1.50, 1.50, 1.45, 1.20, 0.80, 0.60, 0.45, 0.35, 0.30]
_OFFICE_SATURDAY = [0.30] * 8 + [0.50, 0.60, 0.60, 0.60, 0.55, 0.60, 0.60, 0.55, 0.50] + [0.30] * 7
_OFFICE_HOLIDAY = [0.28] * 24
_SHOP = [0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.40, 0.50, 0.80, 1.40, 1.50,
         1.50, 1.50, 1.50, 1.50, 1.50, 1.50, 1.50, 1.45, 1.00, 0.50, 0.40, 0.35]
_PUBLIC_WEEKDAY = [0.40] * 8 + [0.70] + [1.30] * 12 + [0.90, 0.50, 0.40]
_PUBLIC_HOLIDAY = [0.40] * 8 + [0.60] + [1.10] * 9 + [0.80, 0.60, 0.50, 0.45, 0.40, 0.40]

SHAPES: dict[str, np.ndarray] = {
    "home": np.array([_HOME_WEEKDAY, _HOME_HOLIDAY, _HOME_HOLIDAY]),
    "office": np.array([_OFFICE_WEEKDAY, _OFFICE_SATURDAY, _OFFICE_HOLIDAY]),
    "shop": np.array([_SHOP, np.multiply(_SHOP, 1.1), np.multiply(_SHOP, 1.1)]),
    "public": np.array([_PUBLIC_WEEKDAY, _PUBLIC_HOLIDAY, _PUBLIC_HOLIDAY]),
}


def shape_on_grid(shapes: np.ndarray, day_type: np.ndarray, local_hour: np.ndarray) -> np.ndarray:
    """Relative load per step, linear between hourly values, normalised to a typical-year mean of 1.

    ``shapes`` is 3×24 (weekday, Saturday, holiday); ``day_type`` and ``local_hour`` are per step.
    """
    s = np.asarray(shapes, dtype=float)
    s = s / float(DAY_TYPE_SHARE @ s.mean(axis=1))
    h0 = np.floor(local_hour).astype(int) % 24
    frac = local_hour - np.floor(local_hour)
    # value at the middle of the step's hour segment: interpolate towards the next hour (same day type)
    return s[day_type, h0] * (1 - frac) + s[day_type, (h0 + 1) % 24] * frac


@dataclass(frozen=True)
class Calibration:
    """Sums over a normal-climate year that turn annual energy and shares into kW coefficients."""

    heating_degree_shape_sum: float  # Σ max(0, 16 - T_normal)·shape over the year's hours, °C·h
    cooling_degree_shape_sum: float  # Σ max(0, T_normal - 24)·shape, °C·h


def calibrate(shape_normal_year_hourly: np.ndarray, temp_normal_year_hourly_c: np.ndarray) -> Calibration:
    """Degree-hour sums, weighted by occupancy shape, of a normal year sampled hourly (8760 values)."""
    hdh = np.clip(HEATING_BASE_C - temp_normal_year_hourly_c, 0, None)
    cdh = np.clip(temp_normal_year_hourly_c - COOLING_BASE_C, 0, None)
    return Calibration(float(hdh @ shape_normal_year_hourly), float(cdh @ shape_normal_year_hourly))


def shaped_load_kw(
    annual_kwh: float, shape: np.ndarray, temp_air_c: np.ndarray, calibration: Calibration, *,
    heating_share: float, cooling_share: float, noise_fraction: float, rng: np.random.Generator, step_h: float,
) -> np.ndarray:
    """Load in kW per step: base use plus heating and cooling, each following the occupancy ``shape``.

    Under normal temperatures the year sums to ``annual_kwh``, of which ``heating_share`` is heating and
    ``cooling_share`` cooling. Noise is multiplicative, AR(1) with a two-hour memory.
    """
    base_kw = annual_kwh * (1 - heating_share - cooling_share) / 8760.0
    heat = heating_share * annual_kwh / calibration.heating_degree_shape_sum if calibration.heating_degree_shape_sum \
        else 0.0
    cool = cooling_share * annual_kwh / calibration.cooling_degree_shape_sum if calibration.cooling_degree_shape_sum \
        else 0.0
    load = shape * (base_kw + heat * np.clip(HEATING_BASE_C - temp_air_c, 0, None)
                    + cool * np.clip(temp_air_c - COOLING_BASE_C, 0, None))
    if noise_fraction > 0:
        load = load * np.clip(1 + noise_fraction * ar1(rng, len(load), float(np.exp(-step_h / 2.0))), 0.2, None)
    return load


def profile_kw(hourly_kw: np.ndarray, local_hour: np.ndarray) -> np.ndarray:
    """A 24-value daily profile (kW, step-hold by local hour) laid on the grid."""
    return np.asarray(hourly_kw, dtype=float)[np.floor(local_hour).astype(int) % 24]
