"""Subscription notifications: what a change causes (on the write path) and delivering it (a thread).

Notifications are rows of the ``outbox`` table, written in the transaction of the
change that caused them, so none is lost when the server stops. A delivery thread
claims due rows atomically (several worker processes on one PostgreSQL never send
the same row twice), sends them over HTTP or MQTT, deletes what was delivered and
retries the rest with exponential backoff. Per-subscription status counters are
aggregated in memory and written at most once a second.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import orjson
from sqlalchemy import text

from hotoku.broker.context import ContextResolver
from hotoku.broker.errors import NgsiError
from hotoku.broker.model import now_iso
from hotoku.broker.ops import Change
from hotoku.broker.store.sql import OutboxRow, SqlStore
from hotoku.broker.store.sqlparts import Filter
from hotoku.broker.subscriptions import Sub, build_notification, compile_sub, selects, trigger_of
from hotoku.settings import Settings

log = logging.getLogger("hotoku.broker.notifier")
REFRESH_S = 1.0  # how stale cached status (throttling times) may get
POLL_S = 0.5  # how often to look for rows other processes wrote
STATUS_FLUSH_S = 1.0
BATCH = 100
PERIODIC_TICK_S = 0.25  # how often the clock of timeInterval subscriptions is read
PAGE = 1000
MAX_BACKOFF_S = 60.0


def _loads(v: Any) -> Any:
    return orjson.loads(v) if isinstance(v, str | bytes) else v


@dataclass
class _Status:
    """Status changes of one subscription since the last flush."""

    sent: int = 0
    failed: int = 0
    fields: dict[str, Any] = field(default_factory=dict)  # lastSuccess, lastFailure, status, throttledAt...


class _Mqtt:
    """One connected paho client per broker (and credentials), shared by all deliveries."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def publish(self, uri: str, payload: bytes, info: dict[str, str]) -> None:
        u = urlsplit(uri)
        version = info.get("MQTT-Version", "mqtt3.1.1")
        key = (u.scheme, u.hostname, u.port or (8883 if u.scheme == "mqtts" else 1883), u.username, u.password,
               version)
        msg = self._client(key).publish(unquote(u.path[1:]), payload, qos=int(info.get("MQTT-QoS", "1")))
        msg.wait_for_publish(self.timeout)
        if not msg.is_published():
            raise TimeoutError(f"MQTT broker {u.hostname} did not acknowledge in {self.timeout} s")

    def _client(self, key: tuple[Any, ...]) -> Any:
        import paho.mqtt.client as mqtt

        with self._lock:
            client = self._clients.get(key)
            if client is not None and client.is_connected():
                return client
            if client is not None:
                client.loop_stop()
                client.disconnect()
            scheme, host, port, user, password, version = key
            proto = mqtt.MQTTv5 if version == "mqtt5.0" else mqtt.MQTTv311
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hotoku-{uuid.uuid4().hex[:12]}",
                                 protocol=proto)
            if user:
                client.username_pw_set(unquote(user), unquote(password) if password else None)
            if scheme == "mqtts":
                client.tls_set()
            ready = threading.Event()
            client.on_connect = lambda _c, _u, _f, rc, _p: ready.set() if not rc.is_failure else None
            client.connect(host, port, keepalive=30)
            client.loop_start()
            if not ready.wait(self.timeout):
                client.loop_stop()
                client.disconnect()
                raise ConnectionError(f"could not connect to MQTT broker {host}:{port}")
            self._clients[key] = client
            return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.disconnect()
                client.loop_stop()
            self._clients.clear()


