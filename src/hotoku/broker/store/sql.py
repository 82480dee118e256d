"""The SQL store: one implementation, SQLite (embedded) or PostgreSQL (at scale).

All filtering, sorting and paging happens in SQL. The only Python-side step is
the exact geometry test on the few candidates a bounding-box index returns.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import orjson
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from hotoku.broker import geo
from hotoku.broker.model import NULL_URI, Entity, now_iso
from hotoku.broker.ops import Change
from hotoku.broker.store import sqlparts
from hotoku.broker.store.sqlparts import Filter


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def _loads(v: Any) -> Any:
    return orjson.loads(v) if isinstance(v, (str, bytes)) else v


def row_to_entity(row: Any) -> Entity:
    types = _loads(row.types) if row.types is not None else [row.type]
    return Entity(row.id, types, _loads(row.attrs), _loads(row.scopes) if row.scopes is not None else None,
                  row.created_at, row.modified_at)


ENTITY_COLS = "e.id, e.type, e.types, e.scopes, e.created_at, e.modified_at, e.attrs"


@dataclass
class Page:
    entities: list[Entity]
    count: int | None = None


@dataclass
class OutboxRow:
    tenant: str
    subscription_id: str
    payload: dict[str, Any]
    created_at: str
    next_at: float


INSERT_GEO_SQL = ("INSERT INTO geo_index (tenant, entity_id, attr, minx, miny, maxx, maxy) "
                  "VALUES (:tenant, :entity_id, :attr, :minx, :miny, :maxx, :maxy)")


@dataclass
class ChangeRows:
    """The rows a batch of changes writes, table by table (also what the raw-insert benchmark replays)."""

    upserts: list[dict[str, Any]] = field(default_factory=list)
    deletes: list[dict[str, Any]] = field(default_factory=list)
    geo_del: list[dict[str, Any]] = field(default_factory=list)
    geo: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def _geo_values(e: Entity | None) -> dict[str, Any]:
    """The indexed geometries of an entity: each GeoProperty's default instance value."""
    if e is None:
        return {}
    return {a: i[0]["value"] for a, i in e.attrs.items()
            if i and i[0].get("type") == "GeoProperty" and isinstance(i[0].get("value"), dict)}


def _history_row(tenant: str, eid: str, etype: str, attr: str, inst: dict[str, Any]) -> dict[str, Any]:
    return {"tenant": tenant, "entity_id": eid, "entity_type": etype, "attr": attr,
            "dataset_id": inst.get("datasetId"), "observed_at": inst.get("observedAt"),
            "created_at": inst.get("createdAt") or inst.get("deletedAt"),
            "modified_at": inst.get("modifiedAt") or inst.get("deletedAt"), "instance": dumps(inst)}


def change_rows(tenant: str, changes: list[Change]) -> ChangeRows:
    rows = ChangeRows()
    for ch in changes:
        e = ch.after
        old_geo, new_geo = _geo_values(ch.before), _geo_values(e)
        geo_changed = old_geo != new_geo  # most updates (a meter's reading) leave the index alone
        if old_geo and geo_changed:
            rows.geo_del.append({"tenant": tenant, "id": ch.id})
        if e is None:
            rows.deletes.append({"tenant": tenant, "id": ch.id})
        else:
            rows.upserts.append({
                "tenant": tenant, "id": e.id, "type": e.types[0],
                "types": dumps(e.types) if len(e.types) > 1 else None,
                "scopes": dumps(e.scopes) if e.scopes else None,
                "created_at": e.created_at, "modified_at": e.modified_at, "attrs": dumps(e.attrs),
            })
            if geo_changed:
                for attr, value in new_geo.items():
                    minx, miny, maxx, maxy = geo.bbox(value)
                    rows.geo.append({"tenant": tenant, "entity_id": e.id, "attr": attr,
                                     "minx": minx, "miny": miny, "maxx": maxx, "maxy": maxy})
        last = e or ch.before
        etype = last.types[0] if last and last.types else ""
        for attr, inst in ch.written:
            rows.history.append(_history_row(tenant, ch.id, etype, attr, inst))
        when = e.modified_at if e else now_iso()
        for attr, ds in ch.deleted:
            gone = {"type": "Property", "value": NULL_URI, "deletedAt": when}
            if ds:
                gone["datasetId"] = ds
            rows.history.append(_history_row(tenant, ch.id, etype, attr, gone))
    return rows


