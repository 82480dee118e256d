"""NGSI-LD query language (``q``, GS CIM 009 clause 4.9) and scope query (``scopeQ``, 4.19).

Query strings are parsed into small immutable trees.  Two consumers walk the same
tree: :mod:`hotoku.broker.qsql` compiles it to SQL for stored entities, and
:func:`evaluate` / :func:`evaluate_scope` below check an entity held in memory
(subscriptions).  Both share :func:`locate`, so a query and a notification filter
always agree on where an attribute path's values live.

Semantics, in short: a term looks at the default instance (element 0) of the
attribute; its comparable values are the instance's ``value`` / ``object`` /
``vocab`` / ``json`` / ``valueList`` / ``objectList`` (array elements taken one
by one; a ``{"@value": ...}`` object stands for its ``@value``) or, for a
LanguageProperty, every string of its ``languageMap``.  A literal only ever
matches values of its own JSON type; ``!=`` and ``!~=`` hold when the attribute
has values of the literal's type and none of them matches.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from hotoku.broker.errors import InvalidRequest

Scalar = str | int | float | bool

#: Members of an attribute instance that a path segment names directly (not sub-attributes).
RESERVED_MEMBERS = frozenset({"observedAt", "unitCode", "datasetId", "createdAt", "modifiedAt"})
#: Members holding an instance's comparable value, one per attribute type.
TARGET_MEMBERS = ("value", "object", "vocab", "json", "valueList", "objectList")

ORDERING_OPS = (">=", "<=", ">", "<")
_OPERATORS = ("==", "!~=", "!=", "~=", *ORDERING_OPS)  # prefixes after the ops they start
_NAME_EXTRA = frozenset("_-:/#")  # beyond letters/digits: compact and URN-style IRIs
_BARE = re.compile(r'(?:[^;|(),".]|\.(?!\.))*')  # an unquoted value ends at a delimiter or ".."
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"\d{2}:\d{2}:\d{2}(\.\d+)?Z?")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_ORDER = dict(zip(ORDERING_OPS, (operator.ge, operator.le, operator.gt, operator.lt), strict=True))


@dataclass(frozen=True)
class AttrPath:
    """``attr.sub.sub[key.key]`` as written; names are expanded when evaluated."""

    names: tuple[str, ...]
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Range:
    """Inclusive ``low..high``; both bounds have the same JSON type."""

    low: Scalar
    high: Scalar


@dataclass(frozen=True)
class Comparison:
    """``path op value``; for ``~=``/``!~=`` the value is the regex source.

    A tuple value is a list literal (``a,b,c``: any of them).
    """

    path: AttrPath
    op: str
    value: Scalar | Range | tuple[Scalar, ...]


@dataclass(frozen=True)
class Exists:
    """A bare path (``attr``) or, negated, ``!attr``."""

    path: AttrPath
    negated: bool = False


@dataclass(frozen=True)
class And:
    items: tuple[Node | ScopeNode, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node | ScopeNode, ...]


@dataclass(frozen=True)
class ScopeMatch:
    """One scopeQ scope; ``+`` in ``levels`` is any single level, ``descendants`` a trailing ``#``."""

    levels: tuple[str, ...]
    descendants: bool = False

    @property
    def regex(self) -> str:
        """The scope as a regex valid in Python and PostgreSQL alike (levels are word chars)."""
        body = "".join("/[^/]+" if lvl == "+" else "/" + re.escape(lvl) for lvl in self.levels)
        return f"^{body}{'(/.*)?' if self.descendants else ''}$"


Node = Comparison | Exists | And | Or
ScopeNode = ScopeMatch | And | Or


@dataclass(frozen=True)
class Location:
    """Where a path's values live in the stored attrs JSON.

    ``base`` leads to the (sub-)attribute instance; the targets are
    ``base + member + keys`` for each of ``members``.  ``bare`` paths name a
    whole instance: existence is tested on ``base`` and languageMap strings
    are targets too.
    """

    base: tuple[str | int, ...]
    members: tuple[str, ...]
    keys: tuple[str, ...]
    bare: bool


def locate(path: AttrPath, expand: Callable[[str], str]) -> Location:
    """Resolve a path against the storage layout (see module docstring)."""
    first, *subs = path.names
    member = subs.pop() if subs and subs[-1] in RESERVED_MEMBERS else None
    base = (expand(first), 0, *(expand(s) for s in subs))
    if member is not None:
        return Location(base, (member,), path.keys, bare=False)
    if path.keys:
        return Location(base, (*TARGET_MEMBERS, "languageMap"), path.keys, bare=False)
    return Location(base, TARGET_MEMBERS, (), bare=True)


def literals(value: Scalar | Range | tuple[Scalar, ...]) -> tuple[Scalar, ...]:
    """The individual literals of a comparison value (a range's bounds, a list's items)."""
    if isinstance(value, Range):
        return (value.low, value.high)
    return value if isinstance(value, tuple) else (value,)


