"""The twin's NGSI-LD vocabulary: measurements out, setpoints in (pure: no HTTP).

Devices follow FIWARE Smart Data Models where one fits (PhotovoltaicMeasurement, Battery,
Vehicle); the town's energy status and device setpoints use hotoku's own types. Both the
live twin and any controller reading the broker use these functions, so the two sides
agree on every name.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hotoku.twin.controller import Forecast, Observation, SystemInfo

STATUS_TYPE = "TownEnergyStatus"
SETPOINT_TYPE = "DeviceSetpoint"
FORECAST_STEPS = 96


def urn(kind: str, town: str, local: str) -> str:
    return f"urn:ngsi-ld:{kind}:{town}:{local}"


def prop(value: Any, observed_at: str, unit: str | None = None) -> dict[str, Any]:
    """An NGSI-LD Property observed at ``observed_at``, with a UN/CEFACT unit code if given."""
    out: dict[str, Any] = {"type": "Property", "value": value, "observedAt": observed_at}
    if unit:
        out["unitCode"] = unit
    return out


_p = prop


def _floats(a: np.ndarray) -> list[float]:
    return [float(x) for x in a]


def observation_entities(town: str, obs: Observation, forecast: Forecast, at: str) -> list[dict[str, Any]]:
    """What a real operator could read at the start of a step, as NGSI-LD entities."""
    s = obs.system
    status = {
        "id": urn(STATUS_TYPE, town, "town"), "type": STATUS_TYPE,
        "step": _p(obs.step, at), "localHour": _p(obs.local_hour, at), "dayType": _p(obs.day_type, at),
        "gridAvailable": _p(obs.grid_available, at),
        "price": _p(obs.price_jpy_per_kwh, at, "JPY/kWh"),
        "exportPrice": _p(obs.export_price_jpy_per_kwh, at, "JPY/kWh"),
        "co2Factor": _p(obs.co2_kg_per_kwh, at, "kg/kWh"),
        "pvPower": _p(obs.pv_kw, at, "KWT"), "loadPower": _p(obs.load_kw, at, "KWT"),
        "sitePvPower": _p(_floats(obs.site_pv_kw), at, "KWT"),
        "siteLoadPower": _p(_floats(obs.site_load_kw), at, "KWT"),
        "forecast": {"type": "JsonProperty", "observedAt": at, "json": {
            "pvPower": _floats(forecast.pv_kw), "loadPower": _floats(forecast.load_kw),
            "price": _floats(forecast.price_jpy_per_kwh), "co2Factor": _floats(forecast.co2_kg_per_kwh)}},
    }
    entities = [status]
    need = obs.car_next_trip_kwh + s.car_reserve_soc * s.car_capacity_kwh if obs.car_next_need_kwh is None \
        else obs.car_next_need_kwh
    for i, bid in enumerate(s.battery_ids):
        entities.append({"id": urn("Battery", town, bid), "type": "Battery",
                         "stateOfCharge": _p(float(obs.battery_soc[i]), at, "C62")})
    for i, cid in enumerate(s.car_ids):
        entities.append({
            "id": urn("Vehicle", town, cid), "type": "Vehicle",
            "stateOfCharge": _p(float(obs.car_soc[i]), at, "C62"),
            "plugged": _p(bool(obs.car_plugged[i]), at),
            "nextDepartureStep": _p(int(obs.car_next_departure_step[i]), at),
            "nextTripEnergy": _p(float(obs.car_next_trip_kwh[i]), at, "KWH"),
            "nextDepartureEnergy": _p(float(need[i]), at, "KWH"),
            "refChargingStation": {"type": "Relationship",
                                   "object": urn("EVChargingStation", town, s.station_ids[int(s.car_station[i])])},
        })
    return entities


def step_entities(town: str, result: Any, at: str) -> list[dict[str, Any]]:
    """Measurements of a finished step (StepResult) for the dashboard and the history."""
    return [{
        "id": urn("PhotovoltaicMeasurement", town, "town"), "type": "PhotovoltaicMeasurement",
        "activePower": _p(float(result.pv_kw), at, "KWT"),
        "curtailment": _p(float(result.curtailment_kw), at, "KWT"),
    }, {
        "id": urn("GridConnection", town, "main"), "type": "GridConnection",
        "importPower": _p(float(result.grid_import_kw), at, "KWT"),
        "exportPower": _p(float(result.grid_export_kw), at, "KWT"),
        "unservedPower": _p(float(result.unserved_kw), at, "KWT"),
        "clippedCommands": _p(len(result.clipped), at),
    }]


def _value(entity: dict[str, Any], name: str) -> Any:
    attr = entity[name]
    return attr["json"] if attr.get("type") == "JsonProperty" else attr["value"]


def observation_from_entities(system: SystemInfo, entities: list[dict[str, Any]]) -> tuple[Observation, Forecast]:
    """Rebuild the controller's view from what the broker holds (normalized entities)."""
    by_type: dict[str, dict[str, dict[str, Any]]] = {}
    for e in entities:
        by_type.setdefault(e["type"], {})[e["id"].rsplit(":", 1)[1]] = e
    status = by_type[STATUS_TYPE]["town"]
    bats, cars = by_type.get("Battery", {}), by_type.get("Vehicle", {})
    fc = _value(status, "forecast")
    forecast = Forecast(np.array(fc["pvPower"]), np.array(fc["loadPower"]), np.array(fc["price"]),
                        np.array(fc["co2Factor"]))
    obs = Observation(
        step=int(_value(status, "step")), local_hour=float(_value(status, "localHour")),
        day_type=int(_value(status, "dayType")), grid_available=bool(_value(status, "gridAvailable")),
        price_jpy_per_kwh=float(_value(status, "price")), export_price_jpy_per_kwh=float(_value(status, "exportPrice")),
        co2_kg_per_kwh=float(_value(status, "co2Factor")), pv_kw=float(_value(status, "pvPower")),
        load_kw=float(_value(status, "loadPower")), site_pv_kw=np.array(_value(status, "sitePvPower"), dtype=float),
        site_load_kw=np.array(_value(status, "siteLoadPower"), dtype=float),
        battery_soc=np.array([_value(bats[b], "stateOfCharge") for b in system.battery_ids], dtype=float),
        car_soc=np.array([_value(cars[c], "stateOfCharge") for c in system.car_ids], dtype=float),
        car_plugged=np.array([_value(cars[c], "plugged") for c in system.car_ids], dtype=bool),
        car_next_departure_step=np.array([_value(cars[c], "nextDepartureStep") for c in system.car_ids],
                                         dtype=np.int64),
        car_next_trip_kwh=np.array([_value(cars[c], "nextTripEnergy") for c in system.car_ids], dtype=float),
        system=system, _forecast=forecast,
        car_next_need_kwh=np.array([_value(cars[c], "nextDepartureEnergy") for c in system.car_ids], dtype=float),
    )
    return obs, forecast


