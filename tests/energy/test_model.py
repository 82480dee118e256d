"""The dispatch LP on cases small enough to solve by hand."""

from __future__ import annotations

import numpy as np
import pytest
from energy_cases import horizon, network

from hotoku.energy.model import DispatchModel, Plan
from hotoku.energy.objective import Weights
from hotoku.energy.solver import LpSolver

COST = Weights(import_per_kwh=0.0, cost_per_jpy=1.0, battery_wear_per_kwh=1e-3, ev_wear_per_kwh=1e-3,
               terminal_share=0.0, later_charge_per_kwh_h=0.0)
GREEN = Weights(import_per_kwh=1.0, battery_wear_per_kwh=1e-3, ev_wear_per_kwh=1e-3, terminal_share=0.0,
                later_charge_per_kwh_h=0.0)


def solve(net, h, w) -> Plan:
    model = DispatchModel(net, np.full(len(h.pv_town_kw), net.step_h))
    x, obj = LpSolver(model.A).solve(*model.bounds_and_costs(h, w))
    return model.plan(x, obj)


def test_two_cars_charge_from_the_pv_peak_then_at_the_cheap_price():
    """Each car needs 10 kWh more by the end of hour 4. PV gives 8 kWh in hour 1 (export earns nothing), the
    price halves in hour 3: the cars take all 8 kWh of PV, then the missing 12 kWh at the cheap price."""
    net = network(cars=2)
    need = np.full((2, 4), -np.inf)
    need[:, 3] = 30.0
    p = solve(net, horizon(net, pv=[8, 0, 0, 0], load=[0, 0, 0, 0], price=[40, 40, 20, 40], car_min=need), COST)
    assert p.car_kw.sum(axis=0) == pytest.approx([8, 0, 12, 0], abs=1e-6)
    assert p.import_kw == pytest.approx([0, 0, 12, 0], abs=1e-6)
    assert p.car_kwh[:, -1] == pytest.approx([30, 30], abs=1e-6)
    assert p.objective == pytest.approx(12 * 20 + 20 * 1e-3, abs=1e-6)


def test_battery_moves_the_pv_peak_into_the_evening():
    """5 kWh of PV in each of two midday hours, 5 kWh of load in each of two evening hours: no import at all
    (lossless store); with twice the PV in one hour, the 5 kW rating stores only half of it."""
    net = network(batteries=1)
    p = solve(net, horizon(net, pv=[5, 5, 0, 0], load=[0, 0, 5, 5], price=[30] * 4), GREEN)
    assert p.battery_kw[0] == pytest.approx([5, 5, -5, -5], abs=1e-6)
    assert p.import_kw == pytest.approx([0, 0, 0, 0], abs=1e-6)
    p = solve(net, horizon(net, pv=[10, 0, 0, 0], load=[0, 0, 5, 5], price=[30] * 4), GREEN)
    assert p.export_kw[0] == pytest.approx(5, abs=1e-6)
    assert p.import_kw.sum() == pytest.approx(5, abs=1e-6)


def test_losses_make_storing_worth_less_than_it_costs_to_buy():
    """With 90 % each way, shifting 1 kWh through the battery returns 0.81: a 20 % price step does not pay."""
    net = network(batteries=1, bat_eta=0.9)
    p = solve(net, horizon(net, pv=[0, 0], load=[0, 4], price=[30, 36]), COST)
    assert p.battery_charge_kw.sum() == pytest.approx(0, abs=1e-9)
    p = solve(net, horizon(net, pv=[0, 0], load=[0, 4], price=[20, 36]), COST)  # 20/0.81 = 24.7 < 36: it does
    assert p.battery_discharge_kw[0, 1] == pytest.approx(4, abs=1e-6)
    assert p.battery_charge_kw[0, 0] == pytest.approx(4 / 0.81, abs=1e-6)


