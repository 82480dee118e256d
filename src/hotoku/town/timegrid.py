"""The fixed simulation time grid: stored in UTC, shown in the town's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cached_property

import numpy as np
import pandas as pd

from hotoku.town.units import MINUTES_PER_HOUR

ALLOWED_STEP_MINUTES = (1, 5, 10, 15, 20, 30, 60)


@dataclass(frozen=True)
class TimeGrid:
    """``n_steps`` steps of ``step_minutes`` from local midnight of ``start`` in ``timezone``.

    Each step covers ``[times_utc[i], times_utc[i] + step)``; powers on the grid are step means.
    """

    start: date
    n_steps: int
    step_minutes: int = 15
    timezone: str = "Asia/Tokyo"

    def __post_init__(self) -> None:
        if self.step_minutes not in ALLOWED_STEP_MINUTES:
            raise ValueError(f"step_minutes must be one of {ALLOWED_STEP_MINUTES}, not {self.step_minutes}")
        if self.n_steps < 1:
            raise ValueError("a time grid needs at least one step")

    @classmethod
    def from_days(cls, start: date, days: int, step_minutes: int = 15, timezone: str = "Asia/Tokyo") -> TimeGrid:
        """A grid of whole days, the usual way to ask for a simulation period."""
        return cls(start, days * 24 * MINUTES_PER_HOUR // step_minutes, step_minutes, timezone)

    @property
    def step_h(self) -> float:
        return self.step_minutes / MINUTES_PER_HOUR

    @property
    def steps_per_day(self) -> int:
        return 24 * MINUTES_PER_HOUR // self.step_minutes

    @property
    def days(self) -> float:
        return self.n_steps / self.steps_per_day

    @cached_property
    def times_local(self) -> pd.DatetimeIndex:
        """Start of each step in local time."""
        first = pd.Timestamp(self.start).tz_localize(self.timezone)
        return pd.date_range(first, periods=self.n_steps, freq=f"{self.step_minutes}min")

    @cached_property
    def times_utc(self) -> pd.DatetimeIndex:
        """Start of each step in UTC (how hotoku stores time)."""
        return self.times_local.tz_convert("UTC")

    @cached_property
    def midpoints_utc(self) -> pd.DatetimeIndex:
        """Middle of each step: where step-mean irradiance is best sampled."""
        return self.times_utc + pd.Timedelta(minutes=self.step_minutes / 2)

    @cached_property
    def local_hour(self) -> np.ndarray:
        """Local clock hour of each step start as a float (e.g. 13.25)."""
        t = self.times_local
        return (t.hour + t.minute / MINUTES_PER_HOUR).to_numpy(dtype=float)

    @cached_property
    def day_index(self) -> np.ndarray:
        """0-based local day of each step."""
        return np.arange(self.n_steps) // self.steps_per_day

    @cached_property
    def local_dates(self) -> pd.DatetimeIndex:
        """The local calendar date of each day of the grid (one entry per day)."""
        first = pd.Timestamp(self.start)
        return pd.date_range(first, periods=int(np.ceil(self.days)), freq="D")

    def step_of(self, when: pd.Timestamp) -> int:
        """Index of the step containing ``when`` (tz-aware), clipped to the grid's ends."""
        delta = (when.tz_convert("UTC") - self.times_utc[0]) / pd.Timedelta(minutes=self.step_minutes)
        return int(np.clip(np.floor(delta), 0, self.n_steps))
