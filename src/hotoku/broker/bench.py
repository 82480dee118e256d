"""``hotoku bench broker``: the figures the platform issue asks for, on both backends.

A real ``hotoku serve`` process is measured over HTTP by a load generator on the
same machine. Goals are printed beside the figures; nothing here is asserted.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

from hotoku.broker import ops
from hotoku.broker.context import ContextResolver
from hotoku.broker.loadgen import build_request, run_load
from hotoku.broker.model import now_iso
from hotoku.broker.normalize import parse_entity
from hotoku.broker.store.sql import SqlStore, change_rows

TOKEN = "bench-admin-token"
TYPE = "EnergyMeter"
# Odawara's town area, about 10 km × 10 km.
LON0, LON1, LAT0, LAT1 = 139.10, 139.21, 35.22, 35.31
ORION_LD_SMALL = {"retrieve_rps": 7700, "patch_rps": 3500}


def log(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def entity(i: int, rng: random.Random) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:{TYPE}:odawara:{i:06d}", "type": TYPE,
        "power": {"type": "Property", "value": round(rng.uniform(0, 50), 2), "unitCode": "KWT",
                  "observedAt": "2030-04-01T00:00:00Z"},
        "status": {"type": "Property", "value": rng.choice(["ok", "ok", "ok", "fault"])},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [
            round(rng.uniform(LON0, LON1), 6), round(rng.uniform(LAT0, LAT1), 6)]}},
    }


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def database(backend: str, pg_url: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            yield f"sqlite:///{Path(d) / 'bench.db'}"
        return
    import psycopg

    schema = "bench_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{pg_url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(pg_url, autocommit=True) as c:
            c.execute(f"DROP SCHEMA {schema} CASCADE")


@contextmanager
def server(db_url: str, workers: int) -> Iterator[int]:
    port = free_port()
    data = tempfile.mkdtemp()
    env = {**os.environ, "HOTOKU_DATABASE_URL": db_url, "HOTOKU_DATA_DIR": data, "HOTOKU_PORT": str(port),
           "HOTOKU_ADMIN_TOKEN": TOKEN, "HOTOKU_WORKERS": str(workers)}
    proc = subprocess.Popen([sys.executable, "-c", "from hotoku.cli import main; main()", "serve"], env=env)
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError("the broker did not start")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def raw_insert_rate(backend: str, pg_url: str, batches: list[list[dict[str, Any]]]) -> float:
    """Entities/s of a plain executemany of exactly the rows hotoku writes, into a fresh database."""
    terms = ContextResolver().resolve(None)
    now = now_iso()
    prepared = [change_rows("", [ops.create(None, parse_entity(e, terms, now=now)) for e in b]) for b in batches]
    with database(backend, pg_url) as url:
        store = SqlStore(url.replace("postgresql://", "postgresql+psycopg://", 1))
        store.migrate()
        parts = store.parts
        sqls = [parts.upsert_entity_sql, "INSERT INTO geo_index (tenant, entity_id, attr, minx, miny, maxx, maxy) "
                "VALUES (:tenant, :entity_id, :attr, :minx, :miny, :maxx, :maxy)", parts.insert_history_sql]
        store.dispose()
        if backend == "sqlite":
            import sqlite3

            conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        else:
            import psycopg

            conn = psycopg.connect(url, autocommit=True)
            sqls = [re.sub(r":(\w+)", r"%(\1)s", s) for s in sqls]
        t0 = time.perf_counter()
        for rows in prepared:
            cur = conn.cursor()
            cur.execute("BEGIN")
            for sql, data in zip(sqls, (rows.upserts, rows.geo, rows.history), strict=True):
                cur.executemany(sql, data)
            cur.execute("COMMIT")
        elapsed = time.perf_counter() - t0
        conn.close()
    return sum(len(b) for b in batches) / elapsed


class Receiver:
    """A minimal HTTP endpoint that timestamps every notification it receives."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrivals: dict[int, float] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.ready = threading.Event()
        self.thread.start()
        self.ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        srv = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()
        srv.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
                body = orjson.loads(await reader.readexactly(length))
                now = time.perf_counter()
                for ent in body.get("data", []):
                    power = ent.get("power")
                    seq = power.get("value") if isinstance(power, dict) else power
                    if isinstance(seq, int):
                        self.arrivals.setdefault(seq, now)
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()

    def stop(self) -> None:
        def shutdown() -> None:
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
            self.loop.call_soon(self.loop.stop)

        self.loop.call_soon_threadsafe(shutdown)
        self.thread.join(5)


