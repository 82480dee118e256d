"""The grid connection's prices, carbon intensity and outages, laid on the time grid."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Period:
    """Local hours [start_hour, end_hour) at one price; wraps past midnight when end <= start."""

    start_hour: int
    end_hour: int
    price_jpy_per_kwh: float


def tou_price_jpy_per_kwh(local_hour: np.ndarray, default_price_jpy_per_kwh: float, periods: Iterable[Period],
                          surcharge_jpy_per_kwh: float = 0.0) -> np.ndarray:
    """Import price per step under a time-of-use tariff, plus a per-kWh surcharge (e.g. the renewable levy).

    Example: TEPCO スマートライフ is night 01:00-06:00 at the lower price, the rest at the day price.
    """
    h = np.floor(local_hour).astype(int) % 24
    price = np.full(len(h), float(default_price_jpy_per_kwh))
    for p in periods:
        if p.end_hour > p.start_hour:
            inside = (h >= p.start_hour) & (h < p.end_hour)
        else:
            inside = (h >= p.start_hour) | (h < p.end_hour)
        price[inside] = p.price_jpy_per_kwh
    return price + surcharge_jpy_per_kwh


def align_hourly(series: pd.Series, times_utc: pd.DatetimeIndex, what: str) -> np.ndarray:
    """Hold an hourly (or coarser) series over the grid's steps; refuse one that does not cover them."""
    s = series.sort_index()
    if len(s) == 0 or s.index[0] > times_utc[0] or s.index[-1] + pd.Timedelta(hours=1) < times_utc[-1]:
        first, last = (s.index[0], s.index[-1]) if len(s) else ("-", "-")
        raise ValueError(f"{what} covers {first} .. {last}, not the simulated {times_utc[0]} .. {times_utc[-1]}")
    pos = s.index.searchsorted(times_utc, side="right") - 1
    return s.to_numpy(dtype=float)[pos]


def outage_mask(times_utc: pd.DatetimeIndex, outages: Iterable[tuple[pd.Timestamp, float]]) -> np.ndarray:
    """True for steps whose start lies in an outage ``(start, hours)``; the grid is back after it."""
    down = np.zeros(len(times_utc), dtype=bool)
    for start, hours in outages:
        end = start + pd.Timedelta(hours=hours)
        down |= (times_utc >= start.tz_convert("UTC")) & (times_utc < end.tz_convert("UTC"))
    return down


def monthly_peaks_kw(import_kw: np.ndarray, month_key: np.ndarray) -> np.ndarray:
    """Highest import of each calendar month (for a demand charge per kW and month)."""
    keys, inverse = np.unique(month_key, return_inverse=True)
    peaks = np.zeros(len(keys))
    np.maximum.at(peaks, inverse, import_kw)
    return peaks
