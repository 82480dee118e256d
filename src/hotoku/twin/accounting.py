"""Per-step accounting: green share by origin tracking, costs, CO2, and the record of clipped commands.

Origin tracking: each bus pools what flows into it in a step (local PV is green, grid import is not,
stores and links carry the green fraction of what they hold or send); everything drawn from the bus in
that step (loads, charging, export) takes the pool's fraction. Stores are well-mixed tanks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hotoku.twin.dispatch import DEVICE_LIMIT, EPS, LINK_LIMIT, Flows

if TYPE_CHECKING:  # pragma: no cover
    from hotoku.twin.simulation import Simulation


def account_step(sim: Simulation, t: int, fl: Flows, compute_requested_kw: np.ndarray) -> None:
    """Record step ``t``'s flows and update the stores' green fractions (before their energy is updated)."""
    inp, plant, rec, fleet = sim.inputs, sim.plant, sim.rec, sim.fleet
    c = rec.col
    dt = plant.step_h
    bat, car = fl.bat_kw, fl.car_kw
    bat_ch, bat_dis = np.maximum(bat, 0.0), -np.minimum(bat, 0.0)
    car_ch, car_dis = np.maximum(car, 0.0), -np.minimum(car, 0.0)
    flow, eff = fl.site_flow_kw, sim._link_eff
    delivered = np.where(flow > 0, flow * eff, 0.0)
    drawn = np.where(flow < 0, -flow / eff, 0.0)

    # green fractions: exporting sites first, then the town bus, then importing sites
    ns = len(flow)
    site_sup, site_green, site_g = np.zeros(ns), np.zeros(ns), np.zeros(ns)
    for s in range(ns):
        idx = plant.site_bats[s]
        site_sup[s] = fl.site_pv_used_kw[s] + bat_dis[idx].sum()
        site_green[s] = fl.site_pv_used_kw[s] + bat_dis[idx] @ sim.bat_green[idx]
        if flow[s] >= 0 and site_sup[s] > EPS:
            site_g[s] = site_green[s] / site_sup[s]
    tb = plant.town_bats
    town_sup = fl.pv_town_used_kw + delivered.sum() + fl.grid_import_kw + bat_dis[tb].sum() + car_dis.sum()
    town_green = (fl.pv_town_used_kw + delivered @ site_g + bat_dis[tb] @ sim.bat_green[tb]
                  + car_dis @ fleet.green_fraction)
    ft = town_green / town_sup if town_sup > EPS else 0.0
    for s in np.flatnonzero(flow < 0):
        sup = site_sup[s] - flow[s]
        site_g[s] = (site_green[s] - flow[s] * ft) / sup if sup > EPS else 0.0
    bus_f = np.full(len(bat), ft)
    site_of = plant.bat_site >= 0
    bus_f[site_of] = site_g[plant.bat_site[site_of]]
    add = bat_ch * plant.bat_eta * dt
    e = sim.bat_energy
    sim.bat_green = np.where(add > 0, (e * sim.bat_green + add * bus_f) / np.maximum(e + add, EPS), sim.bat_green)
    add = car_ch * plant.car_eta_charge * dt
    e = fleet.energy_kwh
    fleet.green_fraction[:] = np.where(add > 0, (e * fleet.green_fraction + add * ft) / np.maximum(e + add, EPS),
                                       fleet.green_fraction)

    # flows
    pv_avail = float(inp.pv_town_kw[t] + inp.pv_site_kw[:, t].sum())
    pv_used = fl.pv_town_used_kw + float(fl.site_pv_used_kw.sum())
    comp_served = float(fl.compute_kw.sum())
    load = fl.town_load_kw + comp_served + float(fl.compute_unserved_kw.sum())
    served = fl.town_served_kw + comp_served
    c["pv_available_kw"][t] = pv_avail
    c["pv_used_kw"][t] = pv_used
    c["curtailment_kw"][t] = pv_avail - pv_used
    c["load_kw"][t] = load
    c["load_served_kw"][t] = served
    c["unserved_kw"][t] = load - served
    c["grid_import_kw"][t] = fl.grid_import_kw
    c["grid_export_kw"][t] = fl.grid_export_kw
    c["battery_charge_kw"][t] = bat_ch.sum()
    c["battery_discharge_kw"][t] = bat_dis.sum()
    c["car_charge_kw"][t] = car_ch.sum()
    c["car_discharge_kw"][t] = car_dis.sum()
    c["pv_town_used_kw"][t] = fl.pv_town_used_kw
    c["town_served_kw"][t] = fl.town_served_kw
    c["town_battery_kw"][t] = bat[tb].sum()
    c["link_to_town_kw"][t] = delivered.sum()
    c["link_from_town_kw"][t] = drawn.sum()
    c["link_loss_kw"][t] = float((np.maximum(flow, 0.0) - delivered).sum() + (drawn + np.minimum(flow, 0.0)).sum())
    c["green_fraction"][t] = ft
    c["green_served_kw"][t] = fl.town_served_kw * ft + fl.compute_kw @ site_g
    price, xprice, co2 = inp.price_jpy_per_kwh[t], inp.export_price_jpy_per_kwh[t], inp.co2_kg_per_kwh[t]
    c["price_jpy_per_kwh"][t] = price
    c["export_price_jpy_per_kwh"][t] = xprice
    c["co2_kg_per_kwh"][t] = co2
    c["grid_up"][t] = inp.grid_up[t]
    c["cost_jpy"][t] = (fl.grid_import_kw * price - fl.grid_export_kw * xprice) * dt
    c["co2_kg"][t] = fl.grid_import_kw * co2 * dt
    c["cars_plugged"][t] = fleet.plugged.sum()
    rec.battery_kw[t] = bat
    rec.site_pv_used_kw[t] = fl.site_pv_used_kw
    rec.site_flow_kw[t] = flow
    rec.compute_served_kw[t] = fl.compute_kw
    rec.compute_unserved_kw[t] = fl.compute_unserved_kw
    rec.shelter_served_kw[t] = fl.shelter_served_kw
    rec.shelter_demand_kw[t] = inp.shelter_normal_kw[:, t] if inp.grid_up[t] else inp.shelter_critical_kw[:, t]

    # commands as asked and as applied
    d = len(fl.reason)
    rec.clip_reason[t, :d] = fl.reason
    rec.clip_requested_kw[t, :d] = fl.requested
    rec.clip_applied_kw[t, :d - len(car)] = bat
    rec.clip_applied_kw[t, d - len(car):d] = car
    k = len(compute_requested_kw)
    if k:
        applied = fl.compute_kw[plant.compute_sites]
        rec.clip_requested_kw[t, d:] = compute_requested_kw
        rec.clip_applied_kw[t, d:] = applied
        clamped = np.abs(np.clip(compute_requested_kw, plant.compute_min_kw, plant.compute_max_kw)
                         - compute_requested_kw) > EPS
        shed = fl.compute_unserved_kw[plant.compute_sites] > EPS
        rec.clip_reason[t, d:] = np.where(clamped, DEVICE_LIMIT, np.where(shed, LINK_LIMIT, 0))
