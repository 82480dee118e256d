"""The controller interface: what an operator sees each step, and the setpoints it sends back.

A controller implements ``decide(obs) -> Setpoints``. It sees only what a real operator could know at
that moment: measurements of the step just ended, the state of charge now, bookings made so far, tariffs
and forecasts. The twin then enforces physics and limits, and records every command it had to clip.
Sign convention everywhere: power > 0 charges a store (draws from the bus), < 0 discharges it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from hotoku.twin.simulation import Simulation

NO_DEPARTURE = np.iinfo(np.int64).max  # next-departure value of a car with no known booking


@dataclass(frozen=True)
class SystemInfo:
    """What does not change during a run: devices, their ratings, and the grid connection."""

    step_h: float
    n_steps: int
    site_ids: tuple[str, ...]  # sites off the town bus, in order; the town bus itself is "town"
    battery_ids: tuple[str, ...]
    battery_site: np.ndarray  # per battery: -1 for the town bus, else index into site_ids
    battery_capacity_kwh: np.ndarray
    battery_charge_kw: np.ndarray
    battery_discharge_kw: np.ndarray
    battery_soc_min: np.ndarray
    battery_soc_max: np.ndarray
    car_ids: tuple[str, ...]
    car_station: np.ndarray  # per car: index into station_ids
    station_ids: tuple[str, ...]
    car_capacity_kwh: np.ndarray
    car_kwh_per_km: np.ndarray
    car_charge_kw: np.ndarray  # min(charger, on-board charger)
    car_discharge_kw: np.ndarray  # 0 where the charger or car cannot feed the grid
    car_soc_max: float
    car_v2g_soc_min: float
    car_reserve_soc: float
    compute_sites: np.ndarray  # indices of sites with a compute load
    import_limit_kw: float
    export_limit_kw: float

    def battery_index(self, battery_id: str) -> int:
        return self.battery_ids.index(battery_id)

    def car_index(self, car_id: str) -> int:
        return self.car_ids.index(car_id)


@dataclass(frozen=True)
class Forecast:
    """Forecast for the next steps, starting with the current one."""

    pv_kw: np.ndarray  # PV on the town bus and its sites
    load_kw: np.ndarray  # town bus loads, EVs excluded
    price_jpy_per_kwh: np.ndarray  # known: the tariff
    co2_kg_per_kwh: np.ndarray


@dataclass(frozen=True, slots=True)
class Observation:
    """The operator's view at the start of step ``step`` (arrays are copies: keep them if you like)."""

    step: int
    local_hour: float
    day_type: int  # 0 weekday, 1 Saturday, 2 Sunday/holiday
    grid_available: bool
    price_jpy_per_kwh: float
    export_price_jpy_per_kwh: float
    co2_kg_per_kwh: float
    pv_kw: float  # measured last step: PV available to the town bus (own arrays + site exports)
    load_kw: float  # measured last step: town bus loads (homes, buildings, shelters; EVs excluded)
    site_pv_kw: np.ndarray  # measured last step, per site
    site_load_kw: np.ndarray  # measured last step, per site (compute)
    battery_soc: np.ndarray
    car_soc: np.ndarray
    car_plugged: np.ndarray  # at its station's charger now
    car_next_departure_step: np.ndarray  # of the next booking made so far; NO_DEPARTURE if none
    car_next_trip_kwh: np.ndarray  # energy that booking's distance needs
    system: SystemInfo
    # energy the car must hold at that departure for all its known bookings (trip, reserve, and what later
    # bookings need beyond flat-out charging in between); None: the trip plus the reserve
    car_next_need_kwh: np.ndarray | None = None
    _sim: Simulation | None = field(default=None, repr=False, compare=False)
    _forecast: Forecast | None = field(default=None, repr=False, compare=False)  # one read from the broker

    def forecast(self, steps: int) -> Forecast:
        """Forecast for ``steps`` steps from now (shorter at the end of the run)."""
        if self._forecast is not None:
            f = self._forecast
            return Forecast(f.pv_kw[:steps], f.load_kw[:steps], f.price_jpy_per_kwh[:steps], f.co2_kg_per_kwh[:steps])
        if self._sim is None:
            raise RuntimeError("this observation carries no forecast source")
        return self._sim.forecast(self.step, steps)


@dataclass
class Setpoints:
    """Commands for one step, in kW on the bus side. ``None`` leaves a device at its default.

    Defaults: batteries idle, cars not charging, compute loads on their fixed profile, all loads served.
    In an outage, shedding non-critical load keeps the batteries for the shelters' critical circuits.

    ``import_cap_kw`` / ``export_cap_kw`` put the town bus's batteries in grid-limit mode for the step: their
    inverters, which react within seconds where setpoints change every 15 minutes, discharge (or charge less)
    when import would exceed the cap and charge more when export would, within their ratings and SOC window
    (the import/export limit at the point of common coupling that battery inverters offer). ``None``: no cap.
    """

    battery_kw: Sequence[float] | np.ndarray | None = None
    car_kw: Sequence[float] | np.ndarray | None = None
    compute_kw: Sequence[float] | np.ndarray | None = None  # per entry of SystemInfo.compute_sites
    noncritical_share: float | None = None  # share of homes' and buildings' load to serve (1 = all, 0 = shed)
    import_cap_kw: float | None = None
    export_cap_kw: float | None = None

    @classmethod
    def from_ids(cls, system: SystemInfo, commands: Mapping[str, float]) -> Setpoints:
        """Setpoints from ``{"battery:<id>": kW, "car:<id>": kW, "compute:<site>": kW, "noncritical:share": x,
        "grid:importCap": kW, "grid:exportCap": kW}``.

        This is the shape a live runner gets from the broker (one command per device id).
        """
        bat = np.zeros(len(system.battery_ids))
        car = np.zeros(len(system.car_ids))
        comp: list[float] | None = None
        share: float | None = None
        caps: dict[str, float] = {}
        for key, kw in commands.items():
            kind, _, ident = key.partition(":")
            if kind == "battery":
                bat[system.battery_index(ident)] = kw
            elif kind == "car":
                car[system.car_index(ident)] = kw
            elif kind == "noncritical":
                share = float(kw)
            elif kind == "grid" and ident in ("importCap", "exportCap"):
                caps[ident] = float(kw)
            elif kind == "compute":
                comp = comp or [np.nan] * len(system.compute_sites)
                comp[[system.site_ids[i] for i in system.compute_sites].index(ident)] = kw
            else:
                raise KeyError(f"unknown device key {key!r}: use battery:, car:, compute:, noncritical:share, "
                               "grid:importCap or grid:exportCap")
        return cls(bat, car, comp, share, caps.get("importCap"), caps.get("exportCap"))


@runtime_checkable
class Controller(Protocol):
    """Decides setpoints from an observation; one instance serves one run."""

    def decide(self, obs: Observation) -> Setpoints:
        """Return the setpoints for the step ``obs`` describes."""
        ...
