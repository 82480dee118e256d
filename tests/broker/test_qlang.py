"""NGSI-LD q / scopeQ: parser, in-memory evaluator, and SQL compiler on real SQLite and PostgreSQL.

Every query is checked three ways (Python evaluator, SQLite, PostgreSQL) against
the same expected ids, so subscriptions and queries can never disagree.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from hotoku.broker.errors import InvalidRequest
from hotoku.broker.qlang import (
    And,
    AttrPath,
    Comparison,
    Exists,
    Or,
    Range,
    ScopeMatch,
    evaluate,
    evaluate_scope,
    parse_q,
    parse_scope_q,
)
from hotoku.broker.qsql import compile_q, compile_scope_q, sqlite_regexp

DEFAULT_CTX = "https://uri.etsi.org/ngsi-ld/default-context/"
PG_URL = os.environ.get("HOTOKU_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def expand(term: str) -> str:
    return term if ":" in term else DEFAULT_CTX + term


def prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


def rel(obj: str, **extra: Any) -> dict[str, Any]:
    return {"type": "Relationship", "object": obj, **extra}


def entity(scopes: list[str] | None, **attrs: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
    """Storage layout: expanded IRI -> list of instances (default instance first)."""
    stored = {expand(k): v if isinstance(v, list) else [v] for k, v in attrs.items()}
    return {"attrs": stored, "scopes": scopes}


ENTITIES: dict[str, dict[str, Any]] = {
    "e1": entity(
        ["/Madrid/Gardens"],
        temperature=prop(
            21.5,
            observedAt="2020-01-01T10:00:00.000Z",
            unitCode="CEL",
            **{expand("accuracy"): prop(0.5)},
        ),
        name=prop("Garden One"),
        status=prop("open"),
    ),
    "e2": entity(
        ["/Madrid/Parks/North", "/Berlin"],
        temperature=prop(30, observedAt="2021-06-01T00:00:00.000Z"),
        name=prop("garden two"),
        owner=rel("urn:ngsi-ld:Person:alice"),
    ),
    "e3": entity(
        ["/Berlin/Mitte"],
        temperature=prop("hot"),
        name={"type": "LanguageProperty", "languageMap": {"en": "Park", "es": "Parque"}},
    ),
    "e4": entity(
        None,
        temperature=prop([10, 40]),
        address=prop({"city": "Madrid", "street": {"name": "Gran Via", "number": 12}}),
    ),
    "e5": entity(
        ["/Madrid"],
        category={"type": "VocabProperty", "vocab": "urn:ngsi-ld:vocab:park"},
        isOpen=prop(True),
        **{"ex:note": prop("compact")},
    ),
    "e6": entity(
        ["/Tokyo/Shibuya/Center"],
        readings={"type": "ListProperty", "valueList": [1, 2, 3]},
        friends={
            "type": "ListRelationship",
            "objectList": ["urn:ngsi-ld:Person:bob", "urn:ngsi-ld:Person:carol"],
        },
    ),
    "e7": entity(
        ["/Madrid/Gardens/Rose"],
        config={"type": "JsonProperty", "json": {"mode": "eco", "level": 3}},
        isOpen=prop(False),
        lastReport=prop({"@type": "DateTime", "@value": "2022-03-01T00:00:00.000Z"}),
    ),
    "e8": entity(
        ["/Madrid/Parks/South"],
        temperature=[prop(15), prop(99, datasetId="urn:ds:1")],
        owner=rel("urn:ngsi-ld:Person:bob", **{expand("since"): prop("2019-05-01")}),
    ),
    "e9": entity([]),
    "e10": entity(
        ["/Berlin/Mitte/Nord"],
        status=prop("closed"),
        name=prop(["alpha", "beta"]),
        temperature=prop(25.0),
    ),
}

# (q, ids it selects)
Q_CASES: list[tuple[str, set[str]]] = [
    ("temperature", {"e1", "e2", "e3", "e4", "e8", "e10"}),
    ("!temperature", {"e5", "e6", "e7", "e9"}),
    ("temperature==30", {"e2"}),
    ("temperature==25", {"e10"}),  # 25.0 stored, integer literal
    ("temperature>20", {"e1", "e2", "e4", "e10"}),  # e4 via array element 40; e3 "hot" never
    ("temperature<=15", {"e4", "e8"}),  # e8: only the default instance counts
    ("temperature==20..30", {"e1", "e2", "e10"}),
    ("temperature!=20..30", {"e4", "e8"}),  # e3 is a string: no numeric values, no match
    ("temperature==15,30", {"e2", "e8"}),
    ("temperature!=15,30", {"e1", "e4", "e10"}),
    ('temperature=="hot"', {"e3"}),
    ('temperature!="hot"', set()),
    ("temperature==99", set()),  # datasetId instance is ignored
    ('name=="Garden One"', {"e1"}),
    ('name~="(?i)^garden"', {"e1", "e2"}),
    ("name~=^Par", {"e3"}),  # LanguageProperty: any language
    ('name=="Parque"', {"e3"}),
    ('name!~="^[a-z]"', {"e1", "e3"}),  # has strings, none lower-case initial
    ('name=="beta"', {"e10"}),
    ('name>"b"', {"e2", "e10"}),  # byte order: "Garden One" < "Park" < "b" < "beta"/"garden two"
    ("temperature.observedAt>=2021-01-01T00:00:00Z", {"e2"}),
    ("temperature.observedAt<2021-01-01T00:00:00+01:00", {"e1"}),
    ('temperature.unitCode=="CEL"', {"e1"}),
    ("temperature.accuracy<1", {"e1"}),
    ("temperature.accuracy", {"e1"}),
    ('owner.since=="2019-05-01"', {"e8"}),
    ("owner==urn:ngsi-ld:Person:alice", {"e2"}),
    ("owner!=urn:ngsi-ld:Person:alice", {"e8"}),
    ("friends==urn:ngsi-ld:Person:carol", {"e6"}),
    ("readings>2", {"e6"}),
    ("category==urn:ngsi-ld:vocab:park", {"e5"}),
    ("isOpen==true", {"e5"}),
    ("isOpen!=true", {"e7"}),
    ("isOpen==1", set()),  # a number never equals a boolean
    ("isOpen>0", set()),
    ('temperature>"a"', {"e3"}),  # only the string value takes part
    ("temperature~=o", {"e3"}),
    ("address>5", set()),  # compound value vs number: no match, no SQL error
    ('address[city]=="Madrid"', {"e4"}),
    ("address[street.number]>=12", {"e4"}),
    ("address[street.name]~=Via$", {"e4"}),
    ("address[zip]", set()),
    ("address[street]", {"e4"}),
    ('address=="Madrid"', set()),  # a compound value does not match by its members
    ('config[mode]=="eco"', {"e7"}),
    ("config[level]==1..5", {"e7"}),
    ("lastReport>2022-01-01T00:00:00Z", {"e7"}),
    ("lastReport==2022-03-01T00:00:00Z", {"e7"}),
    ('ex:note=="compact"', {"e5"}),
    ('temperature>20;(status=="open"|status=="closed")', {"e1", "e10"}),
    ("(temperature<20|(isOpen==false;config[level]==3));!status", {"e4", "e7", "e8"}),
    ("((temperature==30|owner);name)|readings==2", {"e2", "e6"}),
    ('status=="open"|status=="closed";temperature>24', {"e1", "e10"}),  # ; binds tighter
    ('(status=="open"|status=="closed");temperature>24', {"e10"}),
]

SCOPE_CASES: list[tuple[str, set[str]]] = [
    ("/Madrid", {"e5"}),
    ("/Madrid/#", {"e1", "e2", "e5", "e7", "e8"}),
    ("/#", {"e1", "e2", "e3", "e5", "e6", "e7", "e8", "e10"}),
    ("/Madrid/+", {"e1"}),
    ("/Madrid/+/North", {"e2"}),
    ("/+/Mitte/#", {"e3", "e10"}),
    ("/Madrid/Gardens,/Tokyo/#", {"e1", "e6"}),
    ("/Madrid/#;/Berlin", {"e2"}),
    ("(/Berlin,/Tokyo/#);/+/+/#", {"e2", "e6"}),
]


def python_ids(q: str) -> set[str]:
    node = parse_q(q)
    return {eid for eid, e in ENTITIES.items() if evaluate(node, e["attrs"], expand)}


def python_scope_ids(q: str) -> set[str]:
    node = parse_scope_q(q)
    return {eid for eid, e in ENTITIES.items() if evaluate_scope(node, e["scopes"])}


# --- parser ---------------------------------------------------------------------------------


def test_parse_structure() -> None:
    assert parse_q("a.b[c.d]>=-1.5e1;(x|!y)") == And(
        (
            Comparison(AttrPath(("a", "b"), ("c", "d")), ">=", -15.0),
            Or((Exists(AttrPath(("x",))), Exists(AttrPath(("y",)), negated=True))),
        )
    )
    assert parse_q('r!="a".."c"') == Comparison(AttrPath(("r",)), "!=", Range("a", "c"))
    assert parse_q("r==urn:a:1,true,7").value == ("urn:a:1", True, 7)
    a, b, c = (Exists(AttrPath((name,))) for name in "abc")
    assert parse_q("a|b;c") == Or((a, And((b, c))))


@pytest.mark.parametrize(
    ("q", "value"),
    [
        ("t==2020-01-01T01:00:00+02:00", "2019-12-31T23:00:00.000Z"),  # normalised to UTC millis
        ("t==2020-01-01T00:00:00Z", "2020-01-01T00:00:00.000Z"),
        ("t<2020-01-01", "2020-01-01"),
        ("t>12:30:00Z", "12:30:00Z"),
        ('t=="a\\"b"', 'a"b'),
        ("n~=(?i)a(b|c);x", "(?i)a(b|c)"),  # groups may contain | ; the ; after them ends the term
        ('n!~="x|y"', "x|y"),
    ],
)
def test_parse_values(q: str, value: object) -> None:
    node = parse_q(q)
    term = node.items[0] if isinstance(node, And) else node
    assert isinstance(term, Comparison)
    assert term.value == value


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("", "empty query"),
        ("a=1", "unknown operator starting with '=' at position 2"),
        ("a==", "expected a value but found end of input at position 4"),
        ("a==foo", "invalid value 'foo' (strings must be double-quoted) at position 4"),
        ("a>true", "operator '>' needs one number, string or date/time value"),
        ("a<1..3", "operator '<' needs one number"),
        ("a>urn:x:y", "operator '>' needs one number"),
        ('a==1.."z"', "range bounds must be two numbers, strings or date/times at position 5"),
        ("(a==1", "expected ')' but found end of input at position 6"),
        ("a==1)", "unexpected ')' at position 5"),
        ("a[x", "expected ']' but found end of input"),
        ("a[]", "expected JSON key but found ']'"),
        ("a.", "expected attribute name but found end of input"),
        ("a==2020-13-01", "invalid date/time '2020-13-01'"),
        ('a=="open', "unterminated string at position 4"),
        ('a=="\\q"', "invalid string escape"),
        ("a~=(x", "invalid regular expression"),
        ("a~=", "expected a regular expression"),
        ("a==1,", "expected a value but found end of input"),
        ("a;;b", "expected attribute name but found ';' at position 3"),
        ("!(a)", "expected attribute name but found '('"),
    ],
)
def test_parse_errors(q: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_q(q)
    assert info.value.field == "q"
    assert message in info.value.detail


def test_parse_scope_q() -> None:
    assert parse_scope_q("/a/+/b,/c/#;/#") == Or(
        (
            ScopeMatch(("a", "+", "b")),
            And((ScopeMatch(("c",), descendants=True), ScopeMatch((), descendants=True))),
        )
    )


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("Madrid", "expected a scope starting with '/' but found 'M' at position 1"),
        ("/", "expected a scope level but found end of input"),
        ("/a/#/b", "'#' must be the last scope level"),
        ("/a-b", "unexpected '-' at position 3"),
        ("/a,", "expected a scope starting with '/'"),
        ("(/a", "expected ')'"),
    ],
)
def test_parse_scope_errors(q: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_scope_q(q)
    assert info.value.field == "scopeQ"
    assert message in info.value.detail


# --- compiler helpers -----------------------------------------------------------------------


def test_sqlite_regexp() -> None:
    assert sqlite_regexp("^a.c$", "abc") == 1
    assert sqlite_regexp("^a.c$", "abd") == 0
    assert sqlite_regexp("x", None) == 0
    assert sqlite_regexp("1", 1) == 0


def test_bind_names_are_unique_and_values_never_inlined() -> None:
    params: dict[str, Any] = {"qp0": "taken"}
    sql = compile_q(
        parse_q('name=="x\' OR 1=1 --"|temperature>5'),
        dialect="sqlite",
        attrs_col="e.attrs",
        expand=expand,
        params=params,
    )
    sql += compile_scope_q(parse_scope_q("/a"), dialect="sqlite", scopes_col="e.scopes", params=params)
    assert params["qp0"] == "taken"
    assert "x' OR 1=1 --" in params.values()
    assert "OR 1=1" not in sql and DEFAULT_CTX not in sql
    assert all(f":{name}" in sql for name in params if name != "qp0")


def test_unknown_dialect() -> None:
    with pytest.raises(ValueError, match="mysql"):
        compile_q(parse_q("a"), dialect="mysql", attrs_col="attrs", expand=expand, params={})


# --- three-way agreement ----------------------------------------------------------------------


def table_rows() -> list[dict[str, Any]]:
    """ENTITIES as table rows: JSON text, NULL scopes where the entity has none."""
    return [
        {
            "id": eid,
            "attrs": json.dumps(e["attrs"]),
            "scopes": None if e["scopes"] is None else json.dumps(e["scopes"]),
        }
        for eid, e in ENTITIES.items()
    ]


@pytest.fixture(scope="module")
def sqlite_db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.create_function("regexp", 2, sqlite_regexp, deterministic=True)
    conn.execute("CREATE TABLE entities (id TEXT, attrs TEXT, scopes TEXT)")
    conn.executemany("INSERT INTO entities VALUES (:id, :attrs, :scopes)", table_rows())
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def pg_db() -> Iterator[sa.Connection]:
    """A private schema inside one transaction that is never committed: nothing outlives the run."""
    engine = sa.create_engine(
        PG_URL.replace("postgresql://", "postgresql+psycopg://", 1), connect_args={"connect_timeout": 3}
    )
    try:
        conn = engine.connect()
    except sa.exc.OperationalError as exc:
        engine.dispose()
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {exc.orig}")
    schema = f"qlang_test_{uuid.uuid4().hex[:12]}"
    try:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        conn.execute(sa.text(f'SET LOCAL search_path TO "{schema}"'))
        conn.execute(sa.text("CREATE TABLE entities (id text, attrs jsonb, scopes jsonb)"))
        conn.execute(
            sa.text("INSERT INTO entities VALUES (:id, CAST(:attrs AS jsonb), CAST(:scopes AS jsonb))"),
            table_rows(),
        )
        yield conn
    finally:
        conn.rollback()
        conn.close()
        engine.dispose()


Compiler = Callable[[str, dict[str, Any]], str]


def compile_for(dialect: str, scope: bool) -> Compiler:
    if scope:
        return lambda q, params: compile_scope_q(
            parse_scope_q(q), dialect=dialect, scopes_col="e.scopes", params=params
        )
    return lambda q, params: compile_q(
        parse_q(q), dialect=dialect, attrs_col="e.attrs", expand=expand, params=params
    )


def sqlite_ids(conn: sqlite3.Connection, where: Compiler, q: str) -> set[str]:
    params: dict[str, Any] = {}
    sql = f"SELECT e.id FROM entities AS e WHERE {where(q, params)}"
    return {row[0] for row in conn.execute(sql, params)}


def pg_ids(conn: sa.Connection, where: Compiler, q: str) -> set[str]:
    params: dict[str, Any] = {}
    sql = f"SELECT e.id FROM entities AS e WHERE {where(q, params)}"
    return set(conn.execute(sa.text(sql), params).scalars())


@pytest.mark.parametrize(("q", "expected"), Q_CASES, ids=[c[0] for c in Q_CASES])
def test_q_python_and_sqlite(sqlite_db: sqlite3.Connection, q: str, expected: set[str]) -> None:
    assert python_ids(q) == expected
    assert sqlite_ids(sqlite_db, compile_for("sqlite", scope=False), q) == expected


@pytest.mark.postgres
@pytest.mark.parametrize(("q", "expected"), Q_CASES, ids=[c[0] for c in Q_CASES])
def test_q_postgres(pg_db: sa.Connection, q: str, expected: set[str]) -> None:
    assert python_ids(q) == expected
    assert pg_ids(pg_db, compile_for("postgresql", scope=False), q) == expected


@pytest.mark.parametrize(("q", "expected"), SCOPE_CASES, ids=[c[0] for c in SCOPE_CASES])
def test_scope_q_python_and_sqlite(sqlite_db: sqlite3.Connection, q: str, expected: set[str]) -> None:
    assert python_scope_ids(q) == expected
    assert sqlite_ids(sqlite_db, compile_for("sqlite", scope=True), q) == expected


@pytest.mark.postgres
@pytest.mark.parametrize(("q", "expected"), SCOPE_CASES, ids=[c[0] for c in SCOPE_CASES])
def test_scope_q_postgres(pg_db: sa.Connection, q: str, expected: set[str]) -> None:
    assert python_scope_ids(q) == expected
    assert pg_ids(pg_db, compile_for("postgresql", scope=True), q) == expected
