"""What the optimisation trades off: weighted objectives and the modes that preset them.

All weights are in one unit, "cost of a kWh imported in green mode" (about 1), so that the value of lost
load, the wear of a battery and a yen can sit in one sum. Costs are normalised by a reference price so the
same mode behaves alike under any tariff.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Mode(StrEnum):
    """Operating modes. In every mode a lost grid switches to island rules and a warned outage fills every
    store by its start."""

    GREEN = "green"  # minimise grid import (the seed's "only green electricity"), then CO2, cost and peak
    COST = "cost"  # minimise the energy bill
    PEAK_CUT = "peak-cut"  # keep the highest import low, then cost
    RESILIENCE = "resilience"  # green, plus a standing reserve in the town batteries for an unwarned outage
    ISLAND = "island"  # plan as if the grid were gone: shelters first, in their priority order


@dataclass(frozen=True)
class Weights:
    """Objective weights; per-kWh weights apply to energy over a period, ``peak_per_kw`` once per horizon."""

    import_per_kwh: float = 1.0
    co2_per_kg: float = 0.0
    cost_per_jpy: float = 0.0
    peak_per_kw: float = 0.0
    battery_wear_per_kwh: float = 0.01  # throughput cost, charge and discharge each: keeps cycling purposeful
    ev_wear_per_kwh: float = 0.02  # cars wear a little more: they are members' cars first
    terminal_share: float = 0.9  # energy left in stores at the horizon's end is worth this share of a cheap import
    voll_noncritical_per_kwh: float = 50.0  # homes and buildings shed: far dearer than any import
    voll_shelter_per_kwh: float = 1000.0  # shelters' critical circuits: before everything else
    backlog_per_kwh_h: float = 0.002  # deferred compute work waits only for a reason
    later_charge_per_kwh_h: float = 0.0005  # ties go to charging early: a forecast surplus may not come

    def scaled(self, **changes: float) -> Weights:
        return replace(self, **changes)


def weights_for(mode: Mode | str, price_ref_jpy_per_kwh: float, co2_ref_kg_per_kwh: float) -> Weights:
    """Preset weights of a mode, normalised by a reference price and carbon intensity (e.g. the tariff's mean).

    Wear: about 1 JPY per kWh each way, a small share of a Li-ion cell's cost per cycled kWh (roughly 50,000
    JPY/kWh over 6,000 cycles, i.e. 8 JPY per kWh cycled; the rest is calendar ageing no dispatch avoids).
    """
    mode = Mode(mode)
    yen = 1.0 / max(price_ref_jpy_per_kwh, 1e-6)
    co2 = 1.0 / max(co2_ref_kg_per_kwh, 1e-6)
    wear = 1.0 * yen
    if mode is Mode.COST:
        return Weights(import_per_kwh=0.0, co2_per_kg=0.05 * co2, cost_per_jpy=yen, peak_per_kw=0.5,
                       battery_wear_per_kwh=wear, ev_wear_per_kwh=2 * wear)
    if mode is Mode.PEAK_CUT:
        return Weights(import_per_kwh=0.0, co2_per_kg=0.05 * co2, cost_per_jpy=yen, peak_per_kw=50.0,
                       battery_wear_per_kwh=wear, ev_wear_per_kwh=2 * wear)
    # green, resilience and island: import first; CO2 (for time-varying intensity) and cost break ties
    return Weights(import_per_kwh=1.0, co2_per_kg=0.2 * co2, cost_per_jpy=0.1 * yen, peak_per_kw=5.0,
                   battery_wear_per_kwh=0.5 * wear, ev_wear_per_kwh=wear)