def json_kind(value: object) -> str | None:
    """The JSON type a comparison matches on: ``number``, ``string``, ``bool`` or None."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else None


class _Parser:
    """Recursive descent shared by q and scopeQ: ``or := and (OR and)*``, ``and := prim (; prim)*``."""

    or_op = "|"

    def __init__(self, text: str, field: str) -> None:
        self.text, self.pos, self.field = text, 0, field

    def error(self, problem: str, pos: int | None = None) -> InvalidRequest:
        at = self.pos if pos is None else pos
        return InvalidRequest(f"Invalid {self.field}: {problem} at position {at + 1}", field=self.field)

    def found(self) -> str:
        return repr(self.text[self.pos]) if self.pos < len(self.text) else "end of input"

    def take(self, token: str) -> bool:
        if self.text.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def skip(self, wanted: Callable[[str], bool]) -> None:
        while self.pos < len(self.text) and wanted(self.text[self.pos]):
            self.pos += 1

    def parse(self) -> Any:
        if not self.text:
            raise self.error("empty query")
        node = self.disjunction()
        if self.pos < len(self.text):
            raise self.error(f"unexpected {self.found()}")
        return node

    def disjunction(self) -> Any:
        return self.chain(self.or_op, self.conjunction, Or)

    def conjunction(self) -> Any:
        return self.chain(";", self.primary, And)

    def chain(self, separator: str, operand: Callable[[], Any], combine: type[And | Or]) -> Any:
        items = [operand()]
        while self.take(separator):
            items.append(operand())
        return items[0] if len(items) == 1 else combine(tuple(items))

    def primary(self) -> Any:
        if not self.take("("):
            return self.term()
        node = self.disjunction()
        if not self.take(")"):
            raise self.error(f"expected ')' but found {self.found()}")
        return node

    def term(self) -> Any:
        raise NotImplementedError


class _QParser(_Parser):
    def term(self) -> Node:
        if self.take("!"):
            return Exists(self.path(), negated=True)
        path = self.path()
        start = self.pos
        op = next((op for op in _OPERATORS if self.take(op)), None)
        if op is None:
            if self.pos < len(self.text) and self.text[self.pos] in "=!<>~":
                raise self.error(f"unknown operator starting with {self.found()}")
            return Exists(path)
        if op in ("~=", "!~="):
            return Comparison(path, op, self.pattern())
        first, cls = self.atom()
        if op in ORDERING_OPS:
            if cls in ("bool", "uri") or self.text.startswith(("..", ","), self.pos):
                raise self.error(f"operator {op!r} needs one number, string or date/time value", start)
            return Comparison(path, op, first)
        if self.take(".."):
            dots = self.pos - 2
            second, cls2 = self.atom()
            if "bool" in (cls, cls2) or "uri" in (cls, cls2) or json_kind(first) != json_kind(second):
                raise self.error("range bounds must be two numbers, strings or date/times", dots)
            return Comparison(path, op, Range(first, second))
        items = [first]
        while self.take(","):
            items.append(self.atom()[0])
        return Comparison(path, op, items[0] if len(items) == 1 else tuple(items))

    def path(self) -> AttrPath:
        names = [self.name("attribute name")]
        while self.take("."):
            names.append(self.name("attribute name"))
        if not self.take("["):
            return AttrPath(tuple(names))
        keys = [self.name("JSON key")]
        while self.take("."):
            keys.append(self.name("JSON key"))
        if not self.take("]"):
            raise self.error(f"expected ']' but found {self.found()}")
        return AttrPath(tuple(names), tuple(keys))

    def name(self, what: str) -> str:
        start = self.pos
        self.skip(lambda c: c.isalnum() or c in _NAME_EXTRA)
        if start == self.pos:
            raise self.error(f"expected {what} but found {self.found()}")
        return self.text[start : self.pos]

    def atom(self) -> tuple[Scalar, str]:
        """One literal and its syntactic class (number, string, datetime, date, time, bool, uri)."""
        start = self.pos
        if self.text.startswith('"', start):
            return self.quoted(), "string"
        bare = _BARE.match(self.text, start)
        token = bare.group() if bare else ""
        self.pos += len(token)
        if not token:
            raise self.error(f"expected a value but found {self.found()}")
        if token in ("true", "false"):
            return token == "true", "bool"
        if m := _NUMBER.fullmatch(token):
            return (float(token) if m.group(1) or m.group(2) else int(token)), "number"
        try:
            if _DATETIME.fullmatch(token):
                stamp = datetime.fromisoformat(token)
                stamp = (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).astimezone(UTC)
                return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z", "datetime"
            if _DATE.fullmatch(token):
                return date.fromisoformat(token).isoformat(), "date"
        except ValueError:
            raise self.error(f"invalid date/time {token!r}", start) from None
        if _TIME.fullmatch(token):
            return token, "time"
        if _URI.fullmatch(token):
            return token, "uri"
        raise self.error(f"invalid value {token!r} (strings must be double-quoted)", start)

    def quoted(self) -> str:
        m = _QUOTED.match(self.text, self.pos)
        if m is None:
            raise self.error("unterminated string")
        try:
            value = json.loads(m.group())
        except json.JSONDecodeError as exc:
            raise self.error(f"invalid string escape ({exc.msg})") from None
        self.pos = m.end()
        return value

    def pattern(self) -> str:
        """A regex: a quoted string, or raw text up to ``;``, ``|`` or ``)`` outside its own groups."""
        start = self.pos
        if self.text.startswith('"', start):
            source = self.quoted()
        else:
            depth, in_class = 0, False
            while self.pos < len(self.text):
                c = self.text[self.pos]
                if c == "\\":
                    self.pos += 1
                elif in_class:
                    in_class = c != "]"
                elif c == "[":
                    in_class = True
                elif c == "(":
                    depth += 1
                elif c == ")" and depth:
                    depth -= 1
                elif not depth and c in ";|)":
                    break
                self.pos += 1
            source = self.text[start : self.pos]
        if not source:
            raise self.error("expected a regular expression", start)
        try:
            re.compile(source)
        except re.error as exc:
            raise self.error(f"invalid regular expression ({exc.msg})", start) from None
        return source


class _ScopeParser(_Parser):
    or_op = ","

    def term(self) -> ScopeMatch:
        if not self.take("/"):
            raise self.error(f"expected a scope starting with '/' but found {self.found()}")
        levels: list[str] = []
        while True:
            if self.take("#"):
                if self.text.startswith("/", self.pos):
                    raise self.error("'#' must be the last scope level")
                return ScopeMatch(tuple(levels), descendants=True)
            start = self.pos
            if not self.take("+"):
                self.skip(lambda c: c.isalnum() or c == "_")
                if start == self.pos:
                    raise self.error(f"expected a scope level but found {self.found()}")
            levels.append(self.text[start : self.pos])
            if not self.take("/"):
                return ScopeMatch(tuple(levels))


def parse_q(text: str) -> Node:
    """Parse an (already percent-decoded) ``q`` string; ``;`` binds tighter than ``|``."""
    return _QParser(text, "q").parse()


def parse_scope_q(text: str) -> ScopeNode:
    """Parse a ``scopeQ`` string; ``;`` (AND) binds tighter than ``,`` (OR)."""
    return _ScopeParser(text, "scopeQ").parse()


_MISSING = object()


def _get(doc: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        if isinstance(doc, list) and isinstance(step, int) and step < len(doc):
            doc = doc[step]
        elif not (isinstance(doc, dict) and isinstance(step, str) and step in doc):
            return _MISSING
        else:
            doc = doc[step]
    return doc


def _strings(doc: Any) -> Iterator[str]:
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict | list):
        for item in doc.values() if isinstance(doc, dict) else doc:
            yield from _strings(item)


def _targets(instance: Any, loc: Location) -> Iterator[Any]:
    for member in loc.members:
        found = _get(instance, (member, *loc.keys))
        for element in found if isinstance(found, list) else (found,):
            if isinstance(element, dict):
                element = element.get("@value", _MISSING)
            if element is not _MISSING:
                yield element
    if loc.bare:
        yield from _strings(_get(instance, ("languageMap",)))


def _equals(value: Scalar | Range | tuple[Scalar, ...], target: Any) -> bool:
    kind = json_kind(target)
    if isinstance(value, Range):
        return kind == json_kind(value.low) and value.low <= target <= value.high
    return any(kind == json_kind(v) and target == v for v in literals(value))


def evaluate(node: Node, attrs: dict[str, Any], expand: Callable[[str], str]) -> bool:
    """Whether an entity's attrs (storage layout: IRI -> list of instances) satisfy ``node``."""
    if isinstance(node, And):
        return all(evaluate(item, attrs, expand) for item in node.items)
    if isinstance(node, Or):
        return any(evaluate(item, attrs, expand) for item in node.items)
    loc = locate(node.path, expand)
    instance = _get(attrs, loc.base)
    if isinstance(node, Exists):
        if loc.bare:
            found = instance is not _MISSING
        else:
            found = any(_get(instance, (m, *loc.keys)) is not _MISSING for m in loc.members)
        return found != node.negated
    targets = list(_targets(instance, loc))
    if node.op in ("~=", "!~="):
        strings = [t for t in targets if isinstance(t, str)]
        hit = any(re.search(str(node.value), s) for s in strings)
        return hit if node.op == "~=" else bool(strings) and not hit
    if node.op in ORDERING_OPS:
        kind = json_kind(node.value)
        return any(json_kind(t) == kind and _ORDER[node.op](t, node.value) for t in targets)
    hit = any(_equals(node.value, t) for t in targets)
    if node.op == "==":
        return hit
    kinds = {json_kind(v) for v in literals(node.value)}
    return not hit and any(json_kind(t) in kinds for t in targets)


def evaluate_scope(node: ScopeNode, scopes: list[str] | None) -> bool:
    """Whether an entity with these scopes satisfies a parsed scopeQ."""
    if isinstance(node, And):
        return all(evaluate_scope(item, scopes) for item in node.items)
    if isinstance(node, Or):
        return any(evaluate_scope(item, scopes) for item in node.items)
    return any(isinstance(s, str) and re.search(node.regex, s) for s in scopes or ())
