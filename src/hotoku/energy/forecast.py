"""Short-term forecasts of PV and load from what an operator has seen, and their error against measurements.

PV is clear-sky output × a cloudiness factor. Clear-sky irradiance is pvlib's Ineichen model at each array's
place, transposed to the array's plane (Hay-Davies) and turned into AC power by PVWatts with the array's
losses and inverter clipping [1]_ [2]_ [3]_. The cloudiness prior is the day-ahead forecast where the
operator has one (the twin's ``obs.forecast``), else an exponentially smoothed measured PV/clear-sky ratio.
Forecast errors persist for hours (Lorenz et al. 2009, IEEE JSTARS 2(1), 2-10), so the latest error of the
prior, log(measured / prior) for PV and measured / prior - 1 for load, corrects the next hours through an AR(1)
model whose persistence is fitted online. Load's prior: the day-ahead forecast, else yesterday's load.

.. [1] Ineichen, P., Perez, R. (2002). Solar Energy 73(3), 151-157.
.. [2] Hay, J. E., Davies, J. A. (1980). Calculation of the solar radiation incident on an inclined surface.
.. [3] Dobos, A. P. (2014). PVWatts Version 5 Manual. NREL/TP-6A20-62641.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pvlib

from hotoku.town import TOWN_BUS, Scenario

CLIMATE_SMOOTHING = 0.01  # weight of the newest daylight ratio in the slow cloudiness estimate
DAYLIGHT_SHARE = 0.05  # clear-sky output below this share of its peak is not used to learn cloudiness
FORGET = 0.999  # per observation: the error model remembers about the last thousand


def clear_sky_pv_kw(scenario: Scenario, midpoints_utc: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Clear-sky AC output (town bus, and sites × steps) of the scenario's arrays at the given step midpoints."""
    loc = scenario.location
    site_ids = [s.id for s in scenario.sites]
    town = np.zeros(len(midpoints_utc))
    sites = np.zeros((len(site_ids), len(midpoints_utc)))
    skies: dict[tuple[float, float], tuple[pd.DataFrame, pd.DataFrame]] = {}
    dni_extra = pvlib.irradiance.get_extra_radiation(midpoints_utc).to_numpy()
    for a in scenario.pv_arrays:
        site = scenario.site(a.site)
        lat = a.latitude if a.latitude is not None else site.latitude if site and site.latitude else loc.latitude
        lon = a.longitude if a.longitude is not None else site.longitude if site and site.longitude else loc.longitude
        if (lat, lon) not in skies:
            place = pvlib.location.Location(lat, lon, tz="UTC", altitude=loc.altitude_m)
            sun = place.get_solarposition(midpoints_utc)
            skies[(lat, lon)] = (sun, place.get_clearsky(midpoints_utc, model="ineichen", solar_position=sun))
        sun, cs = skies[(lat, lon)]
        poa = pvlib.irradiance.get_total_irradiance(
            a.tilt_deg, a.azimuth_deg, sun["apparent_zenith"], sun["azimuth"], cs["dni"], cs["ghi"], cs["dhi"],
            dni_extra=dni_extra, albedo=scenario.climate.albedo, model="haydavies")
        dc = np.nan_to_num(poa["poa_global"].to_numpy()) / 1000 * a.capacity_kwp * (1 - a.losses_fraction)
        ac = np.clip(np.minimum(dc * a.inverter_efficiency, a.capacity_kwp / a.dc_ac_ratio), 0, None)
        if a.site == TOWN_BUS:
            town += ac
        else:
            sites[site_ids.index(a.site)] += ac
    return town, sites


@dataclass
class ErrorModel:
    """AR(1) model of a forecast's error, e_t = φ·e_(t-1) + w_t, with φ and var(e) fitted online.

    The best forecast of the error ``h`` steps on is φ^h·e_now, its spread √(var·(1 - φ^2h)) (Box, Jenkins,
    Reinsel, Ljung 2015, Time Series Analysis, ch. 5). Steps with no observation (PV at night) only decay.
    """

    phi: float = 0.9
    var: float = 0.0
    last: float = 0.0
    _sxy: float = 0.0
    _sxx: float = 0.0
    _paired: bool = False
    _n: int = 0

    def observe(self, error: float) -> None:
        if self._paired:
            self._sxy = FORGET * self._sxy + self.last * error
            self._sxx = FORGET * self._sxx + self.last * self.last
            if self._sxx > 1e-9:
                self.phi = float(np.clip(self._sxy / self._sxx, 0.0, 0.999))
        self._n += 1
        self.var += (error * error - self.var) / min(self._n, 1 / (1 - FORGET))  # running mean, then forgetting
        self.last, self._paired = error, True

    def skip(self) -> None:
        self.last *= self.phi
        self._paired = False

    def predict(self, steps: int) -> np.ndarray:
        return self.last * self.phi ** np.arange(1, steps + 1)

    def spread(self, steps: int) -> np.ndarray:
        return np.sqrt(self.var * (1 - self.phi ** (2 * np.arange(1, steps + 1))))


