"""Compile parsed ``q`` / ``scopeQ`` trees to SQL WHERE fragments (SQLite JSON1, PostgreSQL JSONB).

The fragment is one boolean expression evaluated per entity row, mirroring
:func:`hotoku.broker.qlang.evaluate` exactly (same :func:`~hotoku.broker.qlang.locate`,
same typed matching), so queries and subscriptions agree.  User input never
reaches the SQL text: literals, regexes and every JSON path (attribute IRIs,
keys) travel as bind parameters in SQLAlchemy ``text()`` style (``:qp0``...).

Each comparison becomes ``EXISTS`` over a row set of the path's target values
(``v``, plus its JSON type ``t`` on SQLite); guards on the JSON type come first
(inside ``CASE`` on PostgreSQL, whose ``AND`` does not short-circuit) so mixed
types never raise, they just do not match.
"""

from __future__ import annotations

import functools
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from hotoku.broker.errors import InvalidRequest
from hotoku.broker.qlang import (
    ORDERING_OPS,
    And,
    Comparison,
    Exists,
    Location,
    Node,
    Or,
    Range,
    Scalar,
    ScopeNode,
    json_kind,
    literals,
    locate,
)

_SQL_OPS = {"==": "=", ">=": ">=", "<=": "<=", ">": ">", "<": "<"}


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def sqlite_regexp(pattern: str, value: object) -> int:
    """SQLite ``regexp(pattern, value)``: register on every connection (SQLite has none built in)."""
    return int(isinstance(value, str) and _compiled(pattern).search(value) is not None)


class _Dialect(ABC):
    """Per-dialect SQL pieces; ``bind`` adds a parameter and returns its placeholder."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def bind(self, value: Any) -> str:
        n = len(self.params)
        while f"qp{n}" in self.params:
            n += 1
        self.params[f"qp{n}"] = value
        return f":qp{n}"

    @abstractmethod
    def rows(self, col: str, loc: Location) -> str:
        """SELECT of the path's target values as ``v`` (SQLite: and JSON type ``t``)."""

    @abstractmethod
    def exists(self, col: str, loc: Location) -> str:
        """Whether the path resolves at all."""

    @abstractmethod
    def is_kind(self, kind: str) -> str:
        """Whether row ``q`` holds a JSON value of ``kind`` (see :func:`json_kind`)."""

    @abstractmethod
    def compare(self, op: str, literal: Scalar) -> str:
        """Whether row ``q`` has the literal's JSON type and ``q.v op literal``."""

    @abstractmethod
    def matches_regex(self, pattern: str) -> str:
        """Whether row ``q`` is a string matching ``pattern``."""

    @abstractmethod
    def scope_match(self, col: str, regex: str) -> str:
        """Whether any scope in ``col`` matches ``regex``."""


class _Sqlite(_Dialect):
    _KINDS: ClassVar[dict[str, str]] = {
        "number": "q.t IN ('integer', 'real')",
        "string": "q.t = 'text'",
        "bool": "q.t IN ('true', 'false')",
    }

    @staticmethod
    def path(steps: tuple[str | int, ...]) -> str:
        if any(isinstance(s, str) and '"' in s for s in steps):
            raise InvalidRequest("attribute or key names containing '\"' cannot be queried", field="q")
        return "$" + "".join(f"[{s}]" if isinstance(s, int) else f'."{s}"' for s in steps)

    def targets(self, loc: Location) -> str:
        return self.bind(json.dumps([self.path((*loc.base, m, *loc.keys)) for m in loc.members]))

    def rows(self, col: str, loc: Location) -> str:
        # json_each over a scalar yields it (key NULL), over an array its elements, over an
        # object its members: keep only "@value" so compound values never match by member.
        obj, at_value = "WHEN j.type = 'object' THEN", "'$.\"@value\"'"
        sql = (
            f"SELECT CASE {obj} json_extract(j.value, {at_value}) ELSE j.value END AS v, "
            f"CASE {obj} json_type(j.value, {at_value}) ELSE j.type END AS t "
            f"FROM json_each({self.targets(loc)}) AS p, json_each({col}, p.value) AS j "
            "WHERE j.key IS NULL OR typeof(j.key) = 'integer' OR j.key = '@value'"
        )
        if loc.bare:
            lang = self.bind(self.path((*loc.base, "languageMap")))
            sql += (
                f" UNION ALL SELECT j.value, j.type FROM json_tree({col}, {lang}) AS j WHERE j.type = 'text'"
            )
        return sql

    def exists(self, col: str, loc: Location) -> str:
        if loc.bare:
            return f"json_type({col}, {self.bind(self.path(loc.base))}) IS NOT NULL"
        return (
            f"EXISTS (SELECT 1 FROM json_each({self.targets(loc)}) AS p "
            f"WHERE json_type({col}, p.value) IS NOT NULL)"
        )

    def is_kind(self, kind: str) -> str:
        return self._KINDS[kind]

    def compare(self, op: str, literal: Scalar) -> str:
        kind = json_kind(literal)
        if kind == "bool":
            return f"q.t = {self.bind('true' if literal else 'false')}"
        return f"({self._KINDS[kind]} AND q.v {_SQL_OPS[op]} {self.bind(literal)})"

    def matches_regex(self, pattern: str) -> str:
        return f"q.t = 'text' AND regexp({self.bind(pattern)}, q.v)"

    def scope_match(self, col: str, regex: str) -> str:
        return (
            f"EXISTS (SELECT 1 FROM json_each({col}) AS s "
            f"WHERE s.type = 'text' AND regexp({self.bind(regex)}, s.value))"
        )