@dataclass
class Tx:
    """One write transaction: load (locked) → compute in the core → apply."""

    store: SqlStore
    conn: Connection
    after_commit: list[Any] = field(default_factory=list)

    def load(self, tenant: str, ids: list[str]) -> dict[str, Entity]:
        if not ids:
            return {}
        sql, params = self.store.parts.ids_clause(ids)
        lock = " FOR UPDATE" if self.store.dialect == "postgresql" else ""
        rows = self.conn.execute(
            text(f"SELECT {ENTITY_COLS} FROM entities e WHERE e.tenant = :tenant AND {sql}{lock}"),
            {"tenant": tenant, **params},
        )
        return {r.id: row_to_entity(r) for r in rows}

    def apply(self, tenant: str, changes: list[Change], outbox: list[OutboxRow] = ()) -> None:  # type: ignore[assignment]
        self.store.write_changes(self.conn, tenant, changes)
        if outbox:
            self.store.write_outbox(self.conn, outbox)


class SqlStore:
    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = url
        self.dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
        self.parts = sqlparts.SqlParts(self.dialect)
        self.engine = self._make_engine(url, pool_size)
        self._get_sql = self.parts.driver_sql(
            f"SELECT {ENTITY_COLS} FROM entities e WHERE e.tenant = :t AND e.id = :id")
        self.write_lock = threading.Lock()  # SQLite has one writer; queue writers in-process, not in busy loops

    # --- set-up -----------------------------------------------------------------------------------------
    def _make_engine(self, url: str, pool_size: int) -> Engine:
        if self.dialect == "sqlite":
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                                   pool_size=pool_size, max_overflow=32, poolclass=None)
            if ":memory:" in url or url.endswith("sqlite://"):
                raise ValueError("use a file for SQLite: the broker shares it between threads and processes")

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _rec: Any) -> None:
                from hotoku.broker.qsql import sqlite_regexp

                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.execute("PRAGMA cache_size=-65536")
                cur.close()
                dbapi_conn.create_function("regexp", 2, sqlite_regexp, deterministic=True)

            @event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                mode = "" if conn.get_execution_options().get("readonly") else " IMMEDIATE"
                conn.exec_driver_sql("BEGIN" + mode)

            return engine
        import psycopg.types.json

        psycopg.types.json.set_json_loads(orjson.loads)
        return create_engine(url, pool_size=pool_size, max_overflow=32, pool_pre_ping=False,
                             poolclass=NullPool if pool_size == 0 else None)

    def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(resources.files("hotoku.broker") / "migrations"))
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7263545)")  # one migrator at a time
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def dispose(self) -> None:
        self.engine.dispose()

    # --- transactions ----------------------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[Tx]:
        if self.dialect == "sqlite":
            with self.write_lock, self.engine.begin() as conn:
                yield Tx(self, conn)
        else:
            with self.engine.begin() as conn:
                yield Tx(self, conn)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection. On PostgreSQL in autocommit: no BEGIN/COMMIT round trips per read."""
        opts: dict[str, Any] = {"readonly": True}
        if self.dialect == "postgresql":
            opts["isolation_level"] = "AUTOCOMMIT"
        with self.engine.connect().execution_options(**opts) as conn, conn.begin():
            yield conn

    # --- writing ---------------------------------------------------------------------------------------
    def write_changes(self, conn: Connection, tenant: str, changes: list[Change]) -> None:
        self.write_rows(conn, change_rows(tenant, changes))

    def write_rows(self, conn: Connection, rows: ChangeRows) -> None:
        """Execute one batch of rows: a few executemany calls, whatever the batch size."""
        run = self.parts.driver_sql  # straight to the driver's executemany: no per-row SQLAlchemy work
        if rows.geo_del:
            conn.exec_driver_sql(run("DELETE FROM geo_index WHERE tenant = :tenant AND entity_id = :id"),
                                 rows.geo_del)  # type: ignore[arg-type]
        if rows.deletes:
            conn.exec_driver_sql(run("DELETE FROM entities WHERE tenant = :tenant AND id = :id"),
                                 rows.deletes)  # type: ignore[arg-type]
        if rows.upserts:
            conn.exec_driver_sql(run(self.parts.upsert_entity_sql), rows.upserts)  # type: ignore[arg-type]
        if rows.geo:
            conn.exec_driver_sql(run(INSERT_GEO_SQL), rows.geo)  # type: ignore[arg-type]
        if rows.history:
            conn.exec_driver_sql(run(self.parts.insert_history_sql), rows.history)  # type: ignore[arg-type]

    def write_outbox(self, conn: Connection, rows: list[OutboxRow]) -> None:
        conn.execute(text(self.parts.insert_outbox_sql), [
            {"tenant": r.tenant, "sid": r.subscription_id, "payload": dumps(r.payload),
             "created_at": r.created_at, "next_at": r.next_at} for r in rows])

    def purge_type(self, tenant: str, etype: str) -> int:
        with self.write() as tx:
            ids = [r.id for r in tx.conn.execute(
                text("SELECT id FROM entities WHERE tenant = :t AND type = :ty"), {"t": tenant, "ty": etype})]
            tx.conn.execute(text("DELETE FROM geo_index WHERE tenant = :t AND entity_id IN "
                                 "(SELECT id FROM entities WHERE tenant = :t AND type = :ty)"),
                            {"t": tenant, "ty": etype})
            tx.conn.execute(text("DELETE FROM entities WHERE tenant = :t AND type = :ty"), {"t": tenant, "ty": etype})
        return len(ids)

    # --- reading ---------------------------------------------------------------------------------------
    def get(self, tenant: str, eid: str) -> Entity | None:
        """Retrieve by id: the hottest read, so it goes straight to a pooled driver connection."""
        dbapi = self.engine.raw_connection()
        try:
            if self.dialect == "postgresql":
                dbapi.driver_connection.autocommit = True  # one round trip, not BEGIN + SELECT + ROLLBACK
            cur = dbapi.cursor()
            cur.execute(self._get_sql, {"t": tenant, "id": eid})
            row = cur.fetchone()
            cur.close()
        finally:
            if self.dialect == "postgresql":
                dbapi.driver_connection.autocommit = False
            dbapi.close()
        if row is None:
            return None
        rid, rtype, types, scopes, created, modified, attrs = row
        return Entity(rid, _loads(types) if types is not None else [rtype], _loads(attrs),
                      _loads(scopes) if scopes is not None else None, created, modified)

    def query(self, tenant: str, f: Filter, *, limit: int, offset: int = 0, count: bool = False) -> Page:
        where, params = self.parts.where(tenant, f)
        with self.read() as conn:
            if f.geo is None:
                rows = conn.execute(text(f"SELECT {ENTITY_COLS} FROM entities e WHERE {where} "
                                         f"ORDER BY e.id LIMIT :limit OFFSET :offset"),
                                    {**params, "limit": limit, "offset": offset})
                entities = [row_to_entity(r) for r in rows]
                total = None
                if count:
                    total = conn.execute(text(f"SELECT count(*) FROM entities e WHERE {where}"), params).scalar()
                return Page(entities, total)
            ids = self._geo_ids(conn, f, where, params)
            page_ids = ids[offset:offset + limit]
            entities = []
            if page_ids:
                idsql, idparams = self.parts.ids_clause(page_ids, "e.id")
                rows = conn.execute(text(f"SELECT {ENTITY_COLS} FROM entities e WHERE e.tenant = :tenant "
                                         f"AND {idsql} ORDER BY e.id"), {"tenant": tenant, **idparams})
                entities = [row_to_entity(r) for r in rows]
            return Page(entities, len(ids) if count else None)

    def _geo_ids(self, conn: Connection, f: Filter, where: str, params: dict[str, Any]) -> list[str]:
        q = f.geo
        assert q is not None
        box = geo.query_bbox(q)
        sql, gparams = self.parts.geo_candidates(where, q.geoproperty, box)
        rows = conn.execute(text(sql), {**params, **gparams}).all()
        if not rows:
            return []
        geoms = [_loads(r.geom) for r in rows]
        keep = geo.matches_many(q, geoms)
        return [r.id for r, ok in zip(rows, keep, strict=True) if ok]

    def distinct_types(self, tenant: str) -> list[tuple[str, list[str]]]:
        """(type, attribute IRIs) for every type in use: the /types endpoints."""
        with self.read() as conn:
            rows = conn.execute(text(self.parts.types_sql), {"t": tenant}).all()
        out: dict[str, set[str]] = {}
        for r in rows:
            out.setdefault(r.type, set()).update(_loads(r.keys) or [])
        return sorted((t, sorted(a)) for t, a in out.items())

    def count_by_type(self, tenant: str) -> dict[str, int]:
        with self.read() as conn:
            rows = conn.execute(text("SELECT type, count(*) AS n FROM entities WHERE tenant = :t GROUP BY type"),
                                {"t": tenant}).all()
        return {r.type: r.n for r in rows}

    def attribute_stats(self, tenant: str) -> list[tuple[str, str, list[str], int]]:
        """(attribute IRI, entity type, attribute kinds, entity count): the discovery endpoints."""
        with self.read() as conn:
            rows = conn.execute(text(self.parts.attribute_stats_sql), {"t": tenant}).all()
        return [(r.attr, r.type, sorted(set(_loads(r.kinds))), r.n) for r in rows]

    def tenants(self) -> list[str]:
        with self.read() as conn:
            return [r[0] for r in conn.execute(text("SELECT DISTINCT tenant FROM entities ORDER BY 1"))]
