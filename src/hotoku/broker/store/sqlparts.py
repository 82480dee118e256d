"""SQL text for each backend, and the compilation of a query's filters into SQL.

One place knows the two dialects' differences (JSON1 vs JSONB, R*Tree vs GiST),
so the store itself reads the same for both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from hotoku.broker import qsql
from hotoku.broker.errors import BadRequestData
from hotoku.broker.geo import GeoQuery


@dataclass
class TypeExpr:
    """A parsed type selector: an atom, or ',' / '|' (any of) and ';' (all of)."""

    op: str  # "atom" | "or" | "and"
    value: str = ""
    items: tuple[TypeExpr, ...] = ()


def parse_type_expr(text: str, expand: Callable[[str], str]) -> TypeExpr:
    tokens = re.findall(r"[(),;|]|[^(),;|]+", text)
    pos = 0

    def peek() -> str | None:
        return tokens[pos].strip() if pos < len(tokens) else None

    def parse_or() -> TypeExpr:
        nonlocal pos
        items = [parse_and()]
        while peek() in (",", "|"):
            pos += 1
            items.append(parse_and())
        return items[0] if len(items) == 1 else TypeExpr("or", items=tuple(items))

    def parse_and() -> TypeExpr:
        nonlocal pos
        items = [parse_atom()]
        while peek() == ";":
            pos += 1
            items.append(parse_atom())
        return items[0] if len(items) == 1 else TypeExpr("and", items=tuple(items))

    def parse_atom() -> TypeExpr:
        nonlocal pos
        tok = peek()
        if tok == "(":
            pos += 1
            inner = parse_or()
            if peek() != ")":
                raise BadRequestData("type: missing ')'", field="type")
            pos += 1
            return inner
        if not tok or tok in "),;|":
            raise BadRequestData(f"type: expected a type name at {text!r}", field="type")
        pos += 1
        return TypeExpr("atom", expand(tok))

    expr = parse_or()
    if pos != len(tokens):
        raise BadRequestData(f"type: unexpected {tokens[pos]!r}", field="type")
    return expr


def type_atoms(expr: TypeExpr) -> list[str]:
    return [expr.value] if expr.op == "atom" else [a for i in expr.items for a in type_atoms(i)]


@dataclass
class Filter:
    """Everything that selects entities; all of it becomes SQL."""

    ids: list[str] | None = None
    id_pattern: str | None = None
    types: TypeExpr | None = None
    attrs_any: list[str] | None = None
    q: Any = None
    scope_q: Any = None
    geo: GeoQuery | None = None
    expand: Callable[[str], str] | None = None


class SqlParts:
    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self._driver_cache: dict[str, str] = {}
        pg = dialect == "postgresql"
        j = "CAST(:{} AS jsonb)" if pg else ":{}"
        self.upsert_entity_sql = (
            "INSERT INTO entities (tenant, id, type, types, scopes, created_at, modified_at, attrs) "
            f"VALUES (:tenant, :id, :type, {j.format('types')}, {j.format('scopes')}, :created_at, :modified_at, "
            f"{j.format('attrs')}) ON CONFLICT (tenant, id) DO UPDATE SET type = excluded.type, "
            "types = excluded.types, scopes = excluded.scopes, modified_at = excluded.modified_at, "
            "attrs = excluded.attrs"
        )
        self.insert_history_sql = (
            "INSERT INTO attr_history (tenant, entity_id, entity_type, attr, dataset_id, observed_at, created_at, "
            f"modified_at, instance) VALUES (:tenant, :entity_id, :entity_type, :attr, :dataset_id, :observed_at, "
            f":created_at, :modified_at, {j.format('instance')})"
        )
        self.insert_outbox_sql = (
            "INSERT INTO outbox (tenant, subscription_id, payload, created_at, attempts, next_at, claimed_until) "
            f"VALUES (:tenant, :sid, {j.format('payload')}, :created_at, 0, :next_at, 0)"
        )
        if pg:
            self.types_sql = ("SELECT e.type AS type, jsonb_agg(DISTINCT k) AS keys FROM entities e "
                              "LEFT JOIN LATERAL jsonb_object_keys(e.attrs) k ON true WHERE e.tenant = :t "
                              "GROUP BY e.type")
            self.attribute_stats_sql = ("SELECT k.key AS attr, e.type AS type, "
                                        "jsonb_agg(DISTINCT k.value->0->>'type') AS kinds, count(*) AS n "
                                        "FROM entities e, "
                                        "jsonb_each(e.attrs) k WHERE e.tenant = :t GROUP BY k.key, e.type")
        else:
            self.types_sql = ("SELECT e.type AS type, json_group_array(DISTINCT j.key) AS keys FROM entities e "
                              "LEFT JOIN json_each(e.attrs) j WHERE e.tenant = :t GROUP BY e.type")
            self.attribute_stats_sql = ("SELECT j.key AS attr, e.type AS type, "
                                        "json_group_array(DISTINCT json_extract(j.value, '$[0].type')) AS kinds, "
                                        "count(*) AS n "
                                        "FROM entities e, json_each(e.attrs) j WHERE e.tenant = :t "
                                        "GROUP BY j.key, e.type")

    def driver_sql(self, sql: str) -> str:
        """``:name`` binds in the driver's own style (sqlite3 takes them as they are; psycopg wants %(name)s)."""
        if self.dialect == "sqlite":
            return sql
        cached = self._driver_cache.get(sql)
        if cached is None:
            cached = self._driver_cache[sql] = re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql)
        return cached

    def ids_clause(self, ids: list[str], col: str = "e.id", name: str = "ids") -> tuple[str, dict[str, Any]]:
        if self.dialect == "postgresql":
            return f"{col} = ANY(CAST(:{name} AS text[]))", {name: list(ids)}
        return f"{col} IN (SELECT value FROM json_each(:{name}))", {name: orjson.dumps(list(ids)).decode()}

    def _type_sql(self, expr: TypeExpr, params: dict[str, Any]) -> str:
        if expr.op != "atom":
            joiner = " OR " if expr.op == "or" else " AND "
            return "(" + joiner.join(self._type_sql(i, params) for i in expr.items) + ")"
        name = f"ty{len(params)}"
        params[name] = expr.value
        if self.dialect == "postgresql":
            return f"(e.type = :{name} OR (e.types IS NOT NULL AND jsonb_exists(e.types, :{name})))"
        return (f"(e.type = :{name} OR (e.types IS NOT NULL AND "
                f"EXISTS (SELECT 1 FROM json_each(e.types) WHERE value = :{name})))")

    def where(self, tenant: str, f: Filter) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"tenant": tenant}
        parts = ["e.tenant = :tenant"]
        if f.ids:
            sql, p = self.ids_clause(f.ids, name="fids")
            parts.append(sql)
            params.update(p)
        if f.id_pattern:
            params["idpat"] = f.id_pattern
            parts.append("e.id ~ :idpat" if self.dialect == "postgresql" else "regexp(:idpat, e.id)")
        if f.types is not None:
            atoms = type_atoms(f.types)
            if (f.types.op == "or" and all(i.op == "atom" for i in f.types.items)) or f.types.op == "atom":
                # the common case: any of some types; keep the plain IN so the type index is used
                names = []
                for a in atoms:
                    names.append(f"ty{len(params)}")
                    params[names[-1]] = a
                plain = ", ".join(":" + n for n in names)
                extra = " OR ".join(self._type_sql(TypeExpr("atom", a), params) for a in atoms)
                parts.append(f"(e.type IN ({plain}) OR (e.types IS NOT NULL AND ({extra})))")
            else:
                parts.append(self._type_sql(f.types, params))
        if f.attrs_any:
            ors = []
            for a in f.attrs_any:
                name = f"at{len(params)}"
                params[name] = a if self.dialect == "postgresql" else qsql_path(a)
                ors.append(f"jsonb_exists(e.attrs, :{name})" if self.dialect == "postgresql"
                           else f"json_type(e.attrs, :{name}) IS NOT NULL")
            parts.append("(" + " OR ".join(ors) + ")")
        if f.q is not None:
            assert f.expand is not None
            parts.append(qsql.compile_q(f.q, dialect=self.dialect, attrs_col="e.attrs", expand=f.expand,
                                        params=params))
        if f.scope_q is not None:
            parts.append(qsql.compile_scope_q(f.scope_q, dialect=self.dialect, scopes_col="e.scopes",
                                              params=params))
        return " AND ".join(parts), params

    def geo_candidates(self, where: str, attr: str, box: tuple[float, float, float, float] | None
                       ) -> tuple[str, dict[str, Any]]:
        """Ids and geometries of the entities whose bounding box can match, in id order."""
        params: dict[str, Any] = {"gattr": attr}
        if self.dialect == "postgresql":
            sql = ("SELECT e.id AS id, e.attrs -> :gattr -> 0 -> 'value' AS geom FROM geo_index g "
                   "JOIN entities e ON e.tenant = g.tenant AND e.id = g.entity_id "
                   "WHERE g.tenant = :tenant AND g.attr = :gattr")
            if box:
                sql += (" AND box(point(g.minx, g.miny), point(g.maxx, g.maxy))"
                        " && box(point(:gx1, :gy1), point(:gx2, :gy2))")
        else:
            params["gpath"] = qsql_path(attr) + "[0].value"
            if box:
                # CROSS JOIN fixes the join order: walk the R*Tree first, then look up the few hits
                sql = ("SELECT e.id AS id, json_extract(e.attrs, :gpath) AS geom FROM geo_rtree r "
                       "CROSS JOIN geo_index g ON g.rid = r.rid "
                       "CROSS JOIN entities e ON e.tenant = g.tenant AND e.id = g.entity_id "
                       "WHERE r.minx <= :gx2 AND r.maxx >= :gx1 AND r.miny <= :gy2 AND r.maxy >= :gy1 "
                       "AND g.tenant = :tenant AND g.attr = :gattr")
            else:
                sql = ("SELECT e.id AS id, json_extract(e.attrs, :gpath) AS geom FROM geo_index g "
                       "JOIN entities e ON e.tenant = g.tenant AND e.id = g.entity_id "
                       "WHERE g.tenant = :tenant AND g.attr = :gattr")
        if box:
            params.update(gx1=box[0], gy1=box[1], gx2=box[2], gy2=box[3])
        return f"{sql} AND {where} ORDER BY e.id", params


def qsql_path(iri: str) -> str:
    """A SQLite JSON path naming one top-level member, quoted so IRIs are safe."""
    return '$."' + iri.replace('"', '\\"') + '"'
