"""Day types of the Japanese calendar: weekday, Saturday, Sunday or holiday (incl. the New Year break).

Public holidays come from the ``holidays`` package (Cabinet Office list, computed for any year, so 2030
and later work offline). The New Year break (29 Dec - 3 Jan) and Obon (13-16 Aug) are counted as
holidays: offices close and homes behave as on Sundays.
"""

from __future__ import annotations

from datetime import date

import holidays
import numpy as np
import pandas as pd

WEEKDAY, SATURDAY, HOLIDAY = 0, 1, 2
_BREAKS = {(12, 29), (12, 30), (12, 31), (1, 1), (1, 2), (1, 3), (8, 13), (8, 14), (8, 15), (8, 16)}


def japanese_holidays(years: list[int]) -> set[date]:
    """National holidays (国民の祝日, substitute and citizens' holidays included) of the given years."""
    return set(holidays.country_holidays("JP", years=years).keys())


def day_types(dates: pd.DatetimeIndex) -> np.ndarray:
    """WEEKDAY, SATURDAY or HOLIDAY for each local calendar date."""
    hol = japanese_holidays(sorted({d.year for d in dates}))
    out = np.full(len(dates), WEEKDAY, dtype=np.int8)
    for i, d in enumerate(dates):
        if d.date() in hol or d.dayofweek == 6 or (d.month, d.day) in _BREAKS:
            out[i] = HOLIDAY
        elif d.dayofweek == 5:
            out[i] = SATURDAY
    return out
