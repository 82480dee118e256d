"""The town as the optimiser sees it: static ratings from the scenario and the twin's ``SystemInfo``.

Everything here is known to an operator before the first step (nameplates, links, tariffs' shape); nothing
is a measurement. The controller interface gives ratings of batteries and cars; the scenario adds what the
interface leaves out: efficiencies, site links, compute flexibility and the shelters' critical circuits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hotoku.town import TOWN_BUS, Scenario
from hotoku.twin.controller import SystemInfo


@dataclass(frozen=True)
class Network:
    """Ratings of every device the optimisation dispatches, as plain arrays (units in the names)."""

    step_h: float
    bat_capacity_kwh: np.ndarray
    bat_charge_kw: np.ndarray
    bat_discharge_kw: np.ndarray
    bat_soc_min: np.ndarray
    bat_soc_max: np.ndarray
    bat_eta: np.ndarray  # one-way, charge = discharge
    bat_site: np.ndarray  # -1: town bus, else index into the sites
    car_capacity_kwh: np.ndarray
    car_charge_kw: np.ndarray
    car_discharge_kw: np.ndarray  # 0: no V2G
    car_eta_charge: float
    car_eta_discharge: float
    car_soc_max: float
    car_v2g_soc_min: float
    car_reserve_soc: float
    site_link_kw: np.ndarray
    site_link_loss: np.ndarray
    compute_min_kw: np.ndarray  # per site; min = max = 0 where a site has no compute load
    compute_max_kw: np.ndarray
    compute_profile_kw: np.ndarray  # sites × 24 local hours: the load the site runs if left alone
    shelter_normal_kw: np.ndarray
    shelter_critical_kw: np.ndarray
    import_limit_kw: float
    export_limit_kw: float

    @property
    def n_bat(self) -> int:
        return len(self.bat_capacity_kwh)

    @property
    def n_car(self) -> int:
        return len(self.car_capacity_kwh)

    @property
    def n_site(self) -> int:
        return len(self.site_link_kw)

    @property
    def n_shelter(self) -> int:
        return len(self.shelter_normal_kw)

    @classmethod
    def from_scenario(cls, scenario: Scenario, system: SystemInfo) -> Network:
        """Ratings from the scenario, in the device order of ``system`` (the twin's order)."""
        mob = scenario.mobility
        sites = scenario.sites
        cmin, cmax, prof = np.zeros(len(sites)), np.zeros(len(sites)), np.zeros((len(sites), 24))
        for i, s in enumerate(sites):
            c = s.compute
            if c is None:
                continue
            prof[i] = c.hourly_profile_kw if c.hourly_profile_kw is not None else c.constant_kw
            cmin[i] = min(c.min_kw, prof[i].min())  # a profile outside its own window stays feasible
            cmax[i] = max(c.max_kw if c.max_kw is not None else prof[i].max(), prof[i].max())
        shelters = scenario.loads.shelters
        return cls(
            step_h=system.step_h, bat_capacity_kwh=system.battery_capacity_kwh,
            bat_charge_kw=system.battery_charge_kw, bat_discharge_kw=system.battery_discharge_kw,
            bat_soc_min=system.battery_soc_min, bat_soc_max=system.battery_soc_max,
            bat_eta=np.sqrt([b.round_trip_efficiency for b in scenario.batteries]).reshape(-1),
            bat_site=np.array([-1 if b.site == TOWN_BUS else [s.id for s in sites].index(b.site)
                               for b in scenario.batteries], dtype=int),
            car_capacity_kwh=system.car_capacity_kwh, car_charge_kw=system.car_charge_kw,
            car_discharge_kw=system.car_discharge_kw,
            car_eta_charge=mob.charge_efficiency if mob else 1.0,
            car_eta_discharge=mob.discharge_efficiency if mob else 1.0,
            car_soc_max=system.car_soc_max, car_v2g_soc_min=system.car_v2g_soc_min,
            car_reserve_soc=system.car_reserve_soc,
            site_link_kw=np.array([s.link_kw for s in sites], dtype=float),
            site_link_loss=np.array([s.link_loss_fraction for s in sites], dtype=float),
            compute_min_kw=cmin, compute_max_kw=cmax, compute_profile_kw=prof,
            shelter_normal_kw=np.array([s.normal_kw for s in shelters], dtype=float),
            shelter_critical_kw=np.array([s.critical_kw for s in shelters], dtype=float),
            import_limit_kw=system.import_limit_kw, export_limit_kw=system.export_limit_kw,
        )