def bench_backend(backend: str, *, quick: bool, pg_url: str, progress: bool, workers: int) -> dict[str, Any]:
    n = 10_000 if quick else 100_000
    rng = random.Random(2030)
    ents = [entity(i, rng) for i in range(n)]
    batches = [ents[i:i + 1000] for i in range(0, n, 1000)]
    out: dict[str, Any] = {"entities": n, "workers": workers}
    host = "127.0.0.1"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with database(backend, pg_url) as db_url, server(db_url, workers) as port:
        base = f"http://{host}:{port}/ngsi-ld/v1"
        hp = f"{host}:{port}"
        log(progress, f"[{backend}] upserting {n} entities in batches of 1,000")
        bodies = [orjson.dumps(b) for b in batches]
        ureqs = [build_request("POST", hp, "/ngsi-ld/v1/entityOperations/upsert",
                               {**auth, "Content-Type": "application/json"}, body) for body in bodies]
        # two senders (or one per worker), so one batch's parsing overlaps another's writing
        res = run_load(host, port, lambda i: ureqs[i], concurrency=max(2, workers), total=len(ureqs), max_seconds=600)
        out["upsert_entities_per_s"] = round(n / res.seconds)
        out["upsert_errors"] = res.errors
        log(progress, f"[{backend}] raw executemany of the same rows")
        out["raw_entities_per_s"] = round(raw_insert_rate(backend, pg_url, batches))
        out["upsert_raw_ratio"] = round(out["upsert_entities_per_s"] / out["raw_entities_per_s"], 3)

        ids = [e["id"] for e in ents]
        reqs = [build_request("GET", hp, f"/ngsi-ld/v1/entities/{ids[rng.randrange(n)]}", auth)
                for _ in range(2000)]
        log(progress, f"[{backend}] retrieve by id, 32 clients")
        res = run_load(host, port, lambda i: reqs[i % len(reqs)], concurrency=32, total=5000 if quick else 30000)
        out.update(retrieve_rps=round(res.rps), retrieve_p50_ms=round(res.pct(50), 2),
                   retrieve_p99_ms=round(res.pct(99), 2), retrieve_errors=res.errors)

        log(progress, f"[{backend}] single-attribute PATCH, 32 clients")
        hdr = {**auth, "Content-Type": "application/json"}
        preqs = [build_request("PATCH", hp, f"/ngsi-ld/v1/entities/{ids[rng.randrange(n)]}/attrs/power", hdr,
                               orjson.dumps({"value": round(rng.uniform(0, 50), 2)})) for _ in range(2000)]
        res = run_load(host, port, lambda i: preqs[i % len(preqs)], concurrency=32, total=2000 if quick else 10000)
        out.update(patch_rps=round(res.rps), patch_p99_ms=round(res.pct(99), 2), patch_errors=res.errors)

        log(progress, f"[{backend}] type + q + limit 100")
        qreqs = [build_request("GET", hp, f"/ngsi-ld/v1/entities?type={TYPE}&limit=100&q=power%3E"
                               f"{rng.uniform(0, 45):.1f}%3Bstatus%3D%3D%22ok%22", auth) for _ in range(300)]
        res = run_load(host, port, lambda i: qreqs[i], concurrency=1, total=100 if quick else 300)
        out.update(query_p50_ms=round(res.pct(50), 2), query_p99_ms=round(res.pct(99), 2), query_errors=res.errors)

        log(progress, f"[{backend}] geo-query near 500 m")
        greqs = [build_request("GET", hp, f"/ngsi-ld/v1/entities?type={TYPE}&limit=100&georel=near%3BmaxDistance"
                               f"%3D%3D500&geometry=Point&coordinates=%5B{rng.uniform(LON0, LON1):.5f}%2C"
                               f"{rng.uniform(LAT0, LAT1):.5f}%5D", auth) for _ in range(300)]
        res = run_load(host, port, lambda i: greqs[i], concurrency=1, total=100 if quick else 300)
        out.update(geo_p50_ms=round(res.pct(50), 2), geo_p99_ms=round(res.pct(99), 2), geo_errors=res.errors)

        out.update(bench_notifications(base, hp, host, port, ids, quick=quick, progress=progress, backend=backend))
    return out


