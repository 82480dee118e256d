"""Scenario blocks for place, climate, generation, storage and the grid connection."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from hotoku.town.schema_base import Block, Fraction, Id, Monthly12
from hotoku.town.timegrid import ALLOWED_STEP_MINUTES


class Location(Block):
    """Where the town is: the reference point for weather, sun and the local clock."""

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    altitude_m: float = Field(0.0, ge=-500, le=9000)
    timezone: str = "Asia/Tokyo"
    site_area_ha: float | None = Field(None, gt=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r}; use an IANA name such as 'Asia/Tokyo'") from e
        return v


class SimulationDefaults(Block):
    """The period simulated when the command line does not say otherwise."""

    start: date = date(2030, 1, 1)
    days: int = Field(365, ge=1, le=3660)
    step_minutes: int = 15
    seed: int = Field(0, ge=0)

    @field_validator("step_minutes")
    @classmethod
    def _divides_hour(cls, v: int) -> int:
        if v not in ALLOWED_STEP_MINUTES:
            raise ValueError(f"step_minutes must be one of {list(ALLOWED_STEP_MINUTES)}")
        return v


class Climate(Block):
    """Monthly normals that calibrate the seeded weather year (no weather is downloaded)."""

    monthly_sunshine_hours: Monthly12
    monthly_mean_temp_c: Monthly12
    diurnal_range_c: float = Field(7.0, ge=0, le=30)
    temp_anomaly_sd_c: float = Field(2.0, ge=0, le=10)
    angstrom_a: float = Field(0.25, ge=0, le=1)
    angstrom_b: float = Field(0.50, ge=0, le=1)
    day_persistence: float = Field(0.5, ge=0, lt=1)
    albedo: Fraction = 0.2
    wind_speed_m_per_s: float = Field(2.0, ge=0, le=30)

    @field_validator("monthly_sunshine_hours")
    @classmethod
    def _sunshine_possible(cls, v: list[float]) -> list[float]:
        for i, h in enumerate(v):
            if not 0 <= h <= 16 * 31:
                raise ValueError(f"month {i + 1}: {h} sunshine hours is impossible (0..{16 * 31})")
        return v


class ComputeLoad(Block):
    """A compute site's electrical load: a fixed profile now, driven by the compute district later."""

    constant_kw: float = Field(0.0, ge=0)
    hourly_profile_kw: list[float] | None = Field(None, min_length=24, max_length=24)
    min_kw: float = Field(0.0, ge=0)
    max_kw: float | None = Field(None, ge=0)


class Site(Block):
    """A place off the town bus (remote PV, a park microgrid) joined to it by a capacity-limited link."""

    id: Id
    name: str = ""
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    link_kw: float = Field(gt=0)
    link_loss_fraction: float = Field(0.02, ge=0, lt=0.5)
    compute: ComputeLoad | None = None


class PVArray(Block):
    """One PV array; azimuth in degrees clockwise from north (180 = south)."""

    id: Id
    site: str = "town"
    kind: Literal["rooftop", "carport", "ground", "agrivoltaic", "facade"] = "rooftop"
    capacity_kwp: float = Field(gt=0)
    tilt_deg: float = Field(ge=0, le=90)
    azimuth_deg: float = Field(180.0, ge=0, le=360)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    losses_fraction: float = Field(0.14, ge=0, lt=0.6)
    gamma_pdc_per_c: float = Field(-0.004, ge=-0.02, le=0)
    dc_ac_ratio: float = Field(1.2, ge=0.5, le=3)
    inverter_efficiency: float = Field(0.96, gt=0.5, le=1)


class Battery(Block):
    """A stationary battery; ``grid_forming`` batteries hold the bus up when the grid is out."""

    id: Id
    site: str = "town"
    capacity_kwh: float = Field(gt=0)
    charge_kw: float = Field(gt=0)
    discharge_kw: float = Field(gt=0)
    round_trip_efficiency: float = Field(0.9, gt=0, le=1)
    soc_min: Fraction = 0.1
    soc_max: Fraction = 0.95
    soc_initial: Fraction = 0.5
    grid_forming: bool = True

    @model_validator(mode="after")
    def _window(self) -> Battery:
        if not self.soc_min < self.soc_max:
            raise ValueError(f"soc_min ({self.soc_min}) must be below soc_max ({self.soc_max})")
        if not self.soc_min <= self.soc_initial <= self.soc_max:
            raise ValueError(f"soc_initial ({self.soc_initial}) must lie in [soc_min, soc_max]")
        return self


class TariffPeriod(Block):
    """Hours [start_hour, end_hour) of the local day at one price; wraps past midnight if end <= start."""

    name: str
    start_hour: int = Field(ge=0, le=23)
    end_hour: int = Field(ge=0, le=24)
    price_jpy_per_kwh: float = Field(ge=0)


class Tariff(Block):
    """A time-of-use import tariff; the default price applies to hours no period covers."""

    name: str = ""
    default_price_jpy_per_kwh: float = Field(ge=0)
    periods: list[TariffPeriod] = Field(default_factory=list)
    surcharge_jpy_per_kwh: float = Field(0.0, ge=0)
    export_price_jpy_per_kwh: float = Field(0.0, ge=0)
    demand_charge_jpy_per_kw_month: float = Field(0.0, ge=0)


class Outage(Block):
    """A grid outage; a start without a zone is read in the town's time zone."""

    start: datetime
    hours: float = Field(gt=0, le=24 * 60)
    cause: str = ""


class Grid(Block):
    """The connection to the public grid."""

    operator: str = ""
    import_limit_kw: float = Field(gt=0)
    export_limit_kw: float = Field(ge=0)
    tariff: Tariff
    co2_kg_per_kwh: float = Field(0.45, ge=0, le=2)
    reference_co2_kg_per_kwh: float | None = Field(None, ge=0, le=2)
    # the operator's demand target (デマンド目標値): import up to it is no peak worth cutting; None: every kW counts
    demand_target_kw: float | None = Field(None, gt=0)
    price_series_file: str | None = None
    co2_series_file: str | None = None
    outages: list[Outage] = Field(default_factory=list)
