"""One step of physics: apply setpoints within device, link and grid limits, and balance every bus.

Order of enforcement (each change from a command is recorded with its reason):
1. device limits: power ratings, SOC window, plugged-in, V2G capability;
2. each site off the town bus balances through its link; surplus beyond the link is curtailed;
3. with the grid up and caps given, the town bus's batteries hold import and export within them (grid-limit
   mode), within their ratings and SOC window;
4. the town bus: in an outage grid-forming batteries take up the residual; beyond the import limit,
   charging is cut, then non-critical loads, then shelters in order; beyond the export limit,
   discharging is cut, then PV is curtailed (town first, then what the sites send).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hotoku.twin.storage import power_limits_kw

OK, DEVICE_LIMIT, NOT_PLUGGED, NO_V2G, LINK_LIMIT, GRID_LIMIT, ISLAND, GRID_CAP = range(8)
REASONS = ("ok", "device limit", "car not plugged in", "no V2G", "link limit", "grid limit", "island", "grid cap")
EPS = 1e-9


@dataclass(frozen=True)
class Plant:
    """Static ratings of the controllable devices and connections."""

    step_h: float
    bat_capacity_kwh: np.ndarray
    bat_charge_kw: np.ndarray
    bat_discharge_kw: np.ndarray
    bat_soc_min: np.ndarray
    bat_soc_max: np.ndarray
    bat_eta: np.ndarray  # one-way efficiency
    bat_site: np.ndarray  # -1: town bus
    bat_grid_forming: np.ndarray
    site_link_kw: np.ndarray
    site_link_loss: np.ndarray
    car_capacity_kwh: np.ndarray
    car_charge_kw: np.ndarray
    car_discharge_kw: np.ndarray
    car_eta_charge: float
    car_eta_discharge: float
    car_soc_max: float
    car_v2g_soc_min: float
    compute_sites: np.ndarray
    compute_min_kw: np.ndarray
    compute_max_kw: np.ndarray
    import_limit_kw: float
    export_limit_kw: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "town_bats", np.flatnonzero(self.bat_site < 0))
        object.__setattr__(self, "site_bats", [np.flatnonzero(self.bat_site == s) for s in
                                               range(len(self.site_link_kw))])
        object.__setattr__(self, "town_gf", np.flatnonzero((self.bat_site < 0) & self.bat_grid_forming))


@dataclass(slots=True)
class Flows:
    """What happened in one step, in kW (step means)."""

    bat_kw: np.ndarray
    car_kw: np.ndarray
    compute_kw: np.ndarray  # served, per site
    compute_unserved_kw: np.ndarray
    site_pv_used_kw: np.ndarray
    site_flow_kw: np.ndarray  # out of each site at its end: + sent to town, - received from town
    pv_town_used_kw: float
    town_load_kw: float  # demanded
    town_served_kw: float
    shelter_served_kw: np.ndarray
    grid_import_kw: float
    grid_export_kw: float
    reason: np.ndarray  # per battery then car: REASONS index of the last change to its command
    requested: np.ndarray  # per battery then car, what the controller asked for


def _cut_toward_zero(p: np.ndarray, idx: np.ndarray, amount: float, sign: int) -> float:
    """Reduce |p[idx]| of entries with the given sign by ``amount`` in total, proportionally. Returns the cut."""
    if amount <= EPS or len(idx) == 0:
        return 0.0
    sel = idx[(p[idx] * sign) > EPS]
    if len(sel) == 0:
        return 0.0
    total = float(np.abs(p[sel]).sum())
    cut = min(amount, total)
    p[sel] -= sign * cut * np.abs(p[sel]) / total
    return cut


def _hold_caps(bat: np.ndarray, idx: np.ndarray, lo: np.ndarray, hi: np.ndarray, residual: float,
               caps_kw: tuple[float | None, float | None]) -> float:
    """Move the batteries ``idx`` (in place, toward their limits, shared by the room each has) so that the
    import ``residual`` stays within (import cap, export cap); returns the new residual. Grid-limit mode with
    the grid up, grid-forming with caps of zero in an island."""
    imp_cap, exp_cap = caps_kw
    if imp_cap is not None and residual > imp_cap + EPS:
        sign, excess, room = -1.0, residual - imp_cap, bat[idx] - lo[idx]  # discharge, or charge less
    elif exp_cap is not None and residual < -exp_cap - EPS:
        sign, excess, room = 1.0, -exp_cap - residual, hi[idx] - bat[idx]  # charge, or discharge less
    else:
        return residual
    take = min(excess, float(room.sum()))
    if take > EPS:
        bat[idx] += sign * take * room / room.sum()
        residual += sign * take
    return residual


def dispatch(plant: Plant, t: int, bat_req: np.ndarray, car_req: np.ndarray, compute_kw: np.ndarray,
             bat_energy_kwh: np.ndarray, car_energy_kwh: np.ndarray, car_plugged: np.ndarray, pv_town_kw: float,
             pv_site_kw: np.ndarray, town_noncritical_kw: float, shelter_kw: np.ndarray, grid_up: bool,
             noncritical_share: float = 1.0, caps_kw: tuple[float | None, float | None] = (None, None)) -> Flows:
    """Apply one step's commands and return the resulting flows; stores are not updated here.

    ``noncritical_share`` is the share of homes' and buildings' load the operator chose to serve (load shedding).
    ``caps_kw``: (import cap, export cap) that the town bus's batteries follow while the grid is up.
    """
    dt = plant.step_h
    nb, nc = len(bat_req), len(car_req)
    reason = np.zeros(nb + nc, dtype=np.int8)
    requested = np.concatenate([bat_req, car_req])

    # 1. device limits
    blo, bhi = power_limits_kw(bat_energy_kwh, plant.bat_capacity_kwh, plant.bat_charge_kw, plant.bat_discharge_kw,
                               plant.bat_soc_min, plant.bat_soc_max, plant.bat_eta, plant.bat_eta, dt)
    bat = np.clip(bat_req, blo, bhi)
    clo, chi = power_limits_kw(car_energy_kwh, plant.car_capacity_kwh, plant.car_charge_kw, plant.car_discharge_kw,
                               plant.car_v2g_soc_min, plant.car_soc_max, plant.car_eta_charge,
                               plant.car_eta_discharge, dt)
    clo = clo * car_plugged
    chi = chi * car_plugged
    car = np.clip(car_req, clo, chi)
    reason[:nb][np.abs(bat - bat_req) > EPS] = DEVICE_LIMIT
    changed = np.abs(car - car_req) > EPS
    rc = reason[nb:nb + nc]
    rc[changed] = DEVICE_LIMIT
    rc[changed & (car_req < 0) & (plant.car_discharge_kw <= 0)] = NO_V2G
    rc[changed & ~car_plugged] = NOT_PLUGGED
    comp_served = compute_kw.copy()

    # 2. sites: balance through the link
    ns = len(plant.site_link_kw)
    site_used = np.zeros(ns)
    flow = np.zeros(ns)
    comp_unserved = np.zeros(ns)
    for s in range(ns):
        idx = plant.site_bats[s]
        pv = float(pv_site_kw[s])
        net = pv - float(comp_served[s]) - float(bat[idx].sum())
        link, loss = float(plant.site_link_kw[s]), float(plant.site_link_loss[s])
        if net >= 0:
            excess = net - min(net, link)
            curtail = min(excess, pv)
            excess -= curtail
            if excess > EPS and _cut_toward_zero(bat, idx, excess, -1) > 0:
                reason[idx[bat[idx] != bat_req[idx]]] = LINK_LIMIT
            site_used[s] = pv - curtail
        else:
            short = -net - link * (1 - loss)
            if short > EPS:
                short -= _cut_toward_zero(bat, idx, short, +1)
                reason[idx[np.abs(bat[idx] - bat_req[idx]) > EPS]] = LINK_LIMIT
                if short > EPS:
                    comp_unserved[s] = min(short, float(comp_served[s]))
                    comp_served[s] -= comp_unserved[s]
            site_used[s] = pv
        flow[s] = site_used[s] - float(comp_served[s]) - float(bat[idx].sum())

    # 3. town bus
    tb = plant.town_bats
    town_load = town_noncritical_kw + float(shelter_kw.sum())
    nc_served = town_noncritical_kw * min(max(noncritical_share, 0.0), 1.0)
    inflow = float(np.where(flow > 0, flow * (1 - plant.site_link_loss), flow / (1 - plant.site_link_loss)).sum())
    residual = nc_served + float(shelter_kw.sum()) + float(car.sum()) + float(bat[tb].sum()) - pv_town_kw - inflow
    imp_lim, exp_lim = (plant.import_limit_kw, plant.export_limit_kw) if grid_up else (0.0, 0.0)
    # grid-limit mode with the grid up; in an island the grid-forming batteries, with nothing to exchange
    follow, caps, why = (tb, caps_kw, GRID_CAP) if grid_up else (plant.town_gf, (0.0, 0.0), ISLAND)
    if len(follow):
        before = bat[follow].copy()
        residual = _hold_caps(bat, follow, blo, bhi, residual, caps)
        reason[follow[np.abs(bat[follow] - before) > EPS]] = why
    pv_used = pv_town_kw
    shelter_served = shelter_kw.astype(float).copy()
    town_served = nc_served + float(shelter_kw.sum())
    if residual > imp_lim + EPS:
        ex = residual - imp_lim
        cut = _cut_toward_zero(bat, tb, ex, +1)
        reason[tb[(np.abs(bat[tb] - bat_req[tb]) > EPS) & (reason[tb] == OK)]] = GRID_LIMIT
        ex -= cut
        cars = np.arange(nc)
        cut = _cut_toward_zero(car, cars, ex, +1)
        if cut > 0:
            rc[(np.abs(car - car_req) > EPS) & (rc == OK)] = GRID_LIMIT
        ex -= cut
        shed = min(ex, nc_served)
        ex -= shed
        town_served -= shed
        for i in range(len(shelter_served)):
            s = min(ex, float(shelter_served[i]))
            shelter_served[i] -= s
            town_served -= s
            ex -= s
        for s in range(ns):  # the town cannot feed its sites either: they shed compute load
            if ex <= EPS or flow[s] >= 0:
                continue
            loss = float(plant.site_link_loss[s])
            cut_site = min(ex, -flow[s] / (1 - loss)) * (1 - loss)
            left = cut_site - _cut_toward_zero(bat, plant.site_bats[s], cut_site, +1)
            shed = min(left, float(comp_served[s]))
            comp_served[s] -= shed
            comp_unserved[s] += shed
            flow[s] += cut_site
            ex -= cut_site / (1 - loss)
        residual = imp_lim + max(ex, 0.0)
    elif residual < -exp_lim - EPS:
        ex = -exp_lim - residual
        ex -= _cut_toward_zero(bat, tb, ex, -1)
        ex -= _cut_toward_zero(car, np.arange(nc), ex, -1)
        for d in range(nb):
            if abs(bat[d] - bat_req[d]) > EPS and reason[d] == OK:
                reason[d] = GRID_LIMIT
        rc[(np.abs(car - car_req) > EPS) & (rc == OK)] = GRID_LIMIT
        c = min(ex, pv_town_kw)
        pv_used -= c
        ex -= c
        for s in range(ns):  # refuse what the sites send: they curtail
            if ex <= EPS or flow[s] <= 0:
                continue
            cut_town = min(ex, flow[s] * (1 - plant.site_link_loss[s]))
            cut_site = cut_town / (1 - plant.site_link_loss[s])
            pv_cut = min(cut_site, site_used[s])
            site_used[s] -= pv_cut
            if cut_site - pv_cut > EPS:
                _cut_toward_zero(bat, plant.site_bats[s], cut_site - pv_cut, -1)
            flow[s] -= cut_site
            ex -= cut_town
        residual = -exp_lim - max(ex, 0.0)
    if abs(residual) < 1e-7:  # rounding noise, not a flow (keeps an island's import exactly zero)
        residual = 0.0
    return Flows(bat_kw=bat, car_kw=car, compute_kw=comp_served, compute_unserved_kw=comp_unserved,
                 site_pv_used_kw=site_used, site_flow_kw=flow, pv_town_used_kw=pv_used, town_load_kw=town_load,
                 town_served_kw=town_served, shelter_served_kw=shelter_served,
                 grid_import_kw=max(residual, 0.0), grid_export_kw=max(-residual, 0.0), reason=reason,
                 requested=requested)
