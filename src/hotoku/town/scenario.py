"""The scenario: one town, described as data. ``load_scenario`` reads and checks one from YAML."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd
from pydantic import BaseModel, Field, PrivateAttr, model_validator

from hotoku.town.schema_base import Block, Id, mentions
from hotoku.town.schema_energy import Battery, Climate, Grid, Location, PVArray, SimulationDefaults, Site
from hotoku.town.schema_loads import Loads, Mobility

TOWN_BUS = "town"


class Scenario(Block):
    """A whole town: place, climate, assets, loads, fleet and grid connection."""

    schema_version: Literal[1] = 1
    name: Id
    title: str = ""
    description: str = ""
    location: Location
    simulation: SimulationDefaults = SimulationDefaults()
    climate: Climate
    grid: Grid
    sites: list[Site] = Field(default_factory=list)
    pv_arrays: list[PVArray] = Field(default_factory=list)
    batteries: list[Battery] = Field(default_factory=list)
    loads: Loads = Loads()
    mobility: Mobility | None = None
    _series: dict[str, pd.Series] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        site_ids = [s.id for s in self.sites]
        _unique("sites", site_ids)
        if TOWN_BUS in site_ids:
            raise ValueError(f"sites: '{TOWN_BUS}' is the main bus and cannot be a site id")
        known = [TOWN_BUS, *site_ids]
        for kind, items in (("pv_arrays", self.pv_arrays), ("batteries", self.batteries)):
            _unique(kind, [i.id for i in items])
            for i, item in enumerate(items):
                if item.site not in known:
                    raise ValueError(f"{kind}[{i}].site: unknown site {item.site!r} (known: {', '.join(known)})")
        _unique("loads.homes", [h.id for h in self.loads.homes])
        _unique("loads.buildings", [b.id for b in self.loads.buildings])
        _unique("loads.shelters", [s.id for s in self.loads.shelters])
        if self.mobility is not None:
            models = [m.id for m in self.mobility.models]
            _unique("mobility.models", models)
            _unique("mobility.stations", [s.id for s in self.mobility.stations])
            for i, st in enumerate(self.mobility.stations):
                if st.model not in models:
                    raise ValueError(f"mobility.stations[{i}].model: unknown car model {st.model!r} "
                                     f"(known: {', '.join(models)})")
        return self

    @property
    def series(self) -> dict[str, pd.Series]:
        """Hourly series read beside the file (``price_jpy_per_kwh``, ``co2_kg_per_kwh``), if any."""
        return self._series

    def site(self, site_id: str) -> Site | None:
        return next((s for s in self.sites if s.id == site_id), None)

    @property
    def pv_kwp(self) -> float:
        return sum(a.capacity_kwp for a in self.pv_arrays)

    def with_series(self, series: dict[str, pd.Series]) -> Scenario:
        """A copy carrying the given hourly series (the loader reads them; tests may pass their own)."""
        other = self.model_copy()
        other._series = dict(series)
        return other


def _unique(where: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i, x in enumerate(ids):
        if x in seen:
            raise ValueError(f"{where}[{i}].id: {x!r} is used twice; ids must be unique")
        seen.add(x)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario: where (a dotted field path) and what."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


_NOT_FIGURES = {"source", "id", "name", "title", "description", "schema_version", "seed"}


def provenance_gaps(scenario: Scenario) -> list[Problem]:
    """Figures set in the file whose block (or an enclosing block) names no source for them.

    A figure counts as sourced when its field name appears as a word in the ``source`` text of its own
    block or of any block around it. Shipped scenarios have none; ``hotoku scenario validate --strict``
    makes them errors for a user's own file.
    """
    gaps: list[Problem] = []
    _walk(scenario, "", [], gaps)
    return gaps


def _walk(model: BaseModel, path: str, sources: list[str], gaps: list[Problem]) -> None:
    here = [*sources, getattr(model, "source", "") or ""]
    for name in sorted(model.model_fields_set):
        value = getattr(model, name)
        where = f"{path}.{name}" if path else name
        if isinstance(value, BaseModel):
            _walk(value, where, here, gaps)
        elif isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
            for i, v in enumerate(value):
                _walk(v, f"{where}[{i}]", here, gaps)
        elif name not in _NOT_FIGURES and _is_figure(value) and not any(mentions(s, name) for s in here):
            gaps.append(Problem(where, f"no source: name '{name}' in this block's `source:` and say where "
                                       "the figure comes from"))


def _is_figure(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, list) and bool(value) and all(isinstance(v, int | float) for v in value)

