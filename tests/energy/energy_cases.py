"""Small hand-made networks for the formulation tests."""

from __future__ import annotations

import numpy as np

from hotoku.energy.model import Horizon
from hotoku.energy.network import Network


def network(*, batteries: int = 0, cars: int = 0, bat_eta: float = 1.0, car_eta: float = 1.0,
            v2g_kw: float = 0.0, step_h: float = 1.0) -> Network:
    """A town bus with ``batteries`` 10 kWh / 5 kW stores and ``cars`` 40 kWh / 6 kW cars; no sites, no shelters."""
    nb, nc = batteries, cars
    empty = np.zeros(0)
    return Network(
        step_h=step_h, bat_capacity_kwh=np.full(nb, 10.0), bat_charge_kw=np.full(nb, 5.0),
        bat_discharge_kw=np.full(nb, 5.0), bat_soc_min=np.zeros(nb), bat_soc_max=np.ones(nb),
        bat_eta=np.full(nb, bat_eta), bat_site=np.full(nb, -1), car_capacity_kwh=np.full(nc, 40.0),
        car_charge_kw=np.full(nc, 6.0), car_discharge_kw=np.full(nc, v2g_kw), car_eta_charge=car_eta,
        car_eta_discharge=car_eta, car_soc_max=1.0, car_v2g_soc_min=0.0, car_reserve_soc=0.1,
        site_link_kw=empty, site_link_loss=empty, compute_min_kw=empty, compute_max_kw=empty,
        compute_profile_kw=np.zeros((0, 24)), shelter_normal_kw=empty, shelter_critical_kw=empty,
        import_limit_kw=1000.0, export_limit_kw=1000.0)


def horizon(net: Network, *, pv: list[float], load: list[float], price: list[float], bat_kwh: float = 0.0,
            car_kwh: float = 20.0, car_min: np.ndarray | None = None, export_price: float = 0.0) -> Horizon:
    """Per-period inputs of length K for ``net``; cars plugged throughout, no V2G floor unless ``car_min``."""
    k = len(pv)
    nb, nc = net.n_bat, net.n_car
    return Horizon(
        pv_town_kw=np.array(pv, dtype=float), pv_site_kw=np.zeros((0, k)), noncritical_kw=np.array(load, dtype=float),
        shelter_kw=np.zeros((0, k)), compute_kw=np.zeros((0, k)), price_jpy_per_kwh=np.array(price, dtype=float),
        export_price_jpy_per_kwh=np.full(k, export_price), co2_kg_per_kwh=np.full(k, 0.45),
        grid_up=np.ones(k, dtype=bool), bat_energy_kwh=np.full(nb, bat_kwh), bat_min_kwh=np.zeros((nb, k)),
        car_energy_kwh=np.full(nc, car_kwh), car_plugged=np.ones((nc, k), dtype=bool),
        car_trip_kwh=np.zeros((nc, k)),
        car_min_kwh=np.full((nc, k), -np.inf) if car_min is None else car_min, car_max_kwh=np.full((nc, k), 40.0),
        backlog_kwh=np.zeros(0), backlog_max_kwh=np.zeros(0))
