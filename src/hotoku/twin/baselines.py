"""Baseline controllers that ship with the twin, simple enough to explain to an operator in a sentence.

- ``uncontrolled``: cars charge at full power from plug-in until full; batteries idle.
- ``tou``: batteries and cars charge in the cheapest hours of the tariff; batteries discharge against the
  measured net load in the dear hours.
- ``pv-following``: PV surplus goes to cars, then batteries; batteries cover deficits.

The two controlled ones keep every car ready for its next known booking (and above a readiness floor for
bookings made at short notice) whenever the charger can make it in time, and in an outage they shed
homes' and buildings' load once the town battery falls to ``ISLAND_RESERVE_SOC``, keeping what is left for
the shelters. ``pv-following`` also lets idle cars feed the island through V2G.
"""

from __future__ import annotations

import numpy as np

from hotoku.twin.controller import NO_DEPARTURE, Observation, Setpoints

READY_SOC = 0.6  # charge at once below this: walk-up bookings come with an hour or two of notice
ASSUMED_CHARGE_EFFICIENCY = 0.9
V2G_FREE_HOURS = 6.0  # a car may feed the island only with no booking in the next hours
ISLAND_RESERVE_SOC = 0.5  # in an outage, below this town-battery SOC only the shelters are served


def must_charge(obs: Observation) -> np.ndarray:
    """Cars that must charge at full power now to be ready for their next known booking (or the floor)."""
    s = obs.system
    cap = s.car_capacity_kwh
    energy = obs.car_soc * cap
    need = np.minimum(obs.car_next_trip_kwh * 1.1 + (s.car_reserve_soc + 0.05) * cap, s.car_soc_max * cap)
    has = obs.car_next_departure_step != NO_DEPARTURE
    hours_left = np.where(has, (obs.car_next_departure_step - obs.step) * s.step_h, np.inf)
    deficit = np.where(has, need - energy, 0.0)
    late = deficit > s.car_charge_kw * ASSUMED_CHARGE_EFFICIENCY * np.maximum(hours_left - 2 * s.step_h, 0.0)
    return obs.car_plugged & ((late & (deficit > 0)) | (obs.car_soc < READY_SOC))


def not_full(obs: Observation) -> np.ndarray:
    return obs.car_plugged & (obs.car_soc < obs.system.car_soc_max - 1e-3)


def within_window(obs: Observation, battery_kw: np.ndarray) -> np.ndarray:
    """Drop requests a battery's SOC already rules out (the twin would clip them anyway)."""
    s = obs.system
    room = obs.battery_soc < s.battery_soc_max - 1e-3
    left = obs.battery_soc > s.battery_soc_min + 1e-3
    return np.where(battery_kw > 0, battery_kw * room, battery_kw * left)


def island_share(obs: Observation) -> float | None:
    """In an outage serve homes and buildings only while the town battery is above the reserve."""
    if obs.grid_available:
        return None
    town = obs.system.battery_site < 0
    if not town.any():
        return None
    soc = float(obs.battery_soc[town] @ obs.system.battery_capacity_kwh[town] / obs.system.battery_capacity_kwh[
        town].sum())
    return 1.0 if soc > ISLAND_RESERVE_SOC else 0.0


class Uncontrolled:
    """Cars charge at full power from plug-in until full; batteries stay idle (except as the island's grid-former)."""

    def decide(self, obs: Observation) -> Setpoints:
        return Setpoints(battery_kw=None, car_kw=obs.system.car_charge_kw * not_full(obs))


class TimeOfUse:
    """Charge in the cheapest hours of the next day; discharge batteries against net load in the dear hours."""

    def decide(self, obs: Observation) -> Setpoints:
        s = obs.system
        prices = obs.forecast(round(24 / s.step_h)).price_jpy_per_kwh
        cheap = obs.price_jpy_per_kwh <= float(prices.min()) + 1e-6
        cars = s.car_charge_kw * ((cheap & not_full(obs)) | must_charge(obs))
        if cheap:
            bat = s.battery_charge_kw.copy()
        else:
            net = np.where(s.battery_site < 0, obs.load_kw - obs.pv_kw, 0.0)
            for i in range(len(s.site_ids)):
                net[s.battery_site == i] = obs.site_load_kw[i] - obs.site_pv_kw[i]
            bat = -_share(np.clip(net, 0, None), s.battery_site, s.battery_discharge_kw)
        return Setpoints(battery_kw=within_window(obs, bat), car_kw=cars, noncritical_share=island_share(obs))


class PVFollowing:
    """Greedy PV use: surplus to cars, then batteries; batteries cover deficits. V2G only in outages."""

    def decide(self, obs: Observation) -> Setpoints:
        s = obs.system
        must = must_charge(obs)
        cars = s.car_charge_kw * must
        surplus = obs.pv_kw - obs.load_kw - float(cars.sum())
        free = not_full(obs) & ~must
        if surplus > 0 and free.any():
            want = s.car_charge_kw * free
            cars = cars + want * min(1.0, surplus / float(want.sum()))
            surplus -= float((want * min(1.0, surplus / float(want.sum()))).sum())
        town = s.battery_site < 0
        bat = np.zeros(len(s.battery_ids))
        if town.any():
            bat[town] = _split(surplus, s.battery_charge_kw[town], s.battery_discharge_kw[town])
        for i in range(len(s.site_ids)):
            here = s.battery_site == i
            if here.any():
                bat[here] = _split(obs.site_pv_kw[i] - obs.site_load_kw[i], s.battery_charge_kw[here],
                                   s.battery_discharge_kw[here])
        if not obs.grid_available:
            cars = cars - self._island_v2g(obs, -surplus)
        return Setpoints(battery_kw=within_window(obs, bat), car_kw=cars, noncritical_share=island_share(obs))

    @staticmethod
    def _island_v2g(obs: Observation, deficit_kw: float) -> np.ndarray:
        s = obs.system
        town_soc = obs.battery_soc[s.battery_site < 0]
        if deficit_kw <= 0 or (len(town_soc) and float(town_soc.min()) > 0.3):
            return np.zeros(len(s.car_ids))
        idle = (obs.car_next_departure_step - obs.step) * s.step_h > V2G_FREE_HOURS
        able = obs.car_plugged & idle & (obs.car_soc > s.car_v2g_soc_min) & (s.car_discharge_kw > 0)
        give = s.car_discharge_kw * able
        total = float(give.sum())
        return give * min(1.0, deficit_kw / total) if total > 0 else give


def _split(net_kw: float, charge_kw: np.ndarray, discharge_kw: np.ndarray) -> np.ndarray:
    """Positive net → charge, negative → discharge, shared in proportion to ratings."""
    if net_kw >= 0:
        return charge_kw * min(1.0, net_kw / float(charge_kw.sum()))
    return -discharge_kw * min(1.0, -net_kw / float(discharge_kw.sum()))


def _share(need_kw: np.ndarray, group: np.ndarray, rating_kw: np.ndarray) -> np.ndarray:
    """Each group's need (same value on each member) shared over its members in proportion to rating."""
    out = np.zeros(len(rating_kw))
    for g in np.unique(group):
        m = group == g
        out[m] = rating_kw[m] * min(1.0, float(need_kw[m][0]) / float(rating_kw[m].sum()))
    return out
