"""The temporal API end to end, on SQLite and PostgreSQL; every expected number is worked out by hand."""

from __future__ import annotations

import math

import pytest

BASE = "/ngsi-ld/v1"
EID = "urn:ngsi-ld:Sensor:odawara:1"
DAY = "2024-01-01T"
# temperature readings: (value, observedAt); hour 0 holds 10, 20, 30; hour 1 holds 40, 50; hour 2 holds 60
READINGS = [(10, "00:00"), (20, "00:20"), (30, "00:40"), (40, "01:10"), (50, "01:50"), (60, "02:30")]


def at(hhmm: str) -> str:
    return f"{DAY}{hhmm}:00.000Z"


def make_sensor(client, eid: str = EID) -> None:
    first, rest = READINGS[0], READINGS[1:]
    r = client.post(f"{BASE}/entities", json={
        "id": eid, "type": "Sensor", "name": "east gate",
        "temperature": {"type": "Property", "value": first[0], "observedAt": at(first[1])}})
    assert r.status_code == 201
    for value, hhmm in rest:
        r = client.patch(f"{BASE}/entities/{eid}/attrs/temperature", json={"value": value, "observedAt": at(hhmm)})
        assert r.status_code == 204


def temps(client, **params: object) -> list[int]:
    r = client.get(f"{BASE}/temporal/entities/{EID}", params={"attrs": "temperature", **params})
    assert r.status_code == 200, r.text
    return [i["value"] for i in r.json().get("temperature", [])]


@pytest.fixture
def sensor(client):
    make_sensor(client)
    return client


def test_full_history_is_normalized_with_instance_ids(sensor) -> None:
    r = sensor.get(f"{BASE}/temporal/entities/{EID}")
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == EID and body["type"] == "Sensor"
    insts = body["temperature"]
    assert [i["value"] for i in insts] == [10, 20, 30, 40, 50, 60]
    assert [i["observedAt"] for i in insts] == [at(t) for _, t in READINGS]
    assert all(i["type"] == "Property" and i["instanceId"].startswith("urn:ngsi-ld:attribute:instance:")
               for i in insts)
    assert len({i["instanceId"] for i in insts}) == 6
    assert "createdAt" not in insts[0]
    assert [i["value"] for i in body["name"]] == ["east gate"]
    with_sys = sensor.get(f"{BASE}/temporal/entities/{EID}", params={"options": "sysAttrs"}).json()
    assert "modifiedAt" in with_sys["temperature"][0]


def test_timerel_before_after_between(sensor) -> None:
    assert temps(sensor, timerel="before", timeAt=at("01:00")) == [10, 20, 30]
    assert temps(sensor, timerel="after", timeAt=at("01:10")) == [50, 60]  # strictly after
    assert temps(sensor, timerel="between", timeAt=at("00:20"), endTimeAt=at("01:50")) == [20, 30, 40]
    # attributes without observedAt (name) drop out once a window on observedAt is given
    body = sensor.get(f"{BASE}/temporal/entities/{EID}", params={"timerel": "after", "timeAt": at("00:00")}).json()
    assert "name" not in body and len(body["temperature"]) == 5


def test_last_n(sensor) -> None:
    assert temps(sensor, lastN=2) == [50, 60]
    assert temps(sensor, lastN=2, timerel="before", timeAt=at("01:00")) == [20, 30]


def test_temporal_values(sensor) -> None:
    r = sensor.get(f"{BASE}/temporal/entities/{EID}", params={"options": "temporalValues", "attrs": "temperature",
                                                                "timerel": "before", "timeAt": at("00:50")})
    assert r.json()["temperature"] == {"type": "Property",
                                       "values": [[10, at("00:00")], [20, at("00:20")], [30, at("00:40")]]}
    same = sensor.get(f"{BASE}/temporal/entities/{EID}", params={"format": "temporalValues", "attrs": "temperature",
                                                                  "timerel": "before", "timeAt": at("00:50")})
    assert same.json() == r.json()


def test_aggregated_values_per_hour(sensor) -> None:
    r = sensor.get(f"{BASE}/temporal/entities/{EID}", params={
        "options": "aggregatedValues", "attrs": "temperature", "aggrMethods": "avg,min,max,sum,totalCount,stddev",
        "aggrPeriodDuration": "PT1H"})
    assert r.status_code == 200, r.text
    t = r.json()["temperature"]
    hours = [(at("00:00"), at("01:00")), (at("01:00"), at("02:00")), (at("02:00"), at("03:00"))]
    assert t["type"] == "Property"
    assert t["avg"] == [[20, *hours[0]], [45, *hours[1]], [60, *hours[2]]]
    assert t["min"] == [[10, *hours[0]], [40, *hours[1]], [60, *hours[2]]]
    assert t["max"] == [[30, *hours[0]], [50, *hours[1]], [60, *hours[2]]]
    assert t["sum"] == [[60, *hours[0]], [90, *hours[1]], [60, *hours[2]]]
    assert t["totalCount"] == [[3, *hours[0]], [2, *hours[1]], [1, *hours[2]]]
    # population deviation of 10, 20, 30: sqrt(200 / 3); of 40, 50: 5
    assert [round(v, 6) for v, *_ in t["stddev"]] == [round(math.sqrt(200 / 3), 6), 5.0, 0.0]


