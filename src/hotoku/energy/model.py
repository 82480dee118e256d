"""The dispatch LP over a horizon of periods: one fixed matrix, and bounds and costs that change every solve.

Decisions per period: grid import and export, PV used on each bus (curtailment is what is left), each
battery's and car's charge and discharge (separate variables), compute load, its backlog and the part of
it a site cannot supply, site links both ways, load shed (homes and buildings) and unserved shelter load,
and the horizon's peak import. Constraints: the town bus and each site balance, store energy balances with
one-way efficiencies, ratings, SOC windows and booking energy as variable bounds, and ``import <= peak``.

The matrix depends only on the network and the period lengths, so a rolling horizon changes bounds, right
hand sides and costs only; a solver can keep its factorisation and basis between steps. Charging and
discharging one store at once wastes energy and costs wear, so an optimum never does both (Lemma in e.g.
Pozo, Contreras, Sauma 2014, IEEE Trans. Power Syst. 29(6), "Unit commitment with ideal and generic energy
storage units": the relaxation is exact when losses and positive throughput costs make it wasteful); tests
check this instead of adding binaries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hotoku.energy.network import Network
from hotoku.energy.objective import Weights

INF = np.inf
# The coming period's net load is uncertain. What the forecast misses, the town batteries take up within the
# step (grid-limit mode: the plan's import and export are their caps), so the plan's costs are those of the
# forecast. A second first-period balance, with no weight in the costs, is a 2.5-sigma surprise that the peak
# must also cover (otherwise every small surprise would ratchet the peak up); its surplus is curtailed.
# Weighing quintile scenarios of the error into the costs as well (a two-stage stochastic LP: Birge, Louveaux
# 2011, ch. 2) was tried: it priced the batteries' recourse as grid import, so the plan put off charging from
# a morning surplus, and on four windows of the Odawara year (77 days) it imported 1.3 % more.
OUTAGE_BACKLOG_H = 24.0
SCENARIO_Z = np.array([0.0, 2.5])
SCENARIO_P = np.array([1.0, 0.0])


class Blocks:
    """Named blocks of variables (or rows), each devices × periods, laid out device-major."""

    def __init__(self) -> None:
        self.n = 0
        self.shape: dict[str, tuple[int, int]] = {}
        self._start: dict[str, int] = {}

    def add(self, name: str, rows: int, periods: int) -> None:
        self._start[name], self.shape[name] = self.n, (rows, periods)
        self.n += rows * periods

    def idx(self, name: str) -> np.ndarray:
        r, k = self.shape[name]
        return self._start[name] + np.arange(r * k).reshape(r, k)

    def names(self) -> list[str]:
        return list(self.shape)


@dataclass
class Horizon:
    """What changes from one solve to the next, per period ``k`` of the horizon (arrays end with K)."""

    pv_town_kw: np.ndarray
    pv_site_kw: np.ndarray  # sites × K
    noncritical_kw: np.ndarray  # homes and buildings (sheddable)
    shelter_kw: np.ndarray  # shelters × K: normal use with the grid up, critical circuits without
    compute_kw: np.ndarray  # sites × K: the work arriving (the profile)
    price_jpy_per_kwh: np.ndarray
    export_price_jpy_per_kwh: np.ndarray
    co2_kg_per_kwh: np.ndarray
    grid_up: np.ndarray  # bool
    bat_energy_kwh: np.ndarray  # now
    bat_min_kwh: np.ndarray  # B × K, at the end of each period (reachable: see ``reachable_kwh``)
    car_energy_kwh: np.ndarray  # now
    car_plugged: np.ndarray  # C × K
    car_trip_kwh: np.ndarray  # C × K, energy leaving with a booking that starts in period k
    car_min_kwh: np.ndarray  # C × K, at the end of each period (reachable: see ``reachable_kwh``)
    car_max_kwh: np.ndarray  # C × K
    backlog_kwh: np.ndarray  # per site, compute work deferred so far
    backlog_max_kwh: np.ndarray  # per site
    peak_so_far_kw: float = 0.0
    spread_kw: float = 0.0  # standard deviation of the first period's net-load forecast error
    peak_margin_kw: np.ndarray | None = None  # per period: planned import stays this far below the peak
    dt_h: np.ndarray | None = None  # period lengths (hours), if not all one step


@dataclass(frozen=True)
class Plan:
    """An optimal schedule; powers in kW per period (bus side), energies at the end of each period."""

    battery_charge_kw: np.ndarray
    battery_discharge_kw: np.ndarray
    car_charge_kw: np.ndarray
    car_discharge_kw: np.ndarray
    compute_kw: np.ndarray
    shed_kw: np.ndarray
    import_kw: np.ndarray
    export_kw: np.ndarray
    battery_kwh: np.ndarray
    car_kwh: np.ndarray
    objective: float

    @property
    def battery_kw(self) -> np.ndarray:
        return self.battery_charge_kw - self.battery_discharge_kw

    @property
    def car_kw(self) -> np.ndarray:
        return self.car_charge_kw - self.car_discharge_kw


def reachable_kwh(energy_kwh: np.ndarray, charge_kw: np.ndarray, eta: float | np.ndarray, dt_h: np.ndarray,
                  plugged: np.ndarray | None = None) -> np.ndarray:
    """Energy each store can hold at the end of each period charging flat out from now (stores × K).

    Lower bounds capped by this stay feasible whatever happened before: the LP charges as fast as it can.
    """
    gain = (np.asarray(charge_kw, dtype=float) * np.asarray(eta, dtype=float))[:, None] * dt_h
    if plugged is not None:
        gain = gain * plugged
    return np.asarray(energy_kwh, dtype=float)[:, None] + np.cumsum(gain, axis=1)


class DispatchModel:
    """The LP's fixed structure for a network and a list of period lengths (hours)."""

    def __init__(self, net: Network, dt_h: np.ndarray) -> None:
        self.net, self.dt = net, np.asarray(dt_h, dtype=float)
        k, nb, nc, ns, nh = len(self.dt), net.n_bat, net.n_car, net.n_site, net.n_shelter
        self.K = k
        c = self.cols = Blocks()
        for name, rows in (("imp", 1), ("exp", 1), ("pvt", 1), ("shed", 1), ("shun", nh), ("bch", nb), ("bdis", nb),
                           ("bE", nb), ("cch", nc), ("cdis", nc), ("cE", nc), ("spv", ns), ("sout", ns), ("sin", ns),
                           ("comp", ns), ("cun", ns), ("blog", ns)):
            c.add(name, rows, k)
        c.add("peak", 1, 1)
        n_sc = len(SCENARIO_Z) - 1
        c.add("imp_s", n_sc, 1)
        c.add("exp_s", n_sc, 1)
        r = self.rows = Blocks()
        for name, rows in (("bus", 1), ("site", ns), ("bbal", nb), ("cbal", nc), ("backlog", ns), ("peak", 1)):
            r.add(name, rows, k)
        r.add("bus_s", n_sc, 1)
        r.add("peak_s", n_sc, 1)
        self.A = self._matrix()

    def _matrix(self) -> sp.csc_matrix:
        net, dt, c, r = self.net, self.dt, self.cols.idx, self.rows.idx
        ri: list[np.ndarray] = []
        ci: list[np.ndarray] = []
        vv: list[np.ndarray] = []

        def put(rows: np.ndarray, cols: np.ndarray, val: float | np.ndarray) -> None:
            rows, cols = np.broadcast_arrays(rows, cols)
            ri.append(rows.ravel())
            ci.append(cols.ravel())
            vv.append(np.broadcast_to(val, rows.shape).ravel().astype(float))

        bus, site = r("bus"), r("site")
        loss = net.site_link_loss[:, None]
        town = net.bat_site < 0
        at_site = np.flatnonzero(~town)
        put(bus, c("pvt"), 1.0)
        put(bus, c("imp"), 1.0)
        put(bus, c("exp"), -1.0)
        put(bus, c("shed"), 1.0)
        put(bus, c("shun"), 1.0)
        put(bus, c("sout"), 1 - loss)
        put(bus, c("sin"), -1 / (1 - loss))
        put(bus, c("bdis")[town], 1.0)
        put(bus, c("bch")[town], -1.0)
        put(bus, c("cdis"), 1.0)
        put(bus, c("cch"), -1.0)
        put(site, c("spv"), 1.0)
        put(site, c("comp"), -1.0)
        put(site, c("cun"), 1.0)
        put(site, c("sout"), -1.0)
        put(site, c("sin"), 1.0)
        put(site[net.bat_site[at_site]], c("bdis")[at_site], 1.0)
        put(site[net.bat_site[at_site]], c("bch")[at_site], -1.0)
        for store, ch, dis, eta_c, eta_d in (("b", "bch", "bdis", net.bat_eta[:, None], net.bat_eta[:, None]),
                                             ("c", "cch", "cdis", net.car_eta_charge, net.car_eta_discharge)):
            bal, e = r(f"{store}bal"), c(f"{store}E")
            put(bal, e, 1.0)
            put(bal[:, 1:], e[:, :-1], -1.0)
            put(bal, c(ch), -eta_c * dt)
            put(bal, c(dis), dt / eta_d)
        put(r("backlog"), c("blog"), 1.0)
        put(r("backlog")[:, 1:], c("blog")[:, :-1], -1.0)
        put(r("backlog"), c("comp"), dt)
        put(r("peak"), c("imp"), 1.0)
        put(r("peak"), c("peak"), -1.0)
        # the first period's bus again, once per scenario of its net-load error, with its own grid flows
        rows_, cols_, vals_ = np.concatenate(ri), np.concatenate(ci), np.concatenate(vv)
        first = (rows_ == bus[0, 0]) & (cols_ != c("imp")[0, 0]) & (cols_ != c("exp")[0, 0])
        for s_row in r("bus_s")[:, 0]:
            put(np.full(first.sum(), s_row), cols_[first], vals_[first])
        put(r("bus_s"), c("imp_s"), 1.0)
        put(r("bus_s"), c("exp_s"), -1.0)
        put(r("peak_s"), c("imp_s"), 1.0)
        put(r("peak_s"), c("peak"), -1.0)
        return sp.csc_matrix((np.concatenate(vv), (np.concatenate(ri), np.concatenate(ci))),
                             shape=(self.rows.n, self.cols.n))

    def bounds_and_costs(self, h: Horizon, w: Weights) -> tuple[np.ndarray, ...]:
        """(cost, col_lower, col_upper, row_lower, row_upper) for one solve."""
        net, dt, c, r = self.net, self.dt, self.cols.idx, self.rows.idx
        k = self.K
        cost, lo, hi = np.zeros(self.cols.n), np.zeros(self.cols.n), np.zeros(self.cols.n)
        rlo, rhi = np.zeros(self.rows.n), np.zeros(self.rows.n)
        up = np.asarray(h.grid_up, dtype=bool)

        def set_(name: str, low: float | np.ndarray, high: float | np.ndarray, price: float | np.ndarray = 0.0) -> None:
            i = c(name)
            lo[i], hi[i], cost[i] = low, high, price

        marginal = w.import_per_kwh + w.co2_per_kg * h.co2_kg_per_kwh + w.cost_per_jpy * h.price_jpy_per_kwh
        set_("imp", 0.0, np.where(up, net.import_limit_kw, 0.0), dt * marginal)
        set_("exp", 0.0, np.where(up, net.export_limit_kw, 0.0), -dt * w.cost_per_jpy * h.export_price_jpy_per_kwh)
        set_("pvt", 0.0, np.maximum(h.pv_town_kw, 0.0))
        set_("spv", 0.0, np.maximum(h.pv_site_kw, 0.0))
        # shedding costs a little more later: when energy is short, homes are served late rather than early, so
        # what is stored stays for the shelters until it is clear it can be spared
        later = 1 + 0.2 * np.arange(k) / k
        set_("shed", 0.0, np.maximum(h.noncritical_kw, 0.0), dt * w.voll_noncritical_per_kwh * later)
        # one value for all shelters: the setpoints cannot choose which shelter's circuits the twin drops first
        set_("shun", 0.0, np.maximum(h.shelter_kw, 0.0), dt * w.voll_shelter_per_kwh)
        set_("bch", 0.0, net.bat_charge_kw[:, None] * np.ones(k), dt * w.battery_wear_per_kwh)
        set_("bdis", 0.0, net.bat_discharge_kw[:, None] * np.ones(k), dt * w.battery_wear_per_kwh)
        cap = net.bat_capacity_kwh[:, None]
        e0 = h.bat_energy_kwh[:, None]
        set_("bE", np.maximum(h.bat_min_kwh, np.minimum(net.bat_soc_min[:, None] * cap, e0)),
             np.maximum(net.bat_soc_max[:, None] * cap, e0))
        set_("cch", 0.0, net.car_charge_kw[:, None] * h.car_plugged, dt * w.ev_wear_per_kwh)
        set_("cdis", 0.0, net.car_discharge_kw[:, None] * h.car_plugged, dt * w.ev_wear_per_kwh)
        set_("cE", h.car_min_kwh, h.car_max_kwh)
        set_("sout", 0.0, net.site_link_kw[:, None] * np.ones(k))
        set_("sin", 0.0, (net.site_link_kw * (1 - net.site_link_loss))[:, None] * np.ones(k))
        flexible = net.compute_max_kw > net.compute_min_kw
        comp_lo = np.where(flexible[:, None], net.compute_min_kw[:, None], h.compute_kw)
        set_("comp", comp_lo, np.where(flexible[:, None], net.compute_max_kw[:, None], h.compute_kw))
        # a site's minimum load is cut only when the town cannot supply it, after the shelters (the twin's order)
        set_("cun", 0.0, comp_lo, 2 * dt * w.voll_shelter_per_kwh)
        blog_hi = h.backlog_max_kwh[:, None] * np.ones(k)
        blog_hi[:, -1] = 0.0  # work that arrives within the horizon is done within it
        if not up.all():  # ... unless the grid is down: then it waits, up to a day of it, rather than drain stores
            blog_hi = np.maximum(blog_hi, OUTAGE_BACKLOG_H * h.compute_kw.mean(axis=1, keepdims=True))
        # a backlog beyond the limits (after an outage) shrinks evenly over the horizon, or as fast as it can
        fastest = h.backlog_kwh[:, None] - np.cumsum((hi[c("comp")] - h.compute_kw) * dt, axis=1)
        evenly = h.backlog_kwh[:, None] * (1 - np.cumsum(dt) / dt.sum())
        blog_hi = np.maximum(blog_hi, np.maximum(fastest, evenly))
        set_("blog", 0.0, blog_hi, dt * w.backlog_per_kwh_h)
        set_("peak", h.peak_so_far_kw, INF, w.peak_per_kw)
        first = c("imp")[0, 0], c("exp")[0, 0]
        for name, i in zip(("imp_s", "exp_s"), first, strict=True):
            set_(name, 0.0, hi[i], cost[i] * SCENARIO_P[1:, None])
            cost[i] *= SCENARIO_P[0]
        # what stores hold at the end is worth a share of the cheapest import it will replace
        value = w.terminal_share * (float(marginal[up].min()) if up.any() else 0.5 * w.voll_noncritical_per_kwh)
        cost[c("bE")[:, -1]] -= value * net.bat_eta
        cost[c("cE")[:, -1]] -= value * net.car_eta_discharge
        later = w.later_charge_per_kwh_h * dt * (np.cumsum(dt) - dt)
        cost[c("bch")] += later
        cost[c("cch")] += later

        rlo[r("bus")] = rhi[r("bus")] = h.noncritical_kw + h.shelter_kw.sum(axis=0)
        for store, e_now, trip in (("b", h.bat_energy_kwh, 0.0), ("c", h.car_energy_kwh, h.car_trip_kwh)):
            rhs = -np.broadcast_to(trip, r(f"{store}bal").shape).astype(float)
            rhs[:, 0] += e_now
            rlo[r(f"{store}bal")] = rhi[r(f"{store}bal")] = rhs
        rhs = dt * h.compute_kw
        rhs[:, 0] += h.backlog_kwh
        rlo[r("backlog")] = rhi[r("backlog")] = rhs
        rlo[r("peak")], rhi[r("peak")] = -INF, 0.0 if h.peak_margin_kw is None else -h.peak_margin_kw
        spread = h.spread_kw if up[0] else 0.0  # in an island the grid-forming battery takes the error
        rlo[r("bus_s")[:, 0]] = rhi[r("bus")[0, 0]] + SCENARIO_Z[1:] * spread
        rhi[r("bus_s")[:, 0]] = INF  # supply beyond demand in a scenario is curtailed
        rlo[r("peak_s")], rhi[r("peak_s")] = -INF, 0.0
        return cost, lo, hi, rlo, rhi

    def plan(self, x: np.ndarray, objective: float) -> Plan:
        """Read a solution vector as a schedule."""
        c = self.cols.idx
        return Plan(battery_charge_kw=x[c("bch")], battery_discharge_kw=x[c("bdis")], car_charge_kw=x[c("cch")],
                    car_discharge_kw=x[c("cdis")], compute_kw=x[c("comp")],
                    shed_kw=x[c("shed")][0], import_kw=x[c("imp")][0], export_kw=x[c("exp")][0],
                    battery_kwh=x[c("bE")], car_kwh=x[c("cE")], objective=objective)
