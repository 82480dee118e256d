"""Scenario blocks for electricity demand and the EV-sharing fleet."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from hotoku.town.schema_base import Block, Fraction, Hourly24, Id


class HomeGroup(Block):
    """Homes that share one consumption figure (e.g. the ZEH homes of a block)."""

    id: Id
    count: int = Field(ge=0)
    annual_kwh_per_home: float = Field(gt=0)
    heating_share: Fraction = 0.18
    cooling_share: Fraction = 0.07
    noise_fraction: float = Field(0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _shares(self) -> HomeGroup:
        if self.heating_share + self.cooling_share >= 1:
            raise ValueError("heating_share + cooling_share must stay below 1")
        return self


class Building(Block):
    """A non-residential building (ZEB office, shop, public hall) sized by floor area."""

    id: Id
    kind: Literal["office", "shop", "public"]
    floor_area_m2: float = Field(gt=0)
    annual_kwh_per_m2: float = Field(gt=0)
    heating_share: Fraction = 0.12
    cooling_share: Fraction = 0.15
    noise_fraction: float = Field(0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _shares(self) -> Building:
        if self.heating_share + self.cooling_share >= 1:
            raise ValueError("heating_share + cooling_share must stay below 1")
        return self


class Shelter(Block):
    """An evacuation shelter: a public building in normal times, only its critical circuits in an outage."""

    id: Id
    name: str = ""
    normal_kw: float = Field(ge=0)
    critical_kw: float = Field(gt=0)
    people: int | None = Field(None, ge=0)


class Loads(Block):
    homes: list[HomeGroup] = Field(default_factory=list)
    buildings: list[Building] = Field(default_factory=list)
    shelters: list[Shelter] = Field(default_factory=list)


class EVModel(Block):
    """A car model of the fleet."""

    id: Id
    capacity_kwh: float = Field(gt=0)
    kwh_per_km: float = Field(gt=0, le=1)
    onboard_charger_kw: float = Field(gt=0)
    v2g_kw: float = Field(0.0, ge=0)


class Station(Block):
    """A sharing station: its cars, one charger per car, and how often it is booked."""

    id: Id
    name: str = ""
    cars: int = Field(ge=0)
    model: str
    charger_kw: float = Field(gt=0)
    v2g: bool = False
    bookings_per_day: float = Field(ge=0)


class BookingBehaviour(Block):
    """How members book: when, how far ahead, for how long and how far (round trips)."""

    weekday_hourly_profile: Hourly24 | None = None
    holiday_hourly_profile: Hourly24 | None = None
    holiday_factor: float = Field(1.2, ge=0)
    same_day_share: Fraction = 0.4
    same_day_lead_mean_h: float = Field(2.0, gt=0)
    lead_time_mean_h: float = Field(36.0, gt=0)
    max_lead_days: float = Field(14.0, gt=0)
    duration_median_h: float = Field(3.0, gt=0)
    duration_sigma: float = Field(0.6, ge=0, le=3)
    duration_max_h: float = Field(24.0, gt=0)
    km_per_hour: float = Field(8.0, gt=0)
    km_sigma: float = Field(0.5, ge=0, le=3)
    reserve_soc: Fraction = 0.1


class Mobility(Block):
    """The EV-sharing fleet. ``v2g_soc_min`` is the floor below which a car never feeds the grid."""

    models: list[EVModel]
    stations: list[Station]
    booking: BookingBehaviour = BookingBehaviour()
    soc_max: Fraction = 0.9
    soc_initial: Fraction = 0.8
    v2g_soc_min: Fraction = 0.5
    charge_efficiency: float = Field(0.92, gt=0, le=1)
    discharge_efficiency: float = Field(0.92, gt=0, le=1)