def setpoint_entities(town: str, step: int, commands: dict[str, float], at: str) -> list[dict[str, Any]]:
    """A controller's decision for one step: one DeviceSetpoint per device key ("battery:community")."""
    return [{"id": urn(SETPOINT_TYPE, town, key.replace(":", "-")), "type": SETPOINT_TYPE,
             "device": _p(key, at), "power": _p(float(kw), at, "KWT"), "forStep": _p(step, at)}
            for key, kw in commands.items()]


def commands_from_setpoints(system: SystemInfo, sp: Any) -> dict[str, float]:
    """Setpoints → {device key: kW}, the inverse of ``Setpoints.from_ids``; None members are left out."""
    out: dict[str, float] = {}
    if sp.battery_kw is not None:
        out |= {f"battery:{b}": float(kw) for b, kw in zip(system.battery_ids, sp.battery_kw, strict=True)}
    if sp.car_kw is not None:
        out |= {f"car:{c}": float(kw) for c, kw in zip(system.car_ids, sp.car_kw, strict=True)}
    if sp.compute_kw is not None:
        sites = [system.site_ids[i] for i in system.compute_sites]
        out |= {f"compute:{s}": float(kw) for s, kw in zip(sites, sp.compute_kw, strict=True) if kw == kw}
    if sp.noncritical_share is not None:
        out["noncritical:share"] = float(sp.noncritical_share)
    for key, cap in (("grid:importCap", sp.import_cap_kw), ("grid:exportCap", sp.export_cap_kw)):
        if cap is not None:
            out[key] = float(cap)
    return out


def commands_from_entities(entities: list[dict[str, Any]], step: int) -> dict[str, float]:
    return {_value(e, "device"): float(_value(e, "power")) for e in entities if _value(e, "forStep") == step}
