"""Subscriptions (GS CIM 009 clauses 5.2.12, 5.8, 5.11) as pure functions.

A subscription is stored with every attribute and type name expanded, so that
matching a change is plain set and dict work with no JSON-LD processing on the
write path; the subscriber's ``@context`` is kept beside it to compact the
notifications (and the subscription itself) back into the subscriber's terms.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from hotoku.broker import geo, qlang
from hotoku.broker.errors import BadRequestData, NgsiError
from hotoku.broker.model import TARGET_MEMBER, Entity
from hotoku.broker.normalize import Terms, check_datetime, check_uri
from hotoku.broker.ops import Change
from hotoku.broker.render import View, render_entity, render_feature
from hotoku.broker.store.sqlparts import TypeExpr, parse_type_expr

FORMATS = ("normalized", "concise", "keyValues")
TRIGGERS = ("entityCreated", "entityUpdated", "entityDeleted", "attributeCreated", "attributeUpdated",
            "attributeDeleted")
#: Clause 5.2.12 defaults to attributeCreated + attributeUpdated; entityCreated is added so that a
#: new entity without attributes notifies too.
DEFAULT_TRIGGERS = frozenset({"entityCreated", "attributeCreated", "attributeUpdated"})
ACCEPTS = ("application/json", "application/ld+json", "application/geo+json")
SCHEMES = ("http", "https", "mqtt", "mqtts")
STATUS_FIELDS = ("timesSent", "timesFailed", "lastNotification", "lastSuccess", "lastFailure")


def bad(field_name: str, problem: str) -> BadRequestData:
    return BadRequestData(f"{field_name}: {problem}", field=field_name)


def new_id() -> str:
    return f"urn:ngsi-ld:Subscription:{uuid.uuid4()}"


# --- parsing ---------------------------------------------------------------------------------------------
def _names(raw: Any, field_name: str, terms: Terms) -> list[str]:
    if not isinstance(raw, list) or not raw or not all(isinstance(a, str) and a for a in raw):
        raise bad(field_name, "must be a non-empty list of attribute names")
    return list(dict.fromkeys(terms.expand(a) for a in raw))


def _number(raw: Any, field_name: str, unit: str = "seconds") -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        raise bad(field_name, f"must be a positive number of {unit}")
    return raw


def _key_values(raw: Any, field_name: str) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not all(
            isinstance(kv, dict) and isinstance(kv.get("key"), str) and kv["key"]
            and isinstance(kv.get("value"), str) for kv in raw):
        raise bad(field_name, "must be a list of {\"key\": string, \"value\": string}")
    return [{"key": kv["key"], "value": kv["value"]} for kv in raw]


def _entities(raw: Any, terms: Terms) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise bad("entities", "must be a non-empty list of {id | idPattern | type}")
    out = []
    for i, sel in enumerate(raw):
        where = f"entities[{i}]"
        if not isinstance(sel, dict) or not {"id", "idPattern", "type"} & set(sel):
            raise bad(where, "must be an object with id, idPattern or type")
        item: dict[str, str] = {}
        if "id" in sel:
            item["id"] = check_uri(sel["id"], f"{where}.id")
        if "idPattern" in sel:
            try:
                re.compile(sel["idPattern"])
            except (re.error, TypeError) as exc:
                raise bad(f"{where}.idPattern", f"not a valid regular expression: {exc}") from None
            item["idPattern"] = sel["idPattern"]
        if "type" in sel:
            if not isinstance(sel["type"], str) or not sel["type"]:
                raise bad(f"{where}.type", "must be a non-empty string")
            expr = parse_type_expr(sel["type"], terms.expand)
            item["type"] = sel["type"] if expr.op != "atom" else expr.value
            if expr.op != "atom":  # a type expression: keep each name's IRI beside the text
                item["typeTerms"] = {t: terms.expand(t) for t in re.findall(r"[^(),;|\s]+", sel["type"])}
        out.append(item)
    return out


def _q_terms(node: Any, terms: Terms, out: dict[str, str]) -> dict[str, str]:
    """Every attribute name a q tree uses, with its IRI: q is evaluated later without the context."""
    if isinstance(node, qlang.And | qlang.Or):
        for item in node.items:
            _q_terms(item, terms, out)
    else:
        for name in node.path.names:
            if name not in qlang.RESERVED_MEMBERS:
                out[name] = terms.expand(name)
    return out


def _geo_q(raw: Any, terms: Terms) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise bad("geoQ", "must be an object with geometry, coordinates and georel")
    try:
        q = geo.parse_geo_query(raw.get("georel"), raw.get("geometry"), raw.get("coordinates"),
                                raw.get("geoproperty"))
    except BadRequestData as exc:
        raise bad(f"geoQ.{exc.field}", exc.detail) from None
    if q is None:
        raise bad("geoQ", "must give georel, geometry and coordinates")
    out = {"georel": raw["georel"], "geometry": q.geometry["type"], "coordinates": q.geometry["coordinates"],
           "geoproperty": terms.expand(q.geoproperty)}
    return out


def _endpoint(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("uri"), str):
        raise bad("notification.endpoint", "must be an object with a uri")
    uri = raw["uri"]
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme not in SCHEMES or not uri.split("://", 1)[1].split("/", 1)[0]:
        raise bad("notification.endpoint.uri", f"must be an http(s):// or mqtt(s):// URI, got {uri!r}")
    if scheme.startswith("mqtt") and not uri.split("://", 1)[1].partition("/")[2]:
        raise bad("notification.endpoint.uri", "an mqtt(s) URI needs a topic as its path")
    out: dict[str, Any] = {"uri": uri, "accept": raw.get("accept", "application/json")}
    if out["accept"] not in ACCEPTS:
        raise bad("notification.endpoint.accept", f"must be one of {', '.join(ACCEPTS)}")
    for name in ("receiverInfo", "notifierInfo"):
        if name in raw:
            out[name] = _key_values(raw[name], f"notification.endpoint.{name}")
    for name in ("timeout", "cooldown"):
        if name in raw:
            out[name] = _number(raw[name], f"notification.endpoint.{name}", "milliseconds")
    return out


def _notification(raw: Any, terms: Terms, *, partial: bool) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise bad("notification", "must be an object")
    out: dict[str, Any] = {}
    if "endpoint" in raw or not partial:
        out["endpoint"] = _endpoint(raw.get("endpoint"))
    if "attributes" in raw:
        out["attributes"] = _names(raw["attributes"], "notification.attributes", terms)
    if "format" in raw or not partial:
        out["format"] = raw.get("format", "normalized")
        if out["format"] not in FORMATS:
            raise bad("notification.format", f"must be one of {', '.join(FORMATS)}")
    for name in ("sysAttrs", "showChanges"):
        if name in raw:
            if not isinstance(raw[name], bool):
                raise bad(f"notification.{name}", "must be true or false")
            out[name] = raw[name]
    return out


def _has_nul(v: Any) -> bool:
    if isinstance(v, str):
        return "\x00" in v
    if isinstance(v, dict):
        return any(_has_nul(k) or _has_nul(x) for k, x in v.items())
    return isinstance(v, list) and any(_has_nul(x) for x in v)


def parse_subscription(raw: Any, terms: Terms, *, partial: bool = False) -> dict[str, Any]:
    """A payload → the stored (expanded) form; ``partial`` for PATCH fragments. JSON null removes a member."""
    if not isinstance(raw, dict):
        raise bad("body", "a subscription must be a JSON object")
    if _has_nul(raw):  # PostgreSQL's JSONB cannot hold it
        raise bad("body", "must not contain NUL characters")
    out: dict[str, Any] = {}
    if (not partial or "type" in raw) and raw.get("type") != "Subscription":
        raise bad("type", "must be \"Subscription\"")
    if "id" in raw:
        out["id"] = check_uri(raw["id"], "id")
    elif not partial:
        out["id"] = new_id()
    if not partial:
        out["type"] = "Subscription"
        out["@context"] = getattr(terms, "context_value", None)
    parsers: dict[str, Any] = {
        "subscriptionName": lambda v: _typed(v, "subscriptionName", str),
        "description": lambda v: _typed(v, "description", str),
        "entities": lambda v: _entities(v, terms),
        "watchedAttributes": lambda v: _names(v, "watchedAttributes", terms),
        "notificationTrigger": _triggers,
        "q": lambda v: _query(v, "q", qlang.parse_q) and v,
        "geoQ": lambda v: _geo_q(v, terms),
        "scopeQ": lambda v: _query(v, "scopeQ", qlang.parse_scope_q) and v,
        "timeInterval": lambda v: _number(v, "timeInterval"),
        "throttling": lambda v: _number(v, "throttling"),
        "expiresAt": lambda v: check_datetime(v, "expiresAt"),
        "isActive": lambda v: _typed(v, "isActive", bool),
        "lang": lambda v: _typed(v, "lang", str),
        "jsonldContext": lambda v: check_uri(v, "jsonldContext"),
        "notification": lambda v: _notification(v, terms, partial=partial),
    }
    for name, parse in parsers.items():
        if name not in raw:
            continue
        if raw[name] is None and partial and name != "notification":
            out[name] = None
        else:
            out[name] = parse(raw[name])
    if "q" in out:  # q is evaluated later without the context: keep each name's IRI
        out["qTerms"] = out["q"] and _q_terms(qlang.parse_q(out["q"]), terms, {})
    if not partial:
        check_subscription(out)
    return out


def _typed(v: Any, name: str, kind: type) -> Any:
    if not isinstance(v, kind):
        raise bad(name, "must be true or false" if kind is bool else "must be a string")
    return v


def _triggers(v: Any) -> list[str]:
    if not isinstance(v, list) or not v or any(t not in TRIGGERS for t in v):
        raise bad("notificationTrigger", f"must be a non-empty list of {', '.join(TRIGGERS)}")
    return list(dict.fromkeys(v))


def _query(v: Any, name: str, parse: Any) -> Any:
    """A parsed q or scopeQ; its errors become BadRequestData naming the member."""
    try:
        return parse(_typed(v, name, str))
    except NgsiError as exc:
        raise bad(name, exc.detail) from None


def merge_subscription(stored: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """PATCH semantics: members replace, ``notification`` merges one level, null removes."""
    out = {**stored}
    for name, value in patch.items():
        if name == "notification":
            out["notification"] = {**stored.get("notification", {}), **value}
        elif value is None:
            out.pop(name, None)
        else:
            out[name] = value
    check_subscription(out)
    return out


def check_subscription(sub: dict[str, Any]) -> None:
    """The rules that tie members together (clause 5.2.12)."""
    if not sub.get("entities") and not sub.get("watchedAttributes"):
        raise bad("entities", "give entities, watchedAttributes or both")
    if "notification" not in sub:
        raise bad("notification", "is required")
    if sub.get("timeInterval") is not None and (sub.get("watchedAttributes") or sub.get("throttling") is not None):
        raise bad("timeInterval", "cannot be combined with watchedAttributes or throttling")


# --- compiled form and matching ----------------------------------------------------------------------------
@dataclass
class Sub:
    """A stored subscription, with its queries parsed once for the write path."""

    tenant: str
    id: str
    body: dict[str, Any]
    modified_at: str = ""
    status: dict[str, Any] = field(default_factory=dict)
    q: Any = None
    geo: geo.GeoQuery | None = None
    scope: Any = None
    types: list[TypeExpr | None] = field(default_factory=list)
    patterns: list[re.Pattern[str] | None] = field(default_factory=list)
    triggers: frozenset[str] = DEFAULT_TRIGGERS
    watched: frozenset[str] | None = None
    terms: Any = None  # the subscriber's TermMap, resolved lazily by the notifier

    @property
    def throttling(self) -> float:
        return float(self.body.get("throttling") or 0)

    @property
    def periodic(self) -> float:
        """timeInterval in seconds; 0 for subscriptions that notify on changes."""
        return float(self.body.get("timeInterval") or 0)

    @property
    def context(self) -> Any:
        return self.body.get("jsonldContext") or self.body.get("@context")

    def live(self, now: str) -> bool:
        expires = self.body.get("expiresAt")
        return self.body.get("isActive", True) and (expires is None or expires > now)


def compile_sub(tenant: str, body: dict[str, Any], *, modified_at: str = "",
                status: dict[str, Any] | None = None) -> Sub:
    sub = Sub(tenant, body["id"], body, modified_at, dict(status or {}))
    if body.get("q"):
        sub.q = qlang.parse_q(body["q"])
    if body.get("geoQ"):
        g = body["geoQ"]
        sub.geo = geo.parse_geo_query(g["georel"], g["geometry"], g["coordinates"], g["geoproperty"])
    if body.get("scopeQ"):
        sub.scope = qlang.parse_scope_q(body["scopeQ"])
    for sel in body.get("entities") or []:
        t = sel.get("type")
        names = sel.get("typeTerms")
        sub.types.append(None if t is None else
                         parse_type_expr(t, lambda n, m=names: m.get(n, n)) if names else TypeExpr("atom", t))
        sub.patterns.append(re.compile(sel["idPattern"]) if "idPattern" in sel and "id" not in sel else None)
    if body.get("notificationTrigger"):
        sub.triggers = frozenset(body["notificationTrigger"])
    if body.get("watchedAttributes"):
        sub.watched = frozenset(body["watchedAttributes"])
    return sub


def _type_ok(expr: TypeExpr, types: list[str]) -> bool:
    if expr.op == "atom":
        return expr.value in types
    hits = (_type_ok(i, types) for i in expr.items)
    return any(hits) if expr.op == "or" else all(hits)


def _selected(sub: Sub, e: Entity) -> bool:
    sels = sub.body.get("entities")
    if not sels:
        return True
    for sel, texpr, pat in zip(sels, sub.types, sub.patterns, strict=True):
        if texpr is not None and not _type_ok(texpr, e.types):
            continue
        if "id" in sel and sel["id"] != e.id:
            continue
        if pat is not None and not pat.search(e.id):
            continue
        return True
    return False


def _reason(sub: Sub, ch: Change) -> str | None:
    """Which notificationTrigger (if any) this change fires, restricted to watchedAttributes."""
    t, w = sub.triggers, sub.watched

    def seen(attrs: set[str]) -> bool:
        return bool(attrs) and (w is None or bool(w & attrs))

    if ch.after is None:
        before = set(ch.before.attrs) if ch.before else set()
        return "entityDeleted" if "entityDeleted" in t and (w is None or seen(before)) else None
    if ch.before is None:
        attrs = set(ch.after.attrs)
        if "entityCreated" in t and (w is None or seen(attrs)):
            return "entityCreated"
        return "attributeCreated" if "attributeCreated" in t and seen(attrs) else None
    written = {a for a, _ in ch.written}
    created = {a for a in written if a not in ch.before.attrs}
    for reason, attrs in (("attributeCreated", created), ("attributeUpdated", written - created),
                          ("attributeDeleted", {a for a, _ in ch.deleted})):
        if reason in t and seen(attrs):
            return reason
    if "entityUpdated" in t and seen(ch.changed_attrs):
        return "entityUpdated"
    return None


def selects(sub: Sub, e: Entity) -> bool:
    """Whether ``e`` as it is now falls under ``sub`` (entities, q, scopeQ, geoQ): periodic notifications."""
    return _selected(sub, e) and _filters_ok(sub, e)


def _filters_ok(sub: Sub, e: Entity) -> bool:
    if sub.q is not None:
        qterms = sub.body.get("qTerms") or {}
        if not qlang.evaluate(sub.q, e.attrs, lambda n: qterms.get(n, n)):
            return False
    if sub.scope is not None and not qlang.evaluate_scope(sub.scope, e.scopes):
        return False
    if sub.geo is not None:
        insts = e.attrs.get(sub.geo.geoproperty) or []
        value = insts[0].get("value") if insts else None
        if not isinstance(value, dict) or not geo.matches(sub.geo, value):
            return False
    return True


def trigger_of(sub: Sub, ch: Change, now: str) -> str | None:
    """The trigger reason when ``ch`` is to be notified to ``sub``, else None (clause 5.11)."""
    e = ch.after or ch.before
    if e is None or sub.periodic or not sub.live(now) or not _selected(sub, e):
        return None  # periodic subscriptions notify on their clock, not on changes
    reason = _reason(sub, ch)
    if reason is None or not _filters_ok(sub, e):  # q/geoQ on the new state (the old one for deletions)
        return None
    return reason


def matches(sub: Sub, ch: Change, now: str | None = None) -> bool:
    from hotoku.broker.model import now_iso

    return trigger_of(sub, ch, now or now_iso()) is not None


# --- notifications and rendering ------------------------------------------------------------------------------
def _with_previous(ch: Change) -> Entity:
    """showChanges: each overwritten instance also carries what it replaced (previousValue, ...)."""
    assert ch.after is not None and ch.before is not None
    attrs = dict(ch.after.attrs)
    for iri, inst in ch.written:
        ds = inst.get("datasetId")
        old = next((i for i in ch.before.attrs.get(iri, []) if i.get("datasetId") == ds), None)
        if old is None or iri not in attrs:
            continue
        member = TARGET_MEMBER.get(old.get("type", "Property"), "value")
        prev = {"previous" + member[0].upper() + member[1:]: old.get(member)}
        attrs[iri] = [{**i, **prev} if i.get("datasetId") == ds else i for i in attrs[iri]]
    return dataclasses.replace(ch.after, attrs=attrs)


def build_notification(sub: Sub, hits: list[tuple[Change, str]], terms: Terms, now: str) -> dict[str, Any]:
    """The Notification (clause 5.3.1) for the changes that fired ``sub``."""
    n = sub.body["notification"]
    attrs = n.get("attributes")
    view = View(fmt=n.get("format", "normalized"), sys_attrs=bool(n.get("sysAttrs")),
                attrs=frozenset(attrs) if attrs else None, lang=sub.body.get("lang"))
    accept = n["endpoint"].get("accept", "application/json")
    data: list[dict[str, Any]] = []
    for ch, _reason in hits:
        if ch.after is None:
            assert ch.before is not None
            types = [terms.compact(t) for t in ch.before.types]
            data.append({"id": ch.id, "type": types[0] if len(types) == 1 else types, "deletedAt": now})
        else:
            e = _with_previous(ch) if n.get("showChanges") and ch.before is not None else ch.after
            render = render_feature if accept == "application/geo+json" else render_entity
            data.append(render(e, terms, view))
    body: dict[str, Any] = {
        "id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}", "type": "Notification", "subscriptionId": sub.id,
        "notifiedAt": now, "triggerReason": hits[0][1],
        "data": {"type": "FeatureCollection", "features": data} if accept == "application/geo+json" else data,
    }
    if accept == "application/ld+json":
        body["@context"] = sub.context
    return body