def test_aggregation_periods_start_at_time_at(sensor) -> None:
    # after 00:30: 30@00:40 and 40@01:10 in [00:30, 01:30); 50@01:50 in [01:30, 02:30); 60@02:30 opens the third
    r = sensor.get(f"{BASE}/temporal/entities/{EID}", params={
        "format": "aggregatedValues", "attrs": "temperature", "aggrMethods": "avg,totalCount",
        "aggrPeriodDuration": "PT1H", "timerel": "after", "timeAt": at("00:30")})
    t = r.json()["temperature"]
    assert t["avg"] == [[35, at("00:30"), at("01:30")], [50, at("01:30"), at("02:30")], [60, at("02:30"), at("03:30")]]
    assert [c for c, *_ in t["totalCount"]] == [2, 1, 1]
    # PT0S (the default): one period spanning the whole window
    whole = sensor.get(f"{BASE}/temporal/entities/{EID}", params={
        "format": "aggregatedValues", "attrs": "temperature", "aggrMethods": "sum,sumsq,distinctCount",
        "timerel": "between", "timeAt": at("00:00"), "endTimeAt": at("01:00")}).json()["temperature"]
    assert whole["sum"] == [[60, at("00:00"), at("01:00")]]
    assert whole["sumsq"] == [[1400, at("00:00"), at("01:00")]]
    assert whole["distinctCount"] == [[3, at("00:00"), at("01:00")]]


def test_query_paging_and_count(sensor) -> None:
    make_sensor(sensor, "urn:ngsi-ld:Sensor:odawara:2")
    r = sensor.get(f"{BASE}/temporal/entities", params={"type": "Sensor", "attrs": "temperature", "count": "true",
                                                         "limit": 1, "offset": 1, "lastN": 1})
    assert r.status_code == 200
    assert r.headers["NGSILD-Results-Count"] == "2"
    assert [(e["id"], [i["value"] for i in e["temperature"]]) for e in r.json()] == [
        ("urn:ngsi-ld:Sensor:odawara:2", [60])]
    body = {"type": "Query", "entities": [{"type": "Sensor"}], "attrs": ["temperature"], "q": "temperature>55",
            "temporalQ": {"timerel": "before", "timeAt": at("00:30")}}
    r = sensor.post(f"{BASE}/temporal/entityOperations/query", json=body)
    assert r.status_code == 200, r.text
    assert [[i["value"] for i in e["temperature"]] for e in r.json()] == [[10, 20], [10, 20]]
    body["q"] = "temperature<55"  # q tests the current state: both are at 60 now
    assert sensor.post(f"{BASE}/temporal/entityOperations/query", json=body).json() == []


def test_long_history_pages_with_206(sensor) -> None:
    sensor.app.state.temporal_max_instances = 2
    r = sensor.get(f"{BASE}/temporal/entities/{EID}", params={"attrs": "temperature"})
    assert r.status_code == 206
    assert r.headers["Content-Range"] == f"date-time {at('00:00')}-{at('00:20')}/*"
    assert [i["value"] for i in r.json()["temperature"]] == [10, 20]
    r = sensor.get(f"{BASE}/temporal/entities/{EID}", params={"attrs": "temperature", "timerel": "after",
                                                               "timeAt": at("00:20")})
    assert r.status_code == 206 and [i["value"] for i in r.json()["temperature"]] == [30, 40]
    assert r.headers["Content-Range"] == f"date-time {at('00:20')}-{at('01:10')}/*"
    # lastN above the cap pages backwards from the newest instance
    r = sensor.get(f"{BASE}/temporal/entities/{EID}", params={"attrs": "temperature", "lastN": 5})
    assert r.status_code == 206 and [i["value"] for i in r.json()["temperature"]] == [50, 60]
    assert r.headers["Content-Range"] == f"date-time {at('02:30')}-{at('01:50')}/*"
    r = sensor.get(f"{BASE}/temporal/entities/{EID}", params={"attrs": "temperature", "lastN": 2})
    assert r.status_code == 200 and "Content-Range" not in r.headers