def test_peak_weight_spreads_import():
    """8 kWh of load in hour 2; a battery starting empty. Weighing the peak makes it charge 4 kWh in hour 1."""
    net = network(batteries=1)
    h = horizon(net, pv=[0, 0], load=[0, 8], price=[30, 30])
    assert solve(net, h, GREEN).import_kw.max() == pytest.approx(8, abs=1e-6)
    assert solve(net, h, GREEN.scaled(peak_per_kw=1.0)).import_kw == pytest.approx([4, 4], abs=1e-6)


def test_no_simultaneous_charge_and_discharge_even_when_energy_must_go():
    """PV beyond what can be used or exported (export limit 0): curtailment, not a store burning energy."""
    net = network(batteries=2, cars=2, bat_eta=0.9, car_eta=0.9, v2g_kw=6.0)
    net = type(net)(**{**net.__dict__, "export_limit_kw": 0.0})
    p = solve(net, horizon(net, pv=[80, 80, 0, 0], load=[1, 1, 5, 5], price=[30] * 4, bat_kwh=5.0), GREEN)
    assert np.minimum(p.battery_charge_kw, p.battery_discharge_kw).max() < 1e-9
    assert np.minimum(p.car_charge_kw, p.car_discharge_kw).max() < 1e-9
    assert p.export_kw.max() == pytest.approx(0, abs=1e-9)


def test_booking_energy_is_kept_but_not_forced_while_the_grid_is_down():
    """A known booking's energy is never fed to the grid; in an outage the car is not charged for it either
    (the shelters come first), outside one it is charged flat out if it must be."""
    from hotoku.energy.cars import next_booking_bounds

    net = network(cars=2, v2g_kw=6.0)
    edges = np.arange(9)  # eight one-hour periods; the bookings start at hours 6 and 3
    args = (net, np.array([30.0, 2.0]), np.array([True, True]), np.array([6, 3]), np.array([20.0, 20.0]), edges, 0.0)
    up = next_booking_bounds(*args)
    assert up.min_kwh[0, 5] == pytest.approx(20 * 1.05 + 0.12 * 40)  # trip, margin, reserve and its margin
    assert up.min_kwh[1, 2] == pytest.approx(2.0 + 3 * 6.0)  # as far as flat-out charging gets
    down = next_booking_bounds(*args, down=np.ones(8, dtype=bool))
    # the trip's energy is kept (all the car has, if less) and none of it fed to the grid; nothing is forced in
    assert [down.min_kwh[0, 5], down.min_kwh[1, 2]] == pytest.approx([20 * 1.05 + 0.12 * 40, 2.0])
    assert np.all(down.min_kwh[:, :3] <= np.array([[30.0], [2.0]]))


def test_an_uncertain_first_period_still_stores_its_surplus_at_once():
    """5 kWh of room, PV surplus in hours 1 and 2, evening load after. The first hour's net load is uncertain
    (spread 1 kW), but the batteries take up its error in grid-limit mode: the plan stores at once (ties go
    to charging early) rather than waiting for the second hour, and plans no import."""
    net = network(batteries=1)
    h = horizon(net, pv=[5, 5, 0, 0], load=[0, 0, 5, 5], price=[30] * 4, bat_kwh=5.0)
    h.spread_kw = 1.0
    p = solve(net, h, GREEN.scaled(later_charge_per_kwh_h=1e-4))
    assert p.battery_charge_kw[0] == pytest.approx([5, 0, 0, 0], abs=1e-6)
    assert p.import_kw == pytest.approx([0, 0, 0, 0], abs=1e-6)


def test_the_peak_covers_a_surprise_in_the_first_period():
    """4 kW of load now, spread 2 kW, no store: the planned peak covers 4 + 2.5 x 2 = 9 kW, at no cost to the plan."""
    net = network()
    h = horizon(net, pv=[0, 0], load=[4, 1], price=[30] * 2)
    h.spread_kw = 2.0
    model = DispatchModel(net, np.full(2, net.step_h))
    x, _ = LpSolver(model.A).solve(*model.bounds_and_costs(h, GREEN.scaled(peak_per_kw=1.0)))
    assert x[model.cols.idx("peak")[0, 0]] == pytest.approx(9.0, abs=1e-6)
    assert model.plan(x, 0.0).import_kw == pytest.approx([4, 1], abs=1e-6)
