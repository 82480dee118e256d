"""Subscriptions end to end, on SQLite and PostgreSQL, notifying a real HTTP receiver and a real MQTT broker.

Nothing here sleeps blindly: every wait polls with a deadline. "Exactly these
notifications" is checked with a sentinel: one subscription's notifications are
delivered in the order they were written, so once the last expected one arrives,
any unexpected earlier one would have arrived too.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

ADMIN = "test-admin-token"  # as in tests/conftest.py
BASE = "/ngsi-ld/v1"
CTX = {"Building": "https://example.org/town#Building", "floors": "https://example.org/town#floors",
       "name": "https://example.org/town#name"}
DEADLINE_S = 10.0


def poll(check: Callable[[], Any], what: str, timeout: float = DEADLINE_S) -> Any:
    """Call ``check`` until it returns something truthy, or fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


class Receiver:
    """A real HTTP endpoint on a random loopback port that records every POST."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(raw)})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int) -> list[dict[str, Any]]:
        return poll(lambda: len(self.received) >= n and list(self.received), f"{n} notification(s)")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def ld(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "@context": CTX}


LD = {"Content-Type": "application/ld+json"}


def building(i: int, floors: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Building:{i}", "type": "Building", "floors": {"type": "Property", "value": floors},
            **extra}


def subscribe(client: TestClient, uri: str, **members: Any) -> str:
    body = {"type": "Subscription", "entities": [{"type": "Building"}],
            "notification": {"endpoint": {"uri": uri}}, **members}
    r = client.post(f"{BASE}/subscriptions", json=ld(body), headers=LD)
    assert r.status_code == 201, r.text
    return r.headers["Location"].rsplit("/", 1)[-1]


def pending(client: TestClient) -> int:
    with client.app.state.services.store.read() as conn:
        return conn.execute(text("SELECT count(*) FROM outbox")).scalar()


def set_floors(client: TestClient, i: int, floors: int) -> None:
    r = client.patch(f"{BASE}/entities/urn:ngsi-ld:Building:{i}/attrs", json=ld({"floors": floors}), headers=LD)
    assert r.status_code == 204, r.text


def test_watched_attributes_q_format_and_attribute_filter(client: TestClient, receiver: Receiver) -> None:
    sid = subscribe(client, receiver.url, watchedAttributes=["floors"], q="floors>5",
                    notification={"endpoint": {"uri": receiver.url}, "format": "keyValues",
                                  "attributes": ["floors"]})
    assert client.post(f"{BASE}/entities", json=ld(building(1, 3, name="旧庁舎")), headers=LD).status_code == 201
    # not the subscriber's Building: the default context expands it to another IRI
    assert client.post(f"{BASE}/entities", json=building(2, 9)).status_code == 201
    set_floors(client, 1, 7)  # notifies
    r = client.patch(f"{BASE}/entities/urn:ngsi-ld:Building:1/attrs", json=ld({"name": "新庁舎"}), headers=LD)
    assert r.status_code == 204  # name is not watched
    set_floors(client, 1, 4)  # q fails on the new state
    set_floors(client, 1, 8)  # the sentinel
    got = receiver.wait(2)
    assert [n["json"]["data"] for n in got] == [[{"id": "urn:ngsi-ld:Building:1", "type": "Building", "floors": 7}],
                                                [{"id": "urn:ngsi-ld:Building:1", "type": "Building", "floors": 8}]]
    first = got[0]["json"]
    assert first["type"] == "Notification" and first["subscriptionId"] == sid
    assert first["id"].startswith("urn:ngsi-ld:Notification:") and first["notifiedAt"].endswith("Z")
    assert first["triggerReason"] == "attributeUpdated"
    assert got[0]["headers"]["Content-Type"] == "application/json"
    assert "NGSILD-Tenant" not in got[0]["headers"]
    assert len(receiver.received) == 2


def test_creation_deletion_tenant_and_receiver_info(client: TestClient, receiver: Receiver) -> None:
    t = {"NGSILD-Tenant": "kuno"}
    body = ld({"type": "Subscription", "entities": [{"idPattern": "^urn:ngsi-ld:Building:"}],
               "notificationTrigger": ["entityDeleted"],
               "notification": {"endpoint": {"uri": receiver.url, "accept": "application/ld+json",
                                             "receiverInfo": [{"key": "X-Town", "value": "odawara"}]}}})
    assert client.post(f"{BASE}/subscriptions", json=body, headers={**LD, **t}).status_code == 201
    assert client.post(f"{BASE}/entities", json=ld(building(1, 3)), headers={**LD, **t}).status_code == 201
    assert client.delete(f"{BASE}/entities/urn:ngsi-ld:Building:1", headers=t).status_code == 204
    got = receiver.wait(1)
    assert len(got) == 1
    n = got[0]["json"]
    assert n["triggerReason"] == "entityDeleted" and n["@context"] == [CTX, n["@context"][-1]]
    assert n["data"][0]["id"] == "urn:ngsi-ld:Building:1" and n["data"][0]["type"] == "Building"
    assert "deletedAt" in n["data"][0]
    h = got[0]["headers"]
    assert h["NGSILD-Tenant"] == "kuno" and h["X-Town"] == "odawara"
    assert h["Content-Type"] == "application/ld+json"


def test_mqtt_notification(client: TestClient, mqtt_url: str) -> None:
    import paho.mqtt.client as mqtt

    u = urlparse(mqtt_url)
    topic = f"hotoku/test/{uuid.uuid4().hex}"
    messages: list[dict[str, Any]] = []
    subscribed = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.on_message = lambda _c, _u, msg: messages.append(json.loads(msg.payload))
    sub.connect(u.hostname or "127.0.0.1", u.port or 1883)
    sub.loop_start()
    try:
        assert subscribed.wait(DEADLINE_S)
        subscribe(client, f"mqtt://{u.hostname}:{u.port or 1883}/{topic}",
                  notification={"endpoint": {"uri": f"mqtt://{u.hostname}:{u.port or 1883}/{topic}"},
                                "format": "concise"})
        assert client.post(f"{BASE}/entities", json=ld(building(1, 3)), headers=LD).status_code == 201
        poll(lambda: messages, "an MQTT message")
        msg = messages[0]
        assert msg["metadata"]["Content-Type"] == "application/json"
        assert msg["body"]["type"] == "Notification" and msg["body"]["triggerReason"] == "entityCreated"
        assert msg["body"]["data"] == [{"id": "urn:ngsi-ld:Building:1", "type": "Building", "floors": 3}]
    finally:
        sub.loop_stop()
        sub.disconnect()


def test_throttling_drops_notifications_inside_the_window(client: TestClient, receiver: Receiver) -> None:
    sid = subscribe(client, receiver.url, throttling=60)
    client.post(f"{BASE}/entities", json=ld(building(1, 3)), headers=LD)
    receiver.wait(1)
    notifier = client.app.state.services.notifier
    notifier.stop()  # nothing is delivered now: the outbox shows what the writes queued
    set_floors(client, 1, 4)
    set_floors(client, 1, 5)
    assert pending(client) == 0
    notifier.start()
    # the window is per subscription: a second one is notified at once
    subscribe(client, receiver.url)
    set_floors(client, 1, 6)
    got = receiver.wait(2)
    assert [n["json"]["subscriptionId"] != sid for n in got] == [False, True]


def test_time_interval_notifies_current_state_on_a_clock(client: TestClient, receiver: Receiver) -> None:
    client.post(f"{BASE}/entities", json=ld(building(1, 3)), headers=LD)
    client.post(f"{BASE}/entities", json=ld(building(2, 30)), headers=LD)
    subscribe(client, receiver.url, timeInterval=1, q="floors<10",
              notification={"endpoint": {"uri": receiver.url}, "format": "keyValues"})
    first = receiver.wait(1)[0]["json"]
    assert first["triggerReason"] == "timeInterval"
    assert [(e["id"], e["floors"]) for e in first["data"]] == [("urn:ngsi-ld:Building:1", 3)]
    set_floors(client, 1, 4)  # a change alone does not notify a periodic subscription ...
    got = receiver.wait(2)  # ... the next tick does, with the state as it is then
    assert got[1]["json"]["data"][0]["floors"] == 4
    sent = [datetime.fromisoformat(n["json"]["notifiedAt"].replace("Z", "+00:00")) for n in got[:2]]
    assert (sent[1] - sent[0]).total_seconds() >= 0.9  # one per interval, not one per change


def test_inactive_and_expired_subscriptions_are_silent(client: TestClient, receiver: Receiver) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat().replace("+00:00", "Z")
    expiring = subscribe(client, receiver.url, expiresAt=soon)
    paused = subscribe(client, receiver.url, isActive=False)
    assert client.get(f"{BASE}/subscriptions/{paused}").json()["status"] == "paused"
    poll(lambda: client.get(f"{BASE}/subscriptions/{expiring}").json()["status"] == "expired", "expiry")
    client.app.state.services.notifier.stop()
    client.post(f"{BASE}/entities", json=ld(building(1, 3)), headers=LD)
    assert pending(client) == 0
    client.app.state.services.notifier.start()
    r = client.patch(f"{BASE}/subscriptions/{paused}", json={"isActive": True})
    assert r.status_code == 204
    set_floors(client, 1, 4)
    got = receiver.wait(1)
    assert got[0]["json"]["subscriptionId"] == paused and len(got) == 1


def test_crud_and_errors(client: TestClient, receiver: Receiver) -> None:
    sid = subscribe(client, receiver.url, id="urn:ngsi-ld:Subscription:town", watchedAttributes=["floors"],
                    q="floors>2", subscriptionName="tall buildings",
                    geoQ={"geometry": "Point", "coordinates": [139.15, 35.25], "georel": "near;maxDistance==2000"})
    assert sid == "urn:ngsi-ld:Subscription:town"
    got = client.get(f"{BASE}/subscriptions/{sid}").json()
    assert got["entities"] == [{"type": "Building"}] and got["watchedAttributes"] == ["floors"]
    assert got["q"] == "floors>2" and got["status"] == "active" and got["isActive"] is True
    assert got["geoQ"]["geoproperty"] == "location"
    assert got["notification"]["format"] == "normalized"
    again = client.post(f"{BASE}/subscriptions", json=ld({"type": "Subscription", "id": sid,
                                                          "watchedAttributes": ["floors"],
                                                          "notification": {"endpoint": {"uri": receiver.url}}}),
                        headers=LD)
    assert again.status_code == 409
    subscribe(client, receiver.url)
    r = client.get(f"{BASE}/subscriptions", params={"count": "true", "limit": 1})
    assert r.headers["NGSILD-Results-Count"] == "2" and len(r.json()) == 1
    assert client.patch(f"{BASE}/subscriptions/{sid}", json=ld({"q": "floors>20", "throttling": 5}),
                        headers=LD).status_code == 204
    got = client.get(f"{BASE}/subscriptions/{sid}").json()
    assert got["q"] == "floors>20" and got["throttling"] == 5 and got["subscriptionName"] == "tall buildings"
    assert client.patch(f"{BASE}/subscriptions/{sid}", json={"id": "urn:x:other"}).status_code == 400
    assert client.patch(f"{BASE}/subscriptions/urn:x:none", json={"q": "a>1"}).status_code == 404
    assert client.delete(f"{BASE}/subscriptions/{sid}").status_code == 204
    assert client.get(f"{BASE}/subscriptions/{sid}").status_code == 404
    assert client.delete(f"{BASE}/subscriptions/{sid}").status_code == 404
    ok_note = {"endpoint": {"uri": receiver.url}}
    for body, field, status in [
        ({"type": "Subscription", "entities": [{"type": "Building"}]}, "notification", 400),
        ({"type": "Sub", "entities": [{"type": "B"}], "notification": ok_note}, "type", 400),
        ({"type": "Subscription", "notification": ok_note}, "entities", 400),
        ({"type": "Subscription", "entities": [{"type": "B"}], "q": "a>>", "notification": ok_note}, "q", 400),
        ({"type": "Subscription", "entities": [{"type": "B"}],
          "notification": {"endpoint": {"uri": "ftp://x/y"}}}, "notification.endpoint.uri", 400),
        ({"type": "Subscription", "entities": [{"type": "B"}], "notification": {**ok_note, "format": "x"}},
         "notification.format", 400),
        ({"type": "Subscription", "entities": [{"type": "B"}], "throttling": -1, "notification": ok_note},
         "throttling", 400),
        ({"type": "Subscription", "entities": [{"type": "B"}], "expiresAt": "2001-01-01T00:00:00Z",
          "notification": ok_note}, "expiresAt", 400),
        ({"type": "Subscription", "entities": [{"type": "B"}], "timeInterval": 10, "throttling": 5,
          "notification": ok_note}, "timeInterval", 400),
        ({"type": "Subscription", "entities": [{"type": "B"}], "timeInterval": 0, "notification": ok_note},
         "timeInterval", 400),
    ]:
        r = client.post(f"{BASE}/subscriptions", json=body)
        assert (r.status_code, r.json().get("field")) == (status, field), r.text
    anonymous = {"Authorization": ""}
    assert client.post(f"{BASE}/subscriptions", json={}, headers=anonymous).status_code == 401
    assert client.delete(f"{BASE}/subscriptions/urn:x:any", headers=anonymous).status_code == 401
    # endpoints may carry credentials (receiverInfo, mqtt://user:pass@): no anonymous reads
    assert client.get(f"{BASE}/subscriptions", headers=anonymous).status_code == 401


def test_status_after_success_and_failure(client: TestClient, receiver: Receiver) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    good = subscribe(client, receiver.url)
    bad = subscribe(client, f"http://127.0.0.1:{closed}/closed")
    client.post(f"{BASE}/entities", json=ld(building(1, 3)), headers=LD)
    receiver.wait(1)

    def notification(sid: str) -> dict[str, Any]:
        return client.get(f"{BASE}/subscriptions/{sid}").json()["notification"]

    ok = poll(lambda: (n := notification(good)).get("timesSent") and n, "status of the good subscription")
    assert ok["status"] == "ok" and ok["timesSent"] == 1 and ok["lastSuccess"] and "lastFailure" not in ok
    failed = poll(lambda: (n := notification(bad)).get("timesFailed", 0) >= 2 and n, "a retried failure")
    assert failed["status"] == "failed" and failed["lastFailure"] and "lastSuccess" not in failed
    assert pending(client) == 1  # still queued for the next retry


def test_pending_notifications_survive_a_restart(client: TestClient, receiver: Receiver, settings: Any) -> None:
    from hotoku.broker.api import create_broker_app

    subscribe(client, receiver.url)
    client.app.state.services.notifier.stop()  # as if the server stopped right after the write
    client.post(f"{BASE}/entities", json=ld(building(1, 3)), headers=LD)
    assert pending(client) == 1 and receiver.received == []
    with TestClient(create_broker_app(settings), headers={"Authorization": f"Bearer {ADMIN}"}) as again:
        got = receiver.wait(1)
        assert got[0]["json"]["data"][0]["id"] == "urn:ngsi-ld:Building:1"
        poll(lambda: pending(again) == 0, "the delivered row to leave the outbox")


def test_two_workers_on_one_database_deliver_each_row_once(client: TestClient, receiver: Receiver,
                                                           settings: Any) -> None:
    from hotoku.broker.api import create_broker_app

    subscribe(client, receiver.url)
    with TestClient(create_broker_app(settings), headers={"Authorization": f"Bearer {ADMIN}"}) as other:
        for i in range(40):
            c = other if i % 2 else client
            assert c.post(f"{BASE}/entities", json=ld(building(i, 1)), headers=LD).status_code == 201
        receiver.wait(40)
        poll(lambda: pending(client) == 0, "an empty outbox")
    ids = [n["json"]["id"] for n in receiver.received]
    assert len(ids) == len(set(ids)) == 40


def test_show_changes_and_sys_attrs(client: TestClient, receiver: Receiver) -> None:
    subscribe(client, receiver.url, notification={"endpoint": {"uri": receiver.url}, "showChanges": True,
                                                  "sysAttrs": True})
    client.post(f"{BASE}/entities", json=ld(building(1, 3)), headers=LD)
    set_floors(client, 1, 4)
    created, updated = (n["json"]["data"][0] for n in receiver.wait(2))
    assert "previousValue" not in created["floors"] and created["floors"]["value"] == 3
    assert updated["floors"]["value"] == 4 and updated["floors"]["previousValue"] == 3
    assert updated["floors"]["modifiedAt"] and updated["modifiedAt"]


def test_matching_rules_of_the_pure_core() -> None:
    from hotoku.broker import ops
    from hotoku.broker.context import ContextResolver
    from hotoku.broker.model import Entity
    from hotoku.broker.subscriptions import compile_sub, parse_subscription, trigger_of

    terms = ContextResolver().resolve(CTX)
    now = "2030-01-01T00:00:00.000Z"

    def sub(**members: Any) -> Any:
        body = {"type": "Subscription", "notification": {"endpoint": {"uri": "http://x/y"}}, **members}
        return compile_sub("", parse_subscription(body, terms))

    def e(eid: str, floors: int | None, *, types: tuple[str, ...] = ("Building",), scope: str | None = None,
          point: list[float] | None = None) -> Entity:
        attrs: dict[str, Any] = {}
        if floors is not None:
            attrs[terms.expand("floors")] = [{"type": "Property", "value": floors}]
        if point:
            attrs[terms.expand("location")] = [{"type": "GeoProperty",
                                                "value": {"type": "Point", "coordinates": point}}]
        return Entity(eid, [terms.expand(t) for t in types], attrs, [scope] if scope else None, now, now)

    a, b = e("urn:x:a", 1), e("urn:x:b", 2, types=("House",))
    created, deleted = ops.create(None, a), ops.delete_entity(a, a.id)
    updated = ops.merge_entity(a, e(a.id, 5, types=()), now)
    dropped = ops.delete_attr(a, a.id, terms.expand("floors"), now)
    either = sub(entities=[{"type": "Building|House"}])
    assert [trigger_of(either, ch, now) for ch in (created, ops.create(None, b), updated, dropped, deleted)] == [
        "entityCreated", "entityCreated", "attributeUpdated", None, None]
    triggers = sub(entities=[{"idPattern": "^urn:x:a$"}], notificationTrigger=["attributeDeleted", "entityDeleted"])
    assert [trigger_of(triggers, ch, now) for ch in (created, updated, dropped, deleted)] == [
        None, None, "attributeDeleted", "entityDeleted"]
    watched_only = sub(watchedAttributes=["name"])
    assert trigger_of(watched_only, created, now) is None
    scoped = sub(entities=[{"type": "Building"}], scopeQ="/odawara/#")
    assert trigger_of(scoped, ops.create(None, e("urn:x:c", 1, scope="/odawara/kamata")), now) == "entityCreated"
    assert trigger_of(scoped, created, now) is None
    near = sub(entities=[{"type": "Building"}],
               geoQ={"geometry": "Point", "coordinates": [139.155, 35.256], "georel": "near;maxDistance==500"})
    assert trigger_of(near, ops.create(None, e("urn:x:d", 1, point=[139.156, 35.256])), now) == "entityCreated"
    assert trigger_of(near, ops.create(None, e("urn:x:f", 1, point=[139.3, 35.256])), now) is None
    expired = sub(entities=[{"type": "Building"}], expiresAt="2029-12-31T00:00:00Z")
    assert trigger_of(expired, created, now) is None
