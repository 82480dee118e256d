"""The orchestrator's plan for the coming hours as one NGSI-LD entity, so a dashboard can draw it (pure).

No FIWARE Smart Data Model describes a town's dispatch schedule, so this is hotoku's own type,
``EnergySchedule``: one entity per town, replaced every step. Its scalar properties (mode, planned import now,
planned peak, solve time) can be queried and kept in the temporal history; the per-period series sit in one
JsonProperty ``schedule`` (each period's length, then equal-length lists), as the twin's forecast does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hotoku.energy.model import Horizon, Plan
from hotoku.twin.ngsi import prop as _p

PLAN_TYPE = "EnergySchedule"


def _r(a: np.ndarray) -> list[float]:
    return [round(float(x), 3) for x in np.asarray(a).ravel()]


def plan_entity(town: str, step: int, period_minutes: np.ndarray, mode: str, plan: Plan, h: Horizon,
                battery_ids: tuple[str, ...], car_ids: tuple[str, ...], solve_s: float, at: str) -> dict[str, Any]:
    """The plan made at ``step``: grid flows, forecasts, each battery's and car's power and energy per period
    (periods of ``period_minutes``: the first hours step by step, then longer)."""
    k = plan.battery_charge_kw.shape[1]
    schedule = {
        "periodMinutes": _r(period_minutes), "periods": k,
        "pvForecast": _r(h.pv_town_kw + h.pv_site_kw.sum(axis=0)),
        "loadForecast": _r(h.noncritical_kw + h.shelter_kw.sum(axis=0)),
        "price": _r(h.price_jpy_per_kwh), "gridAvailable": [bool(x) for x in h.grid_up],
        "batteryPower": {b: _r(plan.battery_kw[i]) for i, b in enumerate(battery_ids)},
        "batteryEnergy": {b: _r(plan.battery_kwh[i]) for i, b in enumerate(battery_ids)},
        "vehiclePower": {c: _r(plan.car_kw[i]) for i, c in enumerate(car_ids)},
        "vehicleEnergy": {c: _r(plan.car_kwh[i]) for i, c in enumerate(car_ids)},
        "fleetPower": _r(plan.car_kw.sum(axis=0)),
        "computePower": _r(plan.compute_kw.sum(axis=0)),
        "gridImport": _r(plan.import_kw), "gridExport": _r(plan.export_kw), "shed": _r(plan.shed_kw),
    }
    return {
        "id": f"urn:ngsi-ld:{PLAN_TYPE}:{town}:town", "type": PLAN_TYPE,
        "forStep": _p(step, at), "mode": _p(mode, at),
        "plannedImport": _p(round(float(plan.import_kw[0]), 3), at, "KWT"),
        "plannedExport": _p(round(float(plan.export_kw[0]), 3), at, "KWT"),
        "plannedPeak": _p(round(float(np.max(plan.import_kw)), 3), at, "KWT"),
        "solveTime": _p(round(solve_s, 4), at, "SEC"),
        "schedule": {"type": "JsonProperty", "observedAt": at, "json": schedule},
    }
