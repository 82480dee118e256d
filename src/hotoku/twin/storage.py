"""Batteries and EV batteries as energy stores: power limits, SOC window and charge/discharge losses.

Power is positive when charging (drawn from the bus) and negative when discharging (fed to it). Losses are
split evenly: η_charge = η_discharge = √(round-trip efficiency) unless given separately. Functions work on
scalars and on arrays of stores alike.
"""

from __future__ import annotations

import numpy as np


def one_way_efficiency(round_trip_efficiency: float) -> float:
    """Charge (= discharge) efficiency for a symmetric split of round-trip losses."""
    return float(np.sqrt(round_trip_efficiency))


def power_limits_kw(energy_kwh, capacity_kwh, charge_max_kw, discharge_max_kw, soc_min, soc_max,
                    eta_charge, eta_discharge, step_h):
    """(lowest, highest) bus-side power for the coming step that keeps SOC in [soc_min, soc_max].

    The lowest is ≤ 0 (discharge), the highest ≥ 0 (charge); both respect the power ratings.
    """
    room_kwh = soc_max * capacity_kwh - energy_kwh
    avail_kwh = energy_kwh - soc_min * capacity_kwh
    hi = np.minimum(charge_max_kw, np.maximum(room_kwh, 0.0) / (eta_charge * step_h))
    lo = -np.minimum(discharge_max_kw, np.maximum(avail_kwh, 0.0) * eta_discharge / step_h)
    return lo, hi


def next_energy_kwh(energy_kwh, power_kw, eta_charge, eta_discharge, step_h):
    """Stored energy after a step at bus-side ``power_kw`` (losses on both ways)."""
    stored_kw = np.where(power_kw > 0, power_kw * eta_charge, power_kw / eta_discharge)
    return energy_kwh + stored_kw * step_h


def equivalent_full_cycles(discharged_kwh: float, capacity_kwh: float) -> float:
    """Energy discharged (bus side) divided by nominal capacity."""
    return discharged_kwh / capacity_kwh if capacity_kwh > 0 else 0.0