@dataclass
class PVForecaster:
    """Clear-sky × cloudiness for the town bus and each site; learns from the measured total."""

    clear_town_kw: np.ndarray  # per step of the run (and a horizon beyond)
    clear_site_kw: np.ndarray  # sites × steps
    cloudiness: float = 0.6  # slow estimate of the measured/clear-sky ratio, the prior without a day-ahead one
    error: ErrorModel = field(default_factory=ErrorModel)  # of log(measured / prior)
    spread_kw: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)  # of the latest forecast
    _prior_last: float = field(default=np.nan, repr=False)

    def __post_init__(self) -> None:
        self.clear_total_kw = self.clear_town_kw + self.clear_site_kw.sum(axis=0)
        self._daylight = DAYLIGHT_SHARE * float(self.clear_total_kw.max(initial=0.0))

    def measure(self, step: int, measured_kw: float) -> None:
        """The total PV measured over ``step``."""
        cs = float(self.clear_total_kw[step])
        if cs > self._daylight and np.isfinite(measured_kw) and self._prior_last > 0.2 * self._daylight:
            self.cloudiness += CLIMATE_SMOOTHING * (min(measured_kw / cs, 1.3) - self.cloudiness)
            self.error.observe(float(np.log(np.clip(measured_kw / self._prior_last, 0.2, 5.0))))
        else:
            self.error.skip()

    def forecast(self, step: int, steps: int, day_ahead_kw: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(town bus kW, sites × kW) for ``steps`` steps from ``step``; ``day_ahead_kw`` is the total's prior."""
        sl = slice(step, step + steps)
        cs = self.clear_total_kw[sl]
        prior = cs * self.cloudiness if day_ahead_kw is None else np.minimum(day_ahead_kw, 1.3 * cs)
        self._prior_last = float(prior[0])
        total = prior * np.exp(self.error.predict(steps))
        share = np.divide(self.clear_site_kw[:, sl], cs, out=np.zeros_like(self.clear_site_kw[:, sl]), where=cs > 0)
        self.spread_kw = total * self.error.spread(steps)
        return total * (1 - share.sum(axis=0)), total * share


@dataclass
class LoadForecaster:
    """The day-ahead forecast (or yesterday's load) plus the latest error, fading as it has been seen to."""

    steps_per_day: int
    error: ErrorModel = field(default_factory=ErrorModel)  # of measured / prior - 1
    spread_kw: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)  # of the latest forecast
    _history: list[float] = field(default_factory=list, repr=False)
    _prior_last: float = field(default=np.nan, repr=False)

    def measure(self, measured_kw: float) -> None:
        self._history.append(measured_kw)
        if len(self._history) > 2 * self.steps_per_day:
            del self._history[: self.steps_per_day]
        if np.isfinite(self._prior_last) and self._prior_last > 0:
            self.error.observe(float(np.clip(measured_kw / self._prior_last - 1, -0.8, 4.0)))

    def forecast(self, steps: int, day_ahead_kw: np.ndarray | None = None) -> np.ndarray:
        if day_ahead_kw is not None:
            prior = np.asarray(day_ahead_kw, dtype=float)
        elif len(self._history) >= self.steps_per_day:
            h, n = np.asarray(self._history), self.steps_per_day
            prior = h[len(h) - n + np.arange(steps) % n]
        else:
            prior = np.full(steps, self._history[-1] if self._history else 0.0)
        self._prior_last = float(prior[0])
        self.spread_kw = prior * self.error.spread(steps)
        return np.maximum(prior * (1 + self.error.predict(steps)), 0.0)


LEADS = (0, 3, 15, 95)  # forecast index: the coming step (15 min ahead of the last measurement), 1 h, 4 h, 24 h


@dataclass
class ErrorTracker:
    """Mean absolute error of forecasts at a few leads, of naive persistence (the last measurement) and of
    the day-ahead prior, against what is measured later. Skill = 1 - MAE / MAE of persistence."""

    horizon: int
    leads: tuple[int, ...] = LEADS
    _fc: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _last: dict[int, float] = field(default_factory=dict, repr=False)
    _sum: np.ndarray = field(default_factory=lambda: np.zeros((3, len(LEADS))), repr=False)
    _n: np.ndarray = field(default_factory=lambda: np.zeros(len(LEADS)), repr=False)

    def issue(self, step: int, forecast: np.ndarray, last_measured: float, prior: np.ndarray | None) -> None:
        """Keep the forecast made at ``step`` (index 0 = ``step``) with the measurement known then."""
        keep = np.full((2, self.horizon), np.nan)
        keep[0, : len(forecast)] = forecast[: self.horizon]
        if prior is not None:
            keep[1, : len(prior)] = prior[: self.horizon]
        self._fc[step], self._last[step] = keep, last_measured
        self._fc.pop(step - self.horizon, None)
        self._last.pop(step - self.horizon, None)

    def measure(self, step: int, measured: float) -> None:
        """What was measured over ``step``: score every kept forecast for it at the tracked leads."""
        for j, lead in enumerate(self.leads):
            fc = self._fc.get(step - lead)
            if lead >= self.horizon or fc is None or not np.isfinite(self._last[step - lead]):
                continue
            self._sum[0, j] += abs(fc[0, lead] - measured)
            self._sum[1, j] += abs(self._last[step - lead] - measured)
            self._sum[2, j] += abs(fc[1, lead] - measured) if np.isfinite(fc[1, lead]) else np.nan
            self._n[j] += 1

    def report(self, step_minutes: int) -> dict[str, dict[str, float]]:
        """``{"15min": {"mae": ..., "mae_persistence": ..., "mae_day_ahead": ..., "skill": ...}, ...}``."""
        out: dict[str, dict[str, float]] = {}
        for j, lead in enumerate(self.leads):
            n = max(self._n[j], 1)
            mae, pers, da = self._sum[:, j] / n
            minutes = (lead + 1) * step_minutes
            name = f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}min"
            out[name] = {"mae": float(mae), "mae_persistence": float(pers), "mae_day_ahead": float(da),
                         "skill": float(1 - mae / pers) if pers > 0 else float("nan"), "n": int(self._n[j])}
        return out