def test_temporal_provision(client) -> None:
    tid = "urn:ngsi-ld:Vehicle:bus:7"
    body = {"id": tid, "type": "Vehicle",
            "speed": [{"type": "Property", "value": v, "observedAt": f"2024-02-01T0{h}:00:00Z"}
                      for v, h in ((1, 0), (2, 1), (3, 2))],
            "driver": [{"type": "Relationship", "object": "urn:ngsi-ld:Person:a",
                        "observedAt": "2024-02-01T00:00:00Z"}]}
    r = client.post(f"{BASE}/temporal/entities", json=body)
    assert r.status_code == 201 and r.headers["Location"].endswith(tid)
    more = {"id": tid, "type": "Vehicle", "speed": [{"value": 4, "observedAt": "2024-02-01T03:00:00Z"}]}
    assert client.post(f"{BASE}/temporal/entities", json=more).status_code == 204
    assert client.post(f"{BASE}/temporal/entities/{tid}/attrs",
                       json={"speed": {"value": 5, "observedAt": "2024-02-01T04:00:00Z"}}).status_code == 204
    assert client.get(f"{BASE}/entities/{tid}").status_code == 404  # the current state is untouched
    speed = client.get(f"{BASE}/temporal/entities/{tid}").json()["speed"]
    assert [i["value"] for i in speed] == [1, 2, 3, 4, 5]
    second, first = speed[1]["instanceId"], speed[0]["instanceId"]
    r = client.patch(f"{BASE}/temporal/entities/{tid}/attrs/speed/{second}", json={"value": 20})
    assert r.status_code == 204
    r = client.patch(f"{BASE}/temporal/entities/{tid}/attrs/speed/{first}",
                     json={"speed": [{"type": "Property", "value": 10, "observedAt": "2024-02-01T00:30:00Z"}]})
    assert r.status_code == 204
    speed = client.get(f"{BASE}/temporal/entities/{tid}").json()["speed"]
    assert [(i["value"], i["observedAt"][11:16]) for i in speed] == [
        (10, "00:30"), (20, "01:00"), (3, "02:00"), (4, "03:00"), (5, "04:00")]
    assert client.delete(f"{BASE}/temporal/entities/{tid}/attrs/speed/{second}").status_code == 204
    assert client.delete(f"{BASE}/temporal/entities/{tid}/attrs/speed/{second}").status_code == 404
    assert [i["value"] for i in client.get(f"{BASE}/temporal/entities/{tid}").json()["speed"]] == [10, 3, 4, 5]
    assert client.delete(f"{BASE}/temporal/entities/{tid}/attrs/speed").status_code == 204
    body = client.get(f"{BASE}/temporal/entities/{tid}").json()
    assert "speed" not in body and body["driver"][0]["object"] == "urn:ngsi-ld:Person:a"
    assert client.delete(f"{BASE}/temporal/entities/{tid}").status_code == 204
    assert client.get(f"{BASE}/temporal/entities/{tid}").status_code == 404
    assert client.post(f"{BASE}/temporal/entities/{tid}/attrs", json={"speed": 1}).status_code == 404


def test_provision_needs_write_and_valid_instances(client) -> None:
    body = {"id": "urn:ngsi-ld:Vehicle:bus:8", "type": "Vehicle", "speed": [{"value": 1, "observedAt": "noon"}]}
    r = client.post(f"{BASE}/temporal/entities", json=body)
    assert r.status_code == 400 and r.json()["field"] == "speed[0].observedAt"
    r = client.post(f"{BASE}/temporal/entities", json={**body, "speed": [1]}, headers={"Authorization": ""})
    assert r.status_code == 401


@pytest.mark.parametrize(("params", "field"), [
    ({"timerel": "during", "timeAt": "2024-01-01T00:00:00Z"}, "timerel"),
    ({"timerel": "between", "timeAt": "2024-01-01T00:00:00Z"}, "endTimeAt"),
    ({"timerel": "before"}, "timeAt"),
    ({"timerel": "before", "timeAt": "yesterday"}, "timeAt"),
    ({"timeproperty": "deletedAt"}, "timeproperty"),
    ({"lastN": 0}, "lastN"),
    ({"options": "aggregatedValues", "aggrMethods": "avg", "aggrPeriodDuration": "PT1X"}, "aggrPeriodDuration"),
    ({"options": "aggregatedValues", "aggrMethods": "median"}, "aggrMethods"),
    ({"options": "aggregatedValues"}, "aggrMethods"),
    ({"format": "pretty"}, "format"),
])
def test_errors_name_the_field(sensor, params: dict, field: str) -> None:
    r = sensor.get(f"{BASE}/temporal/entities/{EID}", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field


def test_query_needs_a_selector_and_unknown_entity_is_404(client) -> None:
    r = client.get(f"{BASE}/temporal/entities", params={"timerel": "before", "timeAt": "2024-01-01T00:00:00Z"})
    assert r.status_code == 400 and r.json()["field"] == "type"
    assert client.get(f"{BASE}/temporal/entities/urn:ngsi-ld:Sensor:none").status_code == 404


def test_durations_and_instance_ids() -> None:
    from hotoku.broker.errors import BadRequestData, OperationNotSupported
    from hotoku.broker.temporal import parse_duration_ms, parse_instance_id

    assert parse_duration_ms("PT15M") == 15 * 60_000
    assert parse_duration_ms("P1DT2H") == 26 * 3_600_000
    assert parse_duration_ms("P1W") == 7 * 86_400_000
    assert parse_duration_ms("PT0.5S") == 500
    assert parse_duration_ms("PT0S") == parse_duration_ms("P0D") == 0
    for bad in ("", "P", "PT", "1H", "PT1H30", "P1DT"):
        with pytest.raises(BadRequestData):
            parse_duration_ms(bad)
    with pytest.raises(OperationNotSupported):
        parse_duration_ms("P1M")
    assert parse_instance_id("urn:ngsi-ld:attribute:instance:42") == 42
    with pytest.raises(BadRequestData):
        parse_instance_id("urn:ngsi-ld:attribute:instance:x")
