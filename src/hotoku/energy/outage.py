"""Outage warnings: a grid operator's or weather service's notice that the grid will go down.

The controller sees none of the twin's outage schedule; a caller may hand it warnings, each usable only from
the step it was issued. Benchmarks warn 24 h ahead of every outage event the scenario lists (a typhoon is
forecast days ahead; a 24 h notice is a conservative reading of JMA's typhoon forecasts).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hotoku.town import Scenario, TimeGrid


@dataclass(frozen=True)
class OutageWarning:
    """The grid is expected down for ``hours`` from step ``start_step``; known from step ``issued_step``."""

    start_step: int
    hours: float
    issued_step: int


def expected_down(warnings: Iterable[OutageWarning], now: int, edges: np.ndarray, step_h: float,
                  grid_up_now: bool) -> np.ndarray:
    """Per period (``edges``: first step offset of each period, and the end): is the grid expected down?

    Down now with no warning that says for how long: down for the whole horizon (plan for the worst).
    """
    k = len(edges) - 1
    start = now + edges[:-1]
    down = np.zeros(k, dtype=bool)
    explained = False
    for w in warnings:
        if w.issued_step > now:
            continue
        end = w.start_step + round(w.hours / step_h)
        down |= (start + (edges[1:] - edges[:-1]) > w.start_step) & (start < end)
        explained |= w.start_step <= now < end
    if not grid_up_now:
        down[0] = True
        if not explained:
            down[:] = True
    return down


def warnings_for(scenario: Scenario, grid: TimeGrid, lead_h: float = 24.0) -> list[OutageWarning]:
    """A warning ``lead_h`` ahead of each outage event of the scenario that falls on ``grid``."""
    out = []
    for o in scenario.grid.outages:
        t = pd.Timestamp(o.start)
        t = t.tz_localize(scenario.location.timezone) if t.tzinfo is None else t
        start = int(grid.times_utc.searchsorted(t.tz_convert("UTC")))
        if start < grid.n_steps:
            out.append(OutageWarning(start, o.hours, max(start - round(lead_h / grid.step_h), 0)))
    return out
