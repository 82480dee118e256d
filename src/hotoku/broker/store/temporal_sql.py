"""SQL for the temporal API over ``attr_history``, on SQLite and PostgreSQL.

Selection, per-attribute caps (lastN and the page size, via ROW_NUMBER) and
aggregation (GROUP BY period bucket) all run in SQL, so a long history never
travels to Python in full. The selection filters work on the history itself
(type, id, attrs, time window), so deleted entities keep their past; ``q`` and
``scopeQ`` are the exception: they test the entity's CURRENT state (a join
with ``entities``), since history rows are single attributes, not entities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from hotoku.broker.model import Instance
from hotoku.broker.store.sql import SqlStore, dumps
from hotoku.broker.store.sqlparts import Filter, TypeExpr
from hotoku.broker.temporal import Aggregation, AggRow, HistRow, TemporalQuery, cap_rows

DEFAULT_MAX_INSTANCES = 1000


def _loads(v: Any) -> Any:
    import orjson

    return orjson.loads(v) if isinstance(v, (str, bytes)) else v


@dataclass
class Selection:
    """What a temporal query selects; attribute and type names already expanded."""

    ids: list[str] | None = None
    id_pattern: str | None = None
    types: TypeExpr | None = None
    attrs: list[str] | None = None
    q: Any = None
    scope_q: Any = None
    expand: Callable[[str], str] | None = None
    tq: TemporalQuery = field(default_factory=TemporalQuery)


@dataclass
class HistoryPage:
    rows: dict[str, list[HistRow]]  # by entity id, per attribute oldest first
    content_range: str | None = None  # set when instances were left out (206)


class TemporalSql:
    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.pg = store.dialect == "postgresql"
        self.parts = store.parts

    # --- pieces --------------------------------------------------------------------------------------
    def _type_sql(self, expr: TypeExpr, params: dict[str, Any]) -> str:
        """Types match the type recorded with each history row (the entity's first type)."""
        if expr.op != "atom":
            joiner = " OR " if expr.op == "or" else " AND "
            return "(" + joiner.join(self._type_sql(i, params) for i in expr.items) + ")"
        name = f"h_ty{len(params)}"
        params[name] = expr.value
        return f"h.entity_type = :{name}"

    def _not_deleted(self) -> str:
        return ("NOT jsonb_exists(h.instance, 'deletedAt')" if self.pg
                else "json_extract(h.instance, '$.deletedAt') IS NULL")

    def where(self, tenant: str, sel: Selection, ids: list[str] | None = None) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"tenant": tenant}
        parts = ["h.tenant = :tenant"]
        for name, values in (("h_ids", sel.ids), ("h_page", ids)):
            if values is not None:
                sql, p = self.parts.ids_clause(values, "h.entity_id", name)
                parts.append(sql)
                params.update(p)
        if sel.id_pattern:
            params["h_idpat"] = sel.id_pattern
            parts.append("h.entity_id ~ :h_idpat" if self.pg else "regexp(:h_idpat, h.entity_id)")
        if sel.types is not None:
            parts.append(self._type_sql(sel.types, params))
        if sel.attrs:
            sql, p = self.parts.ids_clause(sel.attrs, "h.attr", "h_attrs")
            parts.append(sql)
            params.update(p)
        tq, col = sel.tq, f"h.{sel.tq.column}"
        if tq.timerel == "before":
            parts.append(f"{col} < :h_at")
        elif tq.timerel == "after":
            parts.append(f"{col} > :h_at")
        elif tq.timerel == "between":
            parts.append(f"{col} >= :h_at AND {col} < :h_end")
            params["h_end"] = tq.end_time_at
        if tq.timerel:
            params["h_at"] = tq.time_at
        if sel.q is not None or sel.scope_q is not None:
            qwhere, qparams = self.parts.where(tenant, Filter(q=sel.q, scope_q=sel.scope_q, expand=sel.expand))
            parts.append(f"h.entity_id IN (SELECT e.id FROM entities e WHERE {qwhere})")
            params.update(qparams)
        return " AND ".join(parts), params

    @staticmethod
    def _tk(tq: TemporalQuery) -> str:
        """Sort key: the time property, or modifiedAt for instances without it (e.g. no observedAt)."""
        return f"COALESCE(h.{tq.column}, h.modified_at)"

    # --- reading -------------------------------------------------------------------------------------
    def entity_ids(self, tenant: str, sel: Selection, *, limit: int, offset: int, count: bool
                   ) -> tuple[list[str], int | None]:
        where, params = self.where(tenant, sel)
        with self.store.read() as conn:
            ids = [r[0] for r in conn.execute(
                text(f"SELECT DISTINCT h.entity_id FROM attr_history h WHERE {where} "
                     "ORDER BY h.entity_id LIMIT :h_limit OFFSET :h_offset"),
                {**params, "h_limit": limit, "h_offset": offset})]
            total = None
            if count:
                total = conn.execute(text(f"SELECT count(DISTINCT h.entity_id) FROM attr_history h WHERE {where}"),
                                     params).scalar()
        return ids, total

    def entity_types(self, tenant: str, ids: list[str]) -> dict[str, list[str]]:
        """Current types where the entity exists, else the type last recorded in its history."""
        if not ids:
            return {}
        idsql, p = self.parts.ids_clause(ids, "entity_id", "h_tids")
        esql, ep = self.parts.ids_clause(ids, "id", "h_eids")
        with self.store.read() as conn:
            out = {r.entity_id: [r.entity_type] for r in conn.execute(text(
                "SELECT entity_id, entity_type FROM attr_history WHERE seq IN (SELECT max(seq) FROM attr_history "
                f"WHERE tenant = :t AND {idsql} GROUP BY entity_id)"), {"t": tenant, **p})}
            for r in conn.execute(text(f"SELECT id, type, types FROM entities WHERE tenant = :t AND {esql}"),
                                  {"t": tenant, **ep}):
                out[r.id] = _loads(r.types) if r.types is not None else [r.type]
        return out

    def history(self, tenant: str, sel: Selection, ids: list[str], cap: int) -> HistoryPage:
        """The instances of the page's entities: lastN and ``cap`` per attribute, oldest first."""
        if not ids:
            return HistoryPage({})
        tq = sel.tq
        where, params = self.where(tenant, sel, ids)
        tk = self._tk(tq)
        desc = " DESC" if tq.last_n is not None else ""
        n = min(tq.last_n, cap + 1) if tq.last_n is not None else cap + 1
        sql = (f"SELECT seq, entity_id, attr, dataset_id, tv, tk, instance FROM (SELECT h.seq, h.entity_id, h.attr, "
               f"h.dataset_id, h.{tq.column} AS tv, {tk} AS tk, h.instance, ROW_NUMBER() OVER (PARTITION BY "
               f"h.entity_id, h.attr ORDER BY {tk}{desc}, h.seq{desc}) AS rn FROM attr_history h WHERE {where}) x "
               "WHERE rn <= :h_n ORDER BY entity_id, attr, rn")
        groups: dict[tuple[str, str], list[HistRow]] = {}
        with self.store.read() as conn:
            for r in conn.execute(text(sql), {**params, "h_n": n}):
                groups.setdefault((r.entity_id, r.attr), []).append(
                    HistRow(r.seq, r.entity_id, r.attr, r.dataset_id, r.tv, r.tk, _loads(r.instance)))
        kept, content_range = cap_rows(groups, cap, tq)
        out: dict[str, list[HistRow]] = {}
        for (eid, _attr), rows in kept.items():
            out.setdefault(eid, []).extend(rows)
        return HistoryPage(out, content_range)

    def _bucket_sql(self, tk: str, period_ms: int) -> str:
        if period_ms == 0:
            return "0"
        if self.pg:
            return (f"CAST(ROUND(EXTRACT(EPOCH FROM (CAST({tk} AS timestamptz) - CAST(:h_start AS timestamptz)))"
                    " * 1000) AS bigint) / CAST(:h_pms AS bigint)")
        return f"CAST(ROUND((julianday({tk}) - julianday(:h_start)) * 86400000.0) AS INTEGER) / :h_pms"

    def aggregate(self, tenant: str, sel: Selection, ids: list[str], agg: Aggregation
                  ) -> tuple[list[AggRow], str, str]:
        """Per (entity, attribute, datasetId, period): counts, sums, extremes. Returns rows and the range."""
        tq = sel.tq
        if not ids:
            return [], tq.time_at or "", tq.end_time_at or ""
        where, params = self.where(tenant, sel, ids)
        where += " AND " + self._not_deleted()
        tk = self._tk(tq)
        if self.pg:
            num = ("CASE WHEN jsonb_typeof(h.instance->'value') = 'number' "
                   "THEN CAST(h.instance->>'value' AS double precision) END")
            anyval = "COALESCE(h.instance->'value', h.instance->'object')"
        else:
            num = ("CASE WHEN json_type(h.instance, '$.value') IN ('integer', 'real') "
                   "THEN json_extract(h.instance, '$.value') END")
            anyval = "COALESCE(json_extract(h.instance, '$.value'), json_extract(h.instance, '$.object'))"
        with self.store.read() as conn:
            lo, hi = conn.execute(text(f"SELECT min({tk}), max({tk}) FROM attr_history h WHERE {where}"),
                                  params).one()
            if lo is None:
                return [], tq.time_at or "", tq.end_time_at or ""
            start = tq.time_at if tq.timerel in ("after", "between") else lo
            end = tq.end_time_at if tq.timerel == "between" else tq.time_at if tq.timerel == "before" else hi
            sql = (f"SELECT h.entity_id AS entity_id, h.attr AS attr, h.dataset_id AS dataset_id, "
                   f"{self._bucket_sql(tk, agg.period_ms)} AS b, count(*) AS total, "
                   f"count(DISTINCT {anyval}) AS distinct_n, count({num}) AS n, sum({num}) AS s, avg({num}) AS a, "
                   f"min({num}) AS mn, max({num}) AS mx, sum(({num}) * ({num})) AS sq "
                   f"FROM attr_history h WHERE {where} GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4")
            rows = conn.execute(text(sql), {**params, "h_start": start, "h_pms": agg.period_ms}).all()
        out = [AggRow(r.entity_id, r.attr, r.dataset_id, int(r.b), {
            "total": r.total, "distinct": r.distinct_n, "n": r.n, "sum": r.s, "avg": r.a, "min": r.mn,
            "max": r.mx, "sumsq": r.sq}) for r in rows]
        return out, start, end

    # --- provision -----------------------------------------------------------------------------------
    def entity_type(self, conn: Connection, tenant: str, eid: str) -> str | None:
        """The type last recorded for ``eid``, or None when it has no history (no temporal entity)."""
        row = conn.execute(text("SELECT entity_type FROM attr_history WHERE tenant = :t AND entity_id = :id "
                                "ORDER BY seq DESC LIMIT 1"), {"t": tenant, "id": eid}).first()
        return row[0] if row else None

    def insert_instances(self, conn: Connection, tenant: str, eid: str, etype: str,
                         items: list[tuple[str, Instance]]) -> None:
        if not items:
            return
        conn.execute(text(self.parts.insert_history_sql), [
            {"tenant": tenant, "entity_id": eid, "entity_type": etype, "attr": attr,
             "dataset_id": inst.get("datasetId"), "observed_at": inst.get("observedAt"),
             "created_at": inst["createdAt"], "modified_at": inst["modifiedAt"], "instance": dumps(inst)}
            for attr, inst in items])

    def modify_instance(self, conn: Connection, tenant: str, eid: str, attr: str, seq: int,
                        fn: Callable[[Instance], Instance]) -> bool:
        """Replace one instance by ``fn(old)``; False when there is no such instance."""
        lock = " FOR UPDATE" if self.pg else ""
        row = conn.execute(text("SELECT instance FROM attr_history WHERE seq = :seq AND tenant = :t AND "
                                f"entity_id = :id AND attr = :attr{lock}"),
                           {"seq": seq, "t": tenant, "id": eid, "attr": attr}).first()
        if row is None:
            return False
        new = fn(_loads(row.instance))
        j = "CAST(:instance AS jsonb)" if self.pg else ":instance"
        conn.execute(text(f"UPDATE attr_history SET instance = {j}, dataset_id = :ds, observed_at = :obs, "
                          "modified_at = :mod WHERE seq = :seq"),
                     {"instance": dumps(new), "ds": new.get("datasetId"), "obs": new.get("observedAt"),
                      "mod": new.get("modifiedAt"), "seq": seq})
        return True

    def delete_instance(self, conn: Connection, tenant: str, eid: str, attr: str, seq: int) -> bool:
        res = conn.execute(text("DELETE FROM attr_history WHERE seq = :seq AND tenant = :t AND entity_id = :id "
                                "AND attr = :attr"), {"seq": seq, "t": tenant, "id": eid, "attr": attr})
        return res.rowcount > 0

    def delete_attr(self, conn: Connection, tenant: str, eid: str, attr: str, *, dataset_id: str | None,
                    delete_all: bool) -> int:
        sql = "DELETE FROM attr_history WHERE tenant = :t AND entity_id = :id AND attr = :attr"
        params: dict[str, Any] = {"t": tenant, "id": eid, "attr": attr}
        if not delete_all:
            if dataset_id is None:
                sql += " AND dataset_id IS NULL"
            else:
                sql += " AND dataset_id = :ds"
                params["ds"] = dataset_id
        return conn.execute(text(sql), params).rowcount

    def delete_entity(self, conn: Connection, tenant: str, eid: str) -> int:
        return conn.execute(text("DELETE FROM attr_history WHERE tenant = :t AND entity_id = :id"),
                            {"t": tenant, "id": eid}).rowcount
