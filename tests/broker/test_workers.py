"""Several API worker processes on one PostgreSQL stay correct."""

from __future__ import annotations

import queue
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server import LiveServer, NotificationReceiver

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
EID = "urn:ngsi-ld:Battery:odawara:community-1"


@pytest.fixture
def workers(pg_url: str, tmp_path: Path):
    server = LiveServer(pg_url, tmp_path / "data", "workers-token", extra_env={"HOTOKU_WORKERS": "3"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_concurrent_patches_lose_no_update(workers: LiveServer) -> None:
    h = workers.headers
    base = f"{workers.url}/ngsi-ld/v1"
    httpx.post(f"{base}/entities", json={"id": EID, "type": "Battery", "a0": 0}, headers=h).raise_for_status()

    def append(k: int) -> int:
        # each request adds its own attribute: a lost update would drop someone else's
        with httpx.Client(headers=h, timeout=30) as c:
            return c.post(f"{base}/entities/{EID}/attrs", json={f"a{k}": k}).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(append, range(1, 201)))
    assert set(codes) == {204}
    got = httpx.get(f"{base}/entities/{EID}", params={"options": "keyValues"}, headers=h).json()
    assert {k: v for k, v in got.items() if k.startswith("a")} == {f"a{k}": k for k in range(201)}


def test_each_notification_delivered_once(workers: LiveServer) -> None:
    h = workers.headers
    base = f"{workers.url}/ngsi-ld/v1"
    with NotificationReceiver() as rcv:
        httpx.post(f"{base}/entities", json={"id": EID, "type": "Battery", "soc": 0.0}, headers=h).raise_for_status()
        httpx.post(f"{base}/subscriptions", headers=h, json={
            "type": "Subscription", "entities": [{"type": "Battery"}], "watchedAttributes": ["soc"],
            "notification": {"format": "keyValues", "attributes": ["soc"], "endpoint": {"uri": rcv.url}}},
        ).raise_for_status()
        with httpx.Client(headers=h, timeout=30) as c:
            for i in range(1, 101):
                r = c.patch(f"{base}/entities/{EID}/attrs/soc", json={"value": i / 100})
                assert r.status_code == 204
        seen: list[float] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(seen) < 100:
            try:
                _h, body = rcv.received.get(timeout=0.5)
            except queue.Empty:
                continue
            seen += [e["soc"] for e in body["data"]]
        time.sleep(1.0)  # a duplicate would arrive within the delivery loop's next rounds
        while not rcv.received.empty():
            seen += [e["soc"] for e in rcv.received.get()[1]["data"]]
    assert sorted(seen) == [i / 100 for i in range(1, 101)]
