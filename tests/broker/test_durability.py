"""An acknowledged write survives a crash: SIGKILL the server mid-stream, restart, count.

A 2xx on a batch upsert is a promise that the data is stored. The only honest test
of that promise is to break the process without warning (no shutdown hooks, no
flush) while writes are in flight, start a new process on the same database, and
look for every entity whose batch was acknowledged. Batches that were in flight
when the server died may or may not be there; acknowledged ones must be, whole.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest

from server import LiveServer

pytestmark = pytest.mark.slow

BASE = "/ngsi-ld/v1"
TYPE = "DurabilityMeter"
BATCH = 200
STREAM_FOR_S = 2.0


def meter_id(batch: int, i: int) -> str:
    return f"urn:ngsi-ld:{TYPE}:b{batch}:e{i}"


def batch_body(n: int) -> list[dict[str, object]]:
    return [{"id": meter_id(n, i), "type": TYPE,
             "batch": {"type": "Property", "value": n},
             "seq": {"type": "Property", "value": i},
             "location": {"type": "GeoProperty",
                          "value": {"type": "Point", "coordinates": [139.1 + i * 1e-4, 35.2 + n * 1e-4]}}}
            for i in range(BATCH)]


@dataclass
class Stream:
    """What the writer saw: batches the server acknowledged, and how the stream ended."""

    acked: list[int] = field(default_factory=list)
    sent: int = 0
    statuses: set[int] = field(default_factory=set)
    ended_by: BaseException | None = None


def stream_upserts(server: LiveServer, out: Stream) -> None:
    """Upsert batch after batch until the server stops answering."""
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=30.0) as client:
        n = 0
        while True:
            out.sent = n + 1
            try:
                r = client.post(f"{BASE}/entityOperations/upsert", json=batch_body(n))
            except httpx.HTTPError as exc:  # the server died under us: this batch is not acknowledged
                out.ended_by = exc
                return
            out.statuses.add(r.status_code)
            if r.is_success:
                out.acked.append(n)
            n += 1


def count(client: httpx.Client, **params: object) -> int:
    r = client.get(f"{BASE}/entities", params={"type": TYPE, "count": "true", "limit": 0, **params})
    assert r.status_code == 200, r.text
    return int(r.headers["NGSILD-Results-Count"])


def test_acknowledged_batches_survive_sigkill(live_server: LiveServer) -> None:
    out = Stream()
    writer = threading.Thread(target=stream_upserts, args=(live_server, out), daemon=True)
    writer.start()
    time.sleep(STREAM_FOR_S)
    assert writer.is_alive(), f"the writer stopped before the crash: {out}"
    live_server.kill()  # SIGKILL: no lifespan shutdown, no connection-pool dispose
    writer.join(timeout=60)  # its in-flight request fails as the socket closes
    assert not writer.is_alive()
    assert out.ended_by is not None, "the stream should have been cut by the crash"
    assert out.acked, f"no batch was acknowledged in {STREAM_FOR_S}s (statuses {out.statuses})"
    assert out.statuses <= {201, 204}, f"unexpected statuses while streaming: {out.statuses}"

    live_server.restart()  # a fresh process on the same database and port
    with httpx.Client(base_url=live_server.url, headers=live_server.headers, timeout=30.0) as client:
        total = count(client)
        # every acknowledged entity is there; at most the in-flight batches (unacknowledged) besides
        assert len(out.acked) * BATCH <= total <= out.sent * BATCH, (len(out.acked), out.sent, total)
        # each acknowledged batch whole: all 200 of its entities, no partial batch
        missing = {n: c for n in out.acked if (c := count(client, q=f"batch=={n}")) != BATCH}
        assert not missing, f"acknowledged batches incomplete after restart (batch: count): {missing}"
        # spot checks: first, middle and last entity of first, middle and last acknowledged batch
        for n in {out.acked[0], out.acked[len(out.acked) // 2], out.acked[-1]}:
            for i in (0, BATCH // 2, BATCH - 1):
                r = client.get(f"{BASE}/entities/{meter_id(n, i)}", params={"options": "keyValues"})
                assert r.status_code == 200, (meter_id(n, i), r.status_code, r.text)
                body = r.json()
                assert (body["batch"], body["seq"]) == (n, i)
                assert body["location"]["coordinates"] == [139.1 + i * 1e-4, 35.2 + n * 1e-4]
        # and the restarted server still takes writes
        r = client.post(f"{BASE}/entityOperations/upsert", json=batch_body(out.sent + 1)[:1])
        assert r.status_code == 201, r.text