class SubscriptionNotifier:
    """The broker's Notifier: ``outbox_for`` on the write path, ``start``/``wake``/``stop`` for delivery."""

    def __init__(self, store: SqlStore, settings: Settings, contexts: ContextResolver | None = None) -> None:
        from hotoku.broker.api.jsonld_contexts import lookup_stored

        self.store = store
        self.settings = settings
        self.contexts = contexts or ContextResolver(lookup_stored=lookup_stored(store),
                                                    timeout=settings.context_fetch_timeout_s)
        self._cache: dict[str, tuple[float, tuple[Any, ...], list[Sub]]] = {}
        self._cache_lock = threading.Lock()
        self._last_sent: dict[tuple[str, str, str], float] = {}  # throttling and periods, this process's view
        self._status: dict[tuple[str, str], _Status] = {}
        self._status_lock = threading.Lock()
        self._last_flush = 0.0
        self._wake = threading.Event()
        self._local = threading.local()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._http: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._mqtt = _Mqtt(settings.notify_timeout_s)
        self._claim_s = max(60.0, 4 * settings.notify_timeout_s)
        self._next_periodic = 0.0

    # --- the write path ----------------------------------------------------------------------------------
    def invalidate(self, tenant: str | None = None) -> None:
        """Forget cached subscriptions (this process changed them)."""
        with self._cache_lock:
            if tenant is None:
                self._cache.clear()
            else:
                self._cache.pop(tenant, None)

    def subscriptions(self, tenant: str) -> list[Sub]:
        """The tenant's subscriptions, compiled once and cached.

        A one-row query per call tells whether any worker process changed them since they were
        loaded, so a subscription acts on every write that commits after it was created.
        """
        now = time.monotonic()
        with self._cache_lock:
            entry = self._cache.get(tenant)
        with self.store.read() as conn:
            sig = tuple(conn.execute(text("SELECT count(*), max(modified_at) FROM subscriptions WHERE tenant = :t"),
                                     {"t": tenant}).one())
            if entry is not None and entry[1] == sig and (sig[0] == 0 or now - entry[0] < REFRESH_S):
                return entry[2]
            rows = conn.execute(text("SELECT id, body, status, modified_at FROM subscriptions WHERE tenant = :t"),
                                {"t": tenant}).all()
        old = {s.id: s for s in entry[2]} if entry else {}
        subs = []
        for r in rows:
            status = _loads(r.status) or {}
            sub = old.get(r.id)
            if sub is None or sub.modified_at != r.modified_at:
                try:
                    sub = compile_sub(tenant, _loads(r.body), modified_at=r.modified_at, status=status)
                except (NgsiError, KeyError, TypeError, ValueError):
                    log.exception("subscription %s of tenant %r cannot be compiled", r.id, tenant)
                    continue
            sub.status = status
            subs.append(sub)
        with self._cache_lock:
            self._cache[tenant] = (now, sig, subs)
        return subs

    def outbox_for(self, tenant: str, changes: list[Change]) -> list[OutboxRow]:
        if not changes:
            return []
        subs = self.subscriptions(tenant)
        if not subs:
            return []
        now, now_s = now_iso(), time.time()
        rows = []
        for sub in subs:
            try:  # a broken subscription must never fail the write that triggered it
                hits = [(ch, r) for ch in changes if (r := trigger_of(sub, ch, now))]
                if not hits or not self._throttle_ok(sub, now_s):
                    continue
                terms = self._terms(sub)
                body = build_notification(sub, hits, terms, now)
            except Exception:
                log.exception("subscription %s: cannot build a notification", sub.id)
                continue
            payload = {"endpoint": sub.body["notification"]["endpoint"], "link": terms.link_url, "body": body}
            rows.append(OutboxRow(tenant, sub.id, payload, now, now_s))
        if rows:
            self._local.queued = True  # wake() is called by the same thread after the commit
        return rows

    def _terms(self, sub: Sub) -> Any:
        if sub.terms is None:
            try:
                sub.terms = self.contexts.resolve(sub.context)
            except NgsiError as exc:  # notify in core terms rather than not at all
                log.warning("subscription %s: @context unavailable (%s); using the core context", sub.id, exc)
                sub.terms = self.contexts.resolve(None)
        return sub.terms

    def _throttle_ok(self, sub: Sub, now_s: float) -> bool:
        """At most one notification per ``throttling`` seconds; later ones in the window are dropped."""
        return not sub.throttling or self._claim_window(sub, "throttledAt", sub.throttling, now_s)

    def _claim_window(self, sub: Sub, mark: str, seconds: float, now_s: float) -> bool:
        """Take the right to notify ``sub`` now if ``seconds`` passed since ``status[mark]``; one winner
        across worker processes on PostgreSQL (a conditional update), this process on SQLite."""
        key = (sub.tenant, sub.id, mark)
        last = max(self._last_sent.get(key, 0.0), float(sub.status.get(mark) or 0.0))
        if now_s - last < seconds:
            return False
        if self.store.dialect == "postgresql":
            with self.store.engine.begin() as conn:
                won = conn.execute(text(
                    "UPDATE subscriptions SET status = jsonb_set(status, CAST(:path AS text[]), "
                    "to_jsonb(CAST(:now AS double precision))) WHERE tenant = :t AND id = :id AND "
                    "COALESCE(CAST(status->>:mark AS double precision), 0) <= :cutoff"),
                    {"now": now_s, "t": sub.tenant, "id": sub.id, "cutoff": now_s - seconds, "mark": mark,
                     "path": [mark]}).rowcount
            if not won:
                return False
        else:  # SQLite: one process writes; the status is saved with the next flush
            self._note((sub.tenant, sub.id), fields={mark: now_s})
        self._last_sent[key] = now_s
        return True

    def _periodic(self) -> None:
        """timeInterval subscriptions: every interval, the current state of the entities they select."""
        now_s = time.time()
        if now_s < self._next_periodic:
            return
        self._next_periodic = now_s + PERIODIC_TICK_S
        with self.store.read() as conn:
            tenants = [r[0] for r in conn.execute(text("SELECT DISTINCT tenant FROM subscriptions"))]
        now = now_iso()
        for tenant in tenants:
            for sub in self.subscriptions(tenant):
                if not sub.periodic or not sub.live(now) or not self._claim_window(sub, "periodicAt", sub.periodic,
                                                                                   now_s):
                    continue
                entities = self._selected_now(sub)
                if not entities:
                    continue
                terms = self._terms(sub)
                body = build_notification(sub, [(Change(e.id, e, e), "timeInterval") for e in entities], terms, now)
                payload = {"endpoint": sub.body["notification"]["endpoint"], "link": terms.link_url, "body": body}
                with self.store.write() as tx:
                    self.store.write_outbox(tx.conn, [OutboxRow(tenant, sub.id, payload, now, now_s)])

    def _selected_now(self, sub: Sub) -> list[Any]:
        """The entities ``sub`` selects, narrowed in SQL by its selectors' ids, patterns and types."""
        found: dict[str, Any] = {}
        for sel, texpr in zip(sub.body.get("entities") or [{}], sub.types or [None], strict=False):
            f = Filter(ids=[sel["id"]] if "id" in sel else None,
                       id_pattern=sel.get("idPattern") if "id" not in sel else None, types=texpr)
            offset = 0
            while True:
                page = self.store.query(sub.tenant, f, limit=PAGE, offset=offset)
                found.update((e.id, e) for e in page.entities if e.id not in found and selects(sub, e))
                if len(page.entities) < PAGE:
                    break
                offset += PAGE
        return list(found.values())

    # --- delivery thread ----------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._http = httpx.Client(timeout=self.settings.notify_timeout_s)
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="hotoku-notify")
        self._thread = threading.Thread(target=self._run, name="hotoku-notifier", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """After a commit: deliver now, if this thread's transaction queued anything (writes that
        queued nothing must not make the delivery thread look at the outbox)."""
        if getattr(self._local, "queued", False):
            self._local.queued = False
            self._wake.set()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        self._wake.set()
        self._thread.join()
        self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._http is not None:
            self._http.close()
        self._mqtt.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            claimed = 0
            try:
                self._periodic()
                claimed = self._cycle()
                self._flush_status()
            except Exception:
                log.exception("notification delivery failed; retrying in %s s", POLL_S)
            if claimed < BATCH:
                self._wake.wait(POLL_S)
        try:
            self._flush_status(force=True)
        except Exception:
            log.exception("could not save subscription status")

    def _cycle(self) -> int:
        now = time.time()
        params = {"now": now, "until": now + self._claim_s, "n": BATCH}
        with self.store.read() as conn:  # cheap check first: an idle poll takes no write lock
            if conn.execute(text("SELECT 1 FROM outbox WHERE next_at <= :now AND claimed_until < :now LIMIT 1"),
                            params).first() is None:
                return 0
        lock = " FOR UPDATE SKIP LOCKED" if self.store.dialect == "postgresql" else ""
        with self.store.write() as tx:
            rows = tx.conn.execute(text(
                "UPDATE outbox SET claimed_until = :until WHERE seq IN (SELECT seq FROM outbox WHERE "
                f"next_at <= :now AND claimed_until < :now ORDER BY seq LIMIT :n{lock}) "
                "RETURNING seq, tenant, subscription_id, payload, attempts"), params).all()
        groups: dict[tuple[str, str], list[Any]] = {}
        for r in sorted(rows, key=lambda r: r.seq):
            groups.setdefault((r.tenant, r.subscription_id), []).append(r)
        assert self._pool is not None
        results = [f.result() for f in [self._pool.submit(self._deliver_group, g) for g in groups.values()]]
        done = [{"seq": s} for res in results for s in res[0]]
        later = [u for res in results for u in res[1]]
        with self.store.write() as tx:
            if done:
                tx.conn.execute(text("DELETE FROM outbox WHERE seq = :seq"), done)
            if later:
                tx.conn.execute(text("UPDATE outbox SET attempts = :attempts, next_at = :next_at, "
                                     "claimed_until = 0 WHERE seq = :seq"), later)
        return len(rows)

    def _deliver_group(self, rows: list[Any]) -> tuple[list[int], list[dict[str, Any]]]:
        """One subscription's rows in order; after a failure the rest wait for the same retry."""
        done: list[int] = []
        later: list[dict[str, Any]] = []
        deadline = time.time() + self._claim_s / 2
        retry_at: float | None = None
        for r in rows:
            if retry_at is not None or time.time() > deadline:
                later.append({"seq": r.seq, "attempts": r.attempts, "next_at": retry_at or time.time()})
                continue
            key = (r.tenant, r.subscription_id)
            now = now_iso()
            try:
                self._send(r.tenant, _loads(r.payload), now)
            except Exception as exc:
                attempts = r.attempts + 1
                log.info("notification %s for %s failed (attempt %d): %s", r.seq, r.subscription_id, attempts, exc)
                self._note(key, failed=1, fields={"lastNotification": now, "lastFailure": now, "status": "failed"})
                if attempts >= self.settings.notify_max_attempts:
                    done.append(r.seq)  # given up: the status shows the failure
                    continue
                retry_at = time.time() + min(MAX_BACKOFF_S, 2.0 ** (attempts - 1))
                later.append({"seq": r.seq, "attempts": attempts, "next_at": retry_at})
                continue
            self._note(key, sent=1, fields={"lastNotification": now, "lastSuccess": now, "status": "ok"})
            done.append(r.seq)
        return done, later

    def _send(self, tenant: str, payload: dict[str, Any], now: str) -> None:
        ep, body = payload["endpoint"], payload["body"]
        body["notifiedAt"] = now
        accept = ep.get("accept", "application/json")
        headers = {"Content-Type": accept}
        if accept != "application/ld+json" and payload.get("link"):
            headers["Link"] = (f'<{payload["link"]}>; rel="http://www.w3.org/ns/json-ld#context"; '
                               'type="application/ld+json"')
        if tenant:
            headers["NGSILD-Tenant"] = tenant
        headers.update({kv["key"]: kv["value"] for kv in ep.get("receiverInfo", [])})
        uri: str = ep["uri"]
        if uri.startswith("mqtt"):
            info = {kv["key"]: kv["value"] for kv in ep.get("notifierInfo", [])}
            self._mqtt.publish(uri, orjson.dumps({"metadata": headers, "body": body}), info)
            return
        assert self._http is not None
        timeout = min(self.settings.notify_timeout_s, ep["timeout"] / 1000) if ep.get("timeout") else None
        resp = self._http.post(uri, content=orjson.dumps(body), headers=headers,
                               **({"timeout": timeout} if timeout else {}))
        if not 200 <= resp.status_code < 300:
            raise RuntimeError(f"HTTP {resp.status_code} from {uri}")

    # --- status ---------------------------------------------------------------------------------------------
    def _note(self, key: tuple[str, str], *, sent: int = 0, failed: int = 0,
              fields: dict[str, Any] | None = None) -> None:
        with self._status_lock:
            st = self._status.setdefault(key, _Status())
            st.sent += sent + failed  # timesSent counts every attempt, timesFailed the failed ones
            st.failed += failed
            st.fields.update(fields or {})

    def _flush_status(self, *, force: bool = False) -> None:
        """Write the aggregated status changes: one transaction per second, not one per notification."""
        if not force and time.monotonic() - self._last_flush < STATUS_FLUSH_S:
            return
        self._last_flush = time.monotonic()
        with self._status_lock:
            pending, self._status = self._status, {}
        if not pending:
            return
        lock = " FOR UPDATE" if self.store.dialect == "postgresql" else ""
        cast = "CAST(:status AS jsonb)" if self.store.dialect == "postgresql" else ":status"
        with self.store.write() as tx:
            for (tenant, sid), st in sorted(pending.items()):
                row = tx.conn.execute(text(f"SELECT status FROM subscriptions WHERE tenant = :t AND id = :id{lock}"),
                                      {"t": tenant, "id": sid}).first()
                if row is None:
                    continue  # deleted meanwhile
                status = _loads(row.status) or {}
                status["timesSent"] = status.get("timesSent", 0) + st.sent
                status["timesFailed"] = status.get("timesFailed", 0) + st.failed
                for k, v in st.fields.items():
                    status[k] = v if k == "status" or status.get(k) is None else max(status[k], v)
                tx.conn.execute(text(f"UPDATE subscriptions SET status = {cast} WHERE tenant = :t AND id = :id"),
                                {"status": orjson.dumps(status).decode(), "t": tenant, "id": sid})