def bench_notifications(base: str, hp: str, host: str, port: int, ids: list[str], *, quick: bool,
                        progress: bool, backend: str) -> dict[str, Any]:
    """100 subscriptions, each watching 1 % of the entities; 1,000 updates/s in batches of 100."""
    log(progress, f"[{backend}] notifications: 100 subscriptions, 1,000 updates/s")
    rcv = Receiver()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(headers=auth, timeout=30) as c:
        for k in range(100):
            r = c.post(f"{base}/subscriptions", json={
                "type": "Subscription", "entities": [{"type": TYPE, "idPattern": f".*{k:02d}$"}],
                "watchedAttributes": ["power"],
                "notification": {"attributes": ["power"], "format": "keyValues",
                                 "endpoint": {"uri": f"http://127.0.0.1:{rcv.port}/notify",
                                              "accept": "application/json"}}})
            if r.status_code != 201:
                rcv.stop()
                return {"notify_error": f"subscriptions unavailable: {r.status_code}"}
    seconds = 3 if quick else 10
    rate, per_batch = 1000, 100  # 1,000 attribute updates/s as 10 batch updates of 100 a second
    batches = rate * seconds // per_batch
    hdr = {**auth, "Content-Type": "application/json"}
    sent: dict[int, float] = {}
    rng = random.Random(7)
    targets = [ids[rng.randrange(len(ids))] for _ in range(rate * seconds)]
    t_start = time.perf_counter() + 0.2

    def make(b: int) -> bytes:
        delay = t_start + b * per_batch / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)  # pacing keeps the offered rate at 1,000 updates/s
        seqs = range(b * per_batch, (b + 1) * per_batch)
        now = time.perf_counter()
        for i in seqs:
            sent[i] = now
        body = [{"id": targets[i], "power": {"type": "Property", "value": i}} for i in seqs]
        return build_request("POST", hp, "/ngsi-ld/v1/entityOperations/update", hdr, orjson.dumps(body))

    res = run_load(host, port, make, concurrency=4, total=batches, max_seconds=seconds * 4)
    acked = list(sent)
    due = (res.requests - res.errors) * per_batch
    deadline = time.time() + 30
    while len(rcv.arrivals) < due and time.time() < deadline:
        time.sleep(0.2)
    rcv.stop()
    delays = sorted((rcv.arrivals[i] - sent[i]) * 1000 for i in acked if i in rcv.arrivals)
    p99 = delays[min(len(delays) - 1, int(0.99 * len(delays)))] if delays else float("nan")
    achieved = round(res.requests * per_batch / res.seconds)
    return {"notify_offered_per_s": rate, "notify_achieved_updates_per_s": achieved,
            "notify_due": due, "notify_delivered": len(rcv.arrivals),
            "notify_delivered_ratio": round(len(rcv.arrivals) / due, 4) if due else 0.0,
            "notify_p50_ms": round(delays[len(delays) // 2], 1) if delays else None,
            "notify_p99_ms": round(p99, 1)}


def run_bench(*, backends: list[str], quick: bool, pg_url: str, progress: bool) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for b in backends:
        workers = int(os.environ.get("HOTOKU_BENCH_WORKERS", "1"))
        results[b] = bench_backend(b, quick=quick, pg_url=pg_url, progress=progress, workers=workers)
    return results


ROWS = [
    ("upsert_entities_per_s", "batch upsert, entities/s", "≥ 20,000 (SQLite)"),
    ("raw_entities_per_s", "raw executemany, entities/s", ""),
    ("upsert_raw_ratio", "upsert / raw", "≥ 0.5"),
    ("retrieve_rps", "retrieve by id, req/s (32 clients)", "Orion-LD small: ~7,700"),
    ("retrieve_p50_ms", "retrieve p50, ms", ""),
    ("retrieve_p99_ms", "retrieve p99, ms", ""),
    ("patch_rps", "single-attribute PATCH, req/s", "Orion-LD small: ~3,500"),
    ("query_p50_ms", "type+q+limit 100, p50 ms", ""),
    ("query_p99_ms", "type+q+limit 100, p99 ms", "< 50"),
    ("geo_p50_ms", "near 500 m, p50 ms", ""),
    ("geo_p99_ms", "near 500 m, p99 ms", ""),
    ("notify_achieved_updates_per_s", "updates/s achieved (1,000 offered)", ""),
    ("notify_delivered_ratio", "notifications delivered / due", "1.0"),
    ("notify_p99_ms", "notification delay p99, ms", "< 500"),
]


def format_table(results: dict[str, Any]) -> str:
    backends = list(results)
    head = f"{'figure':<40}" + "".join(f"{b:>14}" for b in backends) + "  goal"
    lines = [head, "-" * len(head)]
    for key, label, goal in ROWS:
        vals = "".join(f"{results[b].get(key, '-')!s:>14}" for b in backends)
        lines.append(f"{label:<40}{vals}  {goal}")
    n = {results[b].get("entities") for b in backends}
    lines.append(f"({', '.join(str(x) for x in n)} entities; load generator on the same machine)")
    return "\n".join(lines)
