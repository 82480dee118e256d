"""hotoku.town: the common language of the districts — scenario schema, assets, units and the time grid.

Imports nothing else of hotoku. A scenario is YAML validated by pydantic; every figure carries its source.
"""

from hotoku.town.loader import (
    ScenarioError,
    ScenarioInfo,
    list_scenarios,
    load_scenario,
    parse_scenario,
    resolve_scenario,
)
from hotoku.town.scenario import TOWN_BUS, Problem, Scenario, provenance_gaps
from hotoku.town.schema_energy import Battery, Climate, ComputeLoad, Grid, Location, Outage, PVArray, Site, Tariff
from hotoku.town.schema_loads import Building, EVModel, HomeGroup, Loads, Mobility, Shelter, Station
from hotoku.town.timegrid import TimeGrid

__all__ = [
    "TOWN_BUS",
    "Battery",
    "Building",
    "Climate",
    "ComputeLoad",
    "EVModel",
    "Grid",
    "HomeGroup",
    "Loads",
    "Location",
    "Mobility",
    "Outage",
    "PVArray",
    "Problem",
    "Scenario",
    "ScenarioError",
    "ScenarioInfo",
    "Shelter",
    "Site",
    "Station",
    "Tariff",
    "TimeGrid",
    "list_scenarios",
    "load_scenario",
    "parse_scenario",
    "provenance_gaps",
    "resolve_scenario",
]
