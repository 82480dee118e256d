"""The entity API end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

BASE = "/ngsi-ld/v1"


def building(i: int, **extra: object) -> dict:
    return {"id": f"urn:ngsi-ld:Building:odawara:{i}", "type": "Building",
            "floors": {"type": "Property", "value": i},
            "location": {"type": "GeoProperty",
                         "value": {"type": "Point", "coordinates": [139.155 + i * 0.001, 35.256]}},
            **extra}


def test_create_retrieve_and_conflict(client) -> None:
    assert client.post(f"{BASE}/entities", json=building(1)).status_code == 201
    r = client.get(f"{BASE}/entities/urn:ngsi-ld:Building:odawara:1")
    assert r.status_code == 200
    assert r.json()["floors"] == {"type": "Property", "value": 1}
    again = client.post(f"{BASE}/entities", json=building(1))
    assert again.status_code == 409
    assert again.json()["type"].endswith("AlreadyExists")


def test_bad_input_names_field_and_keeps_data(client) -> None:
    client.post(f"{BASE}/entities", json=building(1))
    bad = building(1)
    bad["location"]["value"] = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]}
    r = client.put(f"{BASE}/entities/urn:ngsi-ld:Building:odawara:1", json=bad)
    assert r.status_code == 400
    assert "location" in r.json()["detail"]
    assert client.get(f"{BASE}/entities/urn:ngsi-ld:Building:odawara:1").json()["floors"]["value"] == 1


def test_writes_need_a_token(client) -> None:
    r = client.post(f"{BASE}/entities", json=building(2), headers={"Authorization": ""})
    assert r.status_code == 401
    assert client.get(f"{BASE}/entities/urn:ngsi-ld:Building:odawara:2").status_code == 404


def test_query_type_q_count_and_paging(client) -> None:
    r = client.post(f"{BASE}/entityOperations/upsert", json=[building(i) for i in range(30)])
    assert r.status_code == 201
    r = client.get(f"{BASE}/entities", params={"type": "Building", "q": "floors>=10;floors<20", "count": "true",
                                                "limit": 5, "offset": 5})
    assert r.headers["NGSILD-Results-Count"] == "10"
    assert [e["floors"]["value"] for e in r.json()] == [15, 16, 17, 18, 19]


def test_geo_near_and_geojson(client) -> None:
    client.post(f"{BASE}/entityOperations/upsert", json=[building(i) for i in range(10)])
    # buildings are ~91 m apart along the parallel; 200 m around #0 finds #0, #1, #2
    r = client.get(f"{BASE}/entities", params={"type": "Building", "georel": "near;maxDistance==200",
                                                "geometry": "Point", "coordinates": "[139.155,35.256]"},
                   headers={"Accept": "application/geo+json"})
    body = r.json()
    assert body["type"] == "FeatureCollection"
    assert sorted(f["id"][-1] for f in body["features"]) == ["0", "1", "2"]


def test_attrs_append_update_delete(client) -> None:
    eid = "urn:ngsi-ld:Building:odawara:1"
    client.post(f"{BASE}/entities", json=building(1))
    assert client.post(f"{BASE}/entities/{eid}/attrs", json={"height": 20}).status_code == 204
    r = client.post(f"{BASE}/entities/{eid}/attrs?options=noOverwrite", json={"height": 99})
    assert r.status_code == 207
    r = client.patch(f"{BASE}/entities/{eid}/attrs", json={"height": 25, "colour": "red"})
    assert r.status_code == 207 and r.json()["notUpdated"][0]["attributeName"] == "colour"
    assert client.patch(f"{BASE}/entities/{eid}/attrs/height", json={"value": 30}).status_code == 204
    assert client.get(f"{BASE}/entities/{eid}", params={"options": "keyValues"}).json()["height"] == 30
    assert client.delete(f"{BASE}/entities/{eid}/attrs/height").status_code == 204
    assert "height" not in client.get(f"{BASE}/entities/{eid}").json()
    assert client.delete(f"{BASE}/entities/{eid}/attrs/height").status_code == 404


def test_merge_patch_null_deletes(client) -> None:
    eid = "urn:ngsi-ld:Building:odawara:1"
    client.post(f"{BASE}/entities", json=building(1, name="旧庁舎"))
    r = client.patch(f"{BASE}/entities/{eid}", json={"name": "urn:ngsi-ld:null", "floors": {"value": 9}})
    assert r.status_code == 204
    got = client.get(f"{BASE}/entities/{eid}").json()
    assert "name" not in got and got["floors"]["value"] == 9


def test_batch_multistatus_names_failures(client) -> None:
    client.post(f"{BASE}/entities", json=building(1))
    r = client.post(f"{BASE}/entityOperations/create", json=[building(1), building(2), {"id": "nope"}])
    assert r.status_code == 207
    body = r.json()
    assert body["success"] == ["urn:ngsi-ld:Building:odawara:2"]
    failed = {e["entityId"]: e["error"]["type"].rsplit("/", 1)[-1] for e in body["errors"]}
    assert failed == {"urn:ngsi-ld:Building:odawara:1": "AlreadyExists", "nope": "BadRequestData"}


def test_tenants_are_isolated(client) -> None:
    client.post(f"{BASE}/entities", json=building(1), headers={"NGSILD-Tenant": "kuno"})
    assert client.get(f"{BASE}/entities/urn:ngsi-ld:Building:odawara:1").status_code == 404
    r = client.get(f"{BASE}/entities/urn:ngsi-ld:Building:odawara:1", headers={"NGSILD-Tenant": "kuno"})
    assert r.status_code == 200


def test_geo_index_follows_moves_and_deletes(client) -> None:
    eid = "urn:ngsi-ld:Building:odawara:3"
    client.post(f"{BASE}/entities", json=building(3))
    near = {"type": "Building", "georel": "near;maxDistance==50", "geometry": "Point"}
    at_old = {**near, "coordinates": "[139.158,35.256]"}
    at_new = {**near, "coordinates": "[139.2,35.3]"}
    client.patch(f"{BASE}/entities/{eid}/attrs/floors", json={"value": 4})  # not a move: index unchanged
    assert [e["id"] for e in client.get(f"{BASE}/entities", params=at_old).json()] == [eid]
    client.patch(f"{BASE}/entities/{eid}/attrs/location",
                 json={"value": {"type": "Point", "coordinates": [139.2, 35.3]}})
    assert client.get(f"{BASE}/entities", params=at_old).json() == []
    assert [e["id"] for e in client.get(f"{BASE}/entities", params=at_new).json()] == [eid]
    client.delete(f"{BASE}/entities/{eid}")
    assert client.get(f"{BASE}/entities", params=at_new).json() == []


def test_nul_characters_are_refused_not_500(client) -> None:
    r = client.post(f"{BASE}/entities", content=b'{"id":"urn:a:2","type":"T","x":"a\\u0000b"}',
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["field"] == "body"
    assert client.get(f"{BASE}/entities", params={"type": "T", "attrs": "A\x00B"}).status_code == 400
    assert client.get(f"{BASE}/entities/urn:a:%00").status_code == 400
