"""From scenario assets to the arrays the simulator and controllers use (SystemInfo, Plant)."""

from __future__ import annotations

import numpy as np

from hotoku.town import TOWN_BUS, Scenario
from hotoku.twin.controller import SystemInfo
from hotoku.twin.dispatch import Plant
from hotoku.twin.inputs import Inputs
from hotoku.twin.storage import one_way_efficiency


def build_system(scenario: Scenario, inputs: Inputs) -> SystemInfo:
    """The static description a controller gets: ids, ratings, limits."""
    site_ids = tuple(s.id for s in scenario.sites)
    bats = scenario.batteries
    mob = scenario.mobility
    car_ids: list[str] = []
    car_station: list[int] = []
    cap: list[float] = []
    per_km: list[float] = []
    ch: list[float] = []
    dis: list[float] = []
    stations = mob.stations if mob else []
    models = {m.id: m for m in mob.models} if mob else {}
    for i, st in enumerate(stations):
        m = models[st.model]
        for k in range(st.cars):
            car_ids.append(f"{st.id}-{k + 1}")
            car_station.append(i)
            cap.append(m.capacity_kwh)
            per_km.append(m.kwh_per_km)
            ch.append(min(st.charger_kw, m.onboard_charger_kw))
            dis.append(min(st.charger_kw, m.v2g_kw) if st.v2g else 0.0)
    compute_sites = np.array([i for i, s in enumerate(scenario.sites) if s.compute is not None], dtype=int)
    return SystemInfo(
        step_h=inputs.grid.step_h, n_steps=inputs.grid.n_steps, site_ids=site_ids,
        battery_ids=tuple(b.id for b in bats),
        battery_site=np.array([-1 if b.site == TOWN_BUS else site_ids.index(b.site) for b in bats], dtype=int),
        battery_capacity_kwh=np.array([b.capacity_kwh for b in bats], dtype=float),
        battery_charge_kw=np.array([b.charge_kw for b in bats], dtype=float),
        battery_discharge_kw=np.array([b.discharge_kw for b in bats], dtype=float),
        battery_soc_min=np.array([b.soc_min for b in bats], dtype=float),
        battery_soc_max=np.array([b.soc_max for b in bats], dtype=float),
        car_ids=tuple(car_ids), car_station=np.array(car_station, dtype=int),
        station_ids=tuple(st.id for st in stations), car_capacity_kwh=np.array(cap, dtype=float),
        car_kwh_per_km=np.array(per_km, dtype=float), car_charge_kw=np.array(ch, dtype=float),
        car_discharge_kw=np.array(dis, dtype=float), car_soc_max=mob.soc_max if mob else 1.0,
        car_v2g_soc_min=mob.v2g_soc_min if mob else 1.0, car_reserve_soc=mob.booking.reserve_soc if mob else 0.0,
        compute_sites=compute_sites, import_limit_kw=scenario.grid.import_limit_kw,
        export_limit_kw=scenario.grid.export_limit_kw,
    )


def build_plant(scenario: Scenario, s: SystemInfo) -> Plant:
    """Ratings the dispatch enforces (efficiencies and link data the controller need not see)."""
    mob = scenario.mobility
    computes = [scenario.sites[i].compute for i in s.compute_sites]
    return Plant(
        step_h=s.step_h, bat_capacity_kwh=s.battery_capacity_kwh, bat_charge_kw=s.battery_charge_kw,
        bat_discharge_kw=s.battery_discharge_kw, bat_soc_min=s.battery_soc_min, bat_soc_max=s.battery_soc_max,
        bat_eta=np.array([one_way_efficiency(b.round_trip_efficiency) for b in scenario.batteries], dtype=float),
        bat_site=s.battery_site, bat_grid_forming=np.array([b.grid_forming for b in scenario.batteries], dtype=bool),
        site_link_kw=np.array([x.link_kw for x in scenario.sites], dtype=float),
        site_link_loss=np.array([x.link_loss_fraction for x in scenario.sites], dtype=float),
        car_capacity_kwh=s.car_capacity_kwh, car_charge_kw=s.car_charge_kw, car_discharge_kw=s.car_discharge_kw,
        car_eta_charge=mob.charge_efficiency if mob else 1.0,
        car_eta_discharge=mob.discharge_efficiency if mob else 1.0,
        car_soc_max=s.car_soc_max, car_v2g_soc_min=s.car_v2g_soc_min, compute_sites=s.compute_sites,
        compute_min_kw=np.array([c.min_kw for c in computes if c], dtype=float),
        compute_max_kw=np.array([c.max_kw if c.max_kw is not None else np.inf for c in computes if c], dtype=float),
        import_limit_kw=s.import_limit_kw, export_limit_kw=s.export_limit_kw,
    )
