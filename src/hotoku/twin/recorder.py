"""Preallocated per-step records of a run: flows, states, prices and every clipped command."""

from __future__ import annotations

import numpy as np

SCALARS = (
    "pv_available_kw", "pv_used_kw", "curtailment_kw", "load_kw", "load_served_kw", "unserved_kw",
    "grid_import_kw", "grid_export_kw", "battery_charge_kw", "battery_discharge_kw", "car_charge_kw",
    "car_discharge_kw", "pv_town_used_kw", "town_served_kw", "town_battery_kw", "link_to_town_kw",
    "link_from_town_kw", "link_loss_kw", "green_fraction", "green_served_kw", "trip_kwh", "trip_green_kwh",
    "price_jpy_per_kwh", "export_price_jpy_per_kwh", "co2_kg_per_kwh", "grid_up", "cost_jpy", "co2_kg",
    "cars_plugged",
)


class Recorder:
    """Columns of length ``n`` (one value per step) plus per-device matrices."""

    def __init__(self, n: int, n_bat: int, n_car: int, n_site: int, n_shelter: int, n_compute: int) -> None:
        self.n = n
        self.col = {k: np.zeros(n) for k in SCALARS}
        self.battery_kw = np.zeros((n, n_bat))
        self.battery_soc = np.zeros((n, n_bat))
        self.car_soc = np.zeros((n, n_car), dtype=np.float32)
        self.site_pv_used_kw = np.zeros((n, n_site))
        self.site_flow_kw = np.zeros((n, n_site))
        self.compute_served_kw = np.zeros((n, n_site))
        self.compute_unserved_kw = np.zeros((n, n_site))
        self.shelter_served_kw = np.zeros((n, n_shelter))
        self.shelter_demand_kw = np.zeros((n, n_shelter))
        n_dev = n_bat + n_car + n_compute
        self.clip_requested_kw = np.zeros((n, n_dev), dtype=np.float32)
        self.clip_applied_kw = np.zeros((n, n_dev), dtype=np.float32)
        self.clip_reason = np.zeros((n, n_dev), dtype=np.int8)