class _Postgres(_Dialect):
    _TYPES: ClassVar[dict[str, str]] = {"number": "number", "string": "string", "bool": "boolean"}

    def located(self, loc: Location) -> tuple[str, str]:
        """The instance path as a text[] expression, and the ``->`` chain for the JSON keys."""
        base = f"CAST({self.bind([str(s) for s in loc.base])} AS text[])"
        return base, "".join(f" -> CAST({self.bind(k)} AS text)" for k in loc.keys)  # never an index

    def members(self, loc: Location) -> str:
        return f"unnest(CAST({self.bind(list(loc.members))} AS text[])) AS m(k)"

    def rows(self, col: str, loc: Location) -> str:
        base, keys = self.located(loc)
        sql = (
            "SELECT CASE WHEN jsonb_typeof(x.e) = 'object' THEN x.e -> '@value' ELSE x.e END AS v "
            f"FROM {self.members(loc)}, "
            f"jsonb_path_query(({col} #> ({base} || m.k)){keys}, 'lax $[*]') AS x(e)"
        )
        if loc.bare:
            sql += (
                f" UNION ALL SELECT y.e FROM jsonb_path_query({col} #> ({base} || ARRAY['languageMap']), "
                "'strict $.**') AS y(e) WHERE jsonb_typeof(y.e) = 'string'"
            )
        return sql

    def exists(self, col: str, loc: Location) -> str:
        base, keys = self.located(loc)
        if loc.bare:
            return f"({col} #> {base}) IS NOT NULL"
        return (
            f"EXISTS (SELECT 1 FROM {self.members(loc)} WHERE (({col} #> ({base} || m.k)){keys}) IS NOT NULL)"
        )

    def is_kind(self, kind: str) -> str:
        return f"jsonb_typeof(q.v) = '{self._TYPES[kind]}'"

    def compare(self, op: str, literal: Scalar) -> str:
        kind = json_kind(literal)
        if kind == "bool":
            return f"q.v = CAST({self.bind('true' if literal else 'false')} AS jsonb)"
        if kind == "number":
            value = f"CAST(q.v AS numeric) {_SQL_OPS[op]} CAST({self.bind(literal)} AS numeric)"
        else:  # byte order, as in SQLite and Python
            value = f"(q.v #>> '{{}}') COLLATE \"C\" {_SQL_OPS[op]} CAST({self.bind(literal)} AS text)"
        return f"(CASE WHEN {self.is_kind(kind)} THEN {value} ELSE false END)"

    def matches_regex(self, pattern: str) -> str:
        return f"jsonb_typeof(q.v) = 'string' AND (q.v #>> '{{}}') ~ CAST({self.bind(pattern)} AS text)"

    def scope_match(self, col: str, regex: str) -> str:
        values = f"jsonb_array_elements_text(CASE WHEN jsonb_typeof({col}) = 'array' THEN {col} END)"
        return f"EXISTS (SELECT 1 FROM {values} AS s(v) WHERE s.v ~ CAST({self.bind(regex)} AS text))"


def _dialect(dialect: str, params: dict[str, Any]) -> _Dialect:
    if dialect == "sqlite":
        return _Sqlite(params)
    if dialect == "postgresql":
        return _Postgres(params)
    raise ValueError(f"unsupported SQL dialect {dialect!r}")


def _matches(d: _Dialect, value: Scalar | Range | tuple[Scalar, ...]) -> str:
    if isinstance(value, Range):
        return f"({d.compare('>=', value.low)} AND {d.compare('<=', value.high)})"
    return "(" + " OR ".join(d.compare("==", v) for v in literals(value)) + ")"


def _comparison(d: _Dialect, col: str, node: Comparison, expand: Callable[[str], str]) -> str:
    rows = d.rows(col, locate(node.path, expand))

    def any_row(condition: str) -> str:
        return f"EXISTS (SELECT 1 FROM ({rows}) AS q WHERE {condition})"

    if node.op in ("~=", "!~="):
        hit = any_row(d.matches_regex(str(node.value)))
        return hit if node.op == "~=" else f"({any_row(d.is_kind('string'))} AND NOT {hit})"
    if node.op in ORDERING_OPS:
        assert not isinstance(node.value, Range | tuple)  # the parser allows only one literal
        return any_row(d.compare(node.op, node.value))
    hit = any_row(_matches(d, node.value))
    if node.op == "==":
        return hit
    kinds = sorted({str(json_kind(v)) for v in literals(node.value)})
    compatible = " OR ".join(d.is_kind(k) for k in kinds)
    return f"({any_row(compatible)} AND NOT {hit})"


def compile_q(
    node: Node, *, dialect: str, attrs_col: str, expand: Callable[[str], str], params: dict[str, Any]
) -> str:
    """SQL boolean for a parsed q over ``attrs_col``; adds its bind parameters to ``params``."""
    d = _dialect(dialect, params)

    def walk(n: Node) -> str:
        if isinstance(n, And | Or):
            joiner = " AND " if isinstance(n, And) else " OR "
            return "(" + joiner.join(walk(item) for item in n.items) + ")"
        if isinstance(n, Exists):
            found = d.exists(attrs_col, locate(n.path, expand))
            return f"NOT {found}" if n.negated else found
        return _comparison(d, attrs_col, n, expand)

    return walk(node)


def compile_scope_q(node: ScopeNode, *, dialect: str, scopes_col: str, params: dict[str, Any]) -> str:
    """SQL boolean for a parsed scopeQ over ``scopes_col`` (a JSON array of scopes, or NULL)."""
    d = _dialect(dialect, params)

    def walk(n: ScopeNode) -> str:
        if isinstance(n, And | Or):
            joiner = " AND " if isinstance(n, And) else " OR "
            return "(" + joiner.join(walk(item) for item in n.items) + ")"
        return d.scope_match(scopes_col, n.regex)

    return walk(node)
