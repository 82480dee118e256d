"""Units and conversions shared by the districts.

hotoku names quantities with their unit (``power_kw``, ``energy_kwh``, ``price_jpy_per_kwh``,
``co2_kg``, ``soc`` in 0..1); the few constants below keep conversions in one place.
"""

from __future__ import annotations

MINUTES_PER_HOUR = 60
HOURS_PER_DAY = 24
HOURS_PER_YEAR = 8760.0
KG_PER_TONNE = 1000.0
W_PER_KW = 1000.0
MJ_PER_KWH = 3.6


def energy_kwh(power_kw: float, hours: float) -> float:
    """Energy delivered by a constant power over a number of hours."""
    return power_kw * hours


def step_hours(step_minutes: int) -> float:
    """Length of one simulation step in hours."""
    return step_minutes / MINUTES_PER_HOUR
