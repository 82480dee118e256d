"""Turn NGSI-LD request payloads into the internal expanded form.

Accepts the normalized and the concise representations (clause 4.5), checks
every member, and names the offending field in each error, so that bad input is
rejected before anything is stored.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Protocol

from hotoku.broker import geo
from hotoku.broker.errors import BadRequestData
from hotoku.broker.model import ATTRIBUTE_TYPES, INSTANCE_MEMBERS, NULL_URI, Entity, Instance, sort_instances

ENTITY_MEMBERS = frozenset({"id", "@id", "type", "@type", "scope", "@context", "createdAt", "modifiedAt"})
GEOJSON_TYPES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection"}
)
GEO_ATTRS = frozenset({"location", "observationSpace", "operationSpace"})
# Members whose presence tells which attribute kind a concise instance is.
_INFER = (
    ("object", "Relationship"),
    ("languageMap", "LanguageProperty"),
    ("vocab", "VocabProperty"),
    ("valueList", "ListProperty"),
    ("objectList", "ListRelationship"),
    ("json", "JsonProperty"),
)


class Terms(Protocol):
    def expand(self, term: str) -> str: ...

    def compact(self, iri: str) -> str: ...


_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]*$")
_UTC_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")
_BAD_NAME = re.compile(r"[<>\"'=;()& ?/#]")
_GOOD_NAMES: set[str] = set()  # names already checked: attribute names repeat across a batch


def is_uri(value: object) -> bool:
    return isinstance(value, str) and _URI.match(value) is not None


def check_uri(value: object, field: str) -> str:
    if not is_uri(value):
        raise BadRequestData(f"{field} must be a URI, got {value!r}", field=field)
    return value  # type: ignore[return-value]


def check_pattern(value: str, field: str) -> str:
    """A regular expression given by a client must compile before it reaches SQL."""
    try:
        re.compile(value)
    except re.error as exc:
        raise BadRequestData(f"{field} is not a valid regular expression: {exc}", field=field) from None
    return value


def check_datetime(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise BadRequestData(f"{field} must be an ISO 8601 date-time string", field=field)
    if _UTC_MS.match(value):  # already in the stored form, or only missing its milliseconds
        return value if len(value) == 24 else value[:-1] + ".000Z"
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestData(f"{field} is not an ISO 8601 date-time: {value!r}", field=field) from None
    return utc_iso(dt if dt.tzinfo else dt.replace(tzinfo=UTC))


def utc_iso(dt: datetime) -> str:
    """The one textual form stored for instants: sortable as text on both backends."""
    u = dt.astimezone(UTC)
    return u.strftime("%Y-%m-%dT%H:%M:%S.") + f"{u.microsecond // 1000:03d}Z"


def parse_types(raw: object, terms: Terms, field: str = "type") -> list[str]:
    if isinstance(raw, str) and raw:
        return [terms.expand(raw)]
    if isinstance(raw, list) and raw and all(isinstance(t, str) and t for t in raw):
        return list(dict.fromkeys(terms.expand(t) for t in raw))
    raise BadRequestData(f"{field} must be a non-empty string or list of strings", field=field)


def parse_scopes(raw: object) -> list[str] | None:
    if raw is None:
        return None
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(s, str) and s.startswith("/") for s in items):
        raise BadRequestData("scope must be a string or list of strings starting with '/'", field="scope")
    return items


def parse_entity(body: object, terms: Terms, *, now: str, require_type: bool = True) -> Entity:
    """A full entity payload → Entity (attribute timestamps set to ``now``)."""
    if not isinstance(body, dict):
        raise BadRequestData("an entity must be a JSON object", field="entity")
    eid = body.get("id", body.get("@id"))
    check_uri(eid, "id")
    raw_type = body.get("type", body.get("@type"))
    if raw_type is None and not require_type:
        types: list[str] = []
    else:
        types = parse_types(raw_type, terms)
    attrs = parse_attributes(body, terms, now=now)
    return Entity(id=eid, types=types, attrs=attrs, scopes=parse_scopes(body.get("scope")),
                  created_at=now, modified_at=now)


def parse_attributes(body: dict[str, Any], terms: Terms, *, now: str, allow_null: bool = False,
                     prefix: str = "") -> dict[str, list[Instance]]:
    """The attribute members of a payload (everything but id, type, scope, @context)."""
    attrs: dict[str, list[Instance]] = {}
    for name, raw in body.items():
        if name in ENTITY_MEMBERS:
            continue
        if name not in _GOOD_NAMES:
            if not name or _BAD_NAME.search(name):
                raise BadRequestData(f"attribute name {name!r} is not allowed", field=prefix + name)
            if len(_GOOD_NAMES) < 100_000:
                _GOOD_NAMES.add(name)
        attrs[terms.expand(name)] = parse_instances(raw, name, terms, now=now, allow_null=allow_null,
                                                    field=prefix + name)
    return attrs


def _is_instance_list(raw: list[Any]) -> bool:
    return bool(raw) and all(
        isinstance(i, dict) and (("type" in i and i.get("type") in ATTRIBUTE_TYPES) or "value" in i
                                 or "object" in i or "languageMap" in i or "datasetId" in i)
        for i in raw
    )


def parse_instances(raw: object, name: str, terms: Terms, *, now: str, allow_null: bool = False,
                    field: str | None = None) -> list[Instance]:
    field = field or name
    if isinstance(raw, list) and _is_instance_list(raw):
        insts = [parse_instance(r, name, terms, now=now, allow_null=allow_null, field=f"{field}[{i}]")
                 for i, r in enumerate(raw)]
        seen: set[str | None] = set()
        for inst in insts:
            key = inst.get("datasetId")
            if key in seen:
                raise BadRequestData(f"{field}: datasetId {key!r} appears twice", field=field)
            seen.add(key)
        return sort_instances(insts)
    return [parse_instance(raw, name, terms, now=now, allow_null=allow_null, field=field)]


def parse_instance(raw: object, name: str, terms: Terms, *, now: str, allow_null: bool = False,
                   field: str | None = None, sub: bool = False) -> Instance:
    """One attribute instance, normalized and validated."""
    field = field or name
    if raw is None:
        raise BadRequestData(f"{field}: null is not a valid attribute value", field=field)
    if not isinstance(raw, dict):
        return {"type": "Property", "value": raw, "createdAt": now, "modifiedAt": now}
    kind = raw.get("type")
    if kind is None:
        kind = next((k for member, k in _INFER if member in raw), None)
        if kind is None:
            if "value" in raw:
                val = raw["value"]
                kind = "GeoProperty" if (name in GEO_ATTRS and isinstance(val, dict)
                                         and val.get("type") in GEOJSON_TYPES) else "Property"
            elif raw.get("type") in GEOJSON_TYPES or (isinstance(raw.get("coordinates"), list)):
                kind = "GeoProperty"
                raw = {"value": raw}
            else:
                return {"type": "Property", "value": raw, "createdAt": now, "modifiedAt": now}
    elif kind in GEOJSON_TYPES:
        kind, raw = "GeoProperty", {"value": raw}
    if kind not in ATTRIBUTE_TYPES:
        raise BadRequestData(f"{field}.type: unknown attribute type {kind!r}", field=f"{field}.type")
    inst: Instance = {"type": kind}
    _fill_target(inst, kind, raw, terms, field, allow_null)
    for member, val in raw.items():
        if member in ("type", "value", "object", "languageMap", "vocab", "valueList", "objectList", "json"):
            continue
        if member == "observedAt":
            inst["observedAt"] = check_datetime(val, f"{field}.observedAt")
        elif member == "unitCode":
            if not isinstance(val, str) or not val:
                raise BadRequestData(f"{field}.unitCode must be a non-empty string", field=f"{field}.unitCode")
            inst["unitCode"] = val
        elif member == "datasetId":
            if sub:
                raise BadRequestData(f"{field}: sub-attributes cannot have a datasetId", field=field)
            inst["datasetId"] = check_uri(val, f"{field}.datasetId")
        elif member in ("createdAt", "modifiedAt", "instanceId", "@context", "lang", "deletedAt"):
            continue
        elif member == "objectType" and kind in ("Relationship", "ListRelationship"):
            inst["objectType"] = terms.expand(val) if isinstance(val, str) else val
        elif member in INSTANCE_MEMBERS:
            raise BadRequestData(f"{field}.{member} is not allowed on a {kind}", field=f"{field}.{member}")
        else:
            inst[terms.expand(member)] = parse_instance(val, member, terms, now=now, allow_null=allow_null,
                                                        field=f"{field}.{member}", sub=True)
    inst["createdAt"] = now
    inst["modifiedAt"] = now
    return inst


def _fill_target(inst: Instance, kind: str, raw: dict[str, Any], terms: Terms, field: str,
                 allow_null: bool) -> None:
    if kind in ("Property", "GeoProperty"):
        if "value" not in raw:
            raise BadRequestData(f"{field}: a {kind} needs a value", field=f"{field}.value")
        val = raw["value"]
        if val is None or (val == NULL_URI and not allow_null):
            raise BadRequestData(f"{field}.value must not be null", field=f"{field}.value")
        if kind == "GeoProperty" and val != NULL_URI:
            val = geo.validate_geometry(val, f"{field}.value")
        inst["value"] = val
    elif kind == "Relationship":
        obj = raw.get("object")
        if isinstance(obj, list):
            for i, o in enumerate(obj):
                check_uri(o, f"{field}.object[{i}]")
        else:
            check_uri(obj, f"{field}.object")
        inst["object"] = obj
    elif kind == "LanguageProperty":
        lm = raw.get("languageMap")
        if not isinstance(lm, dict) or not lm or not all(isinstance(k, str) for k in lm):
            raise BadRequestData(f"{field}.languageMap must be an object of language tags",
                                 field=f"{field}.languageMap")
        inst["languageMap"] = lm
    elif kind == "VocabProperty":
        v = raw.get("vocab")
        if isinstance(v, str):
            inst["vocab"] = terms.expand(v)
        elif isinstance(v, list) and v and all(isinstance(x, str) for x in v):
            inst["vocab"] = [terms.expand(x) for x in v]
        else:
            raise BadRequestData(f"{field}.vocab must be a term or a list of terms", field=f"{field}.vocab")
    elif kind == "ListProperty":
        vl = raw.get("valueList")
        if not isinstance(vl, list):
            raise BadRequestData(f"{field}.valueList must be a list", field=f"{field}.valueList")
        inst["valueList"] = vl
    elif kind == "ListRelationship":
        ol = raw.get("objectList")
        if not isinstance(ol, list):
            raise BadRequestData(f"{field}.objectList must be a list", field=f"{field}.objectList")
        inst["objectList"] = [check_uri(o.get("object") if isinstance(o, dict) else o, f"{field}.objectList[{i}]")
                              for i, o in enumerate(ol)]
    elif kind == "JsonProperty":
        if "json" not in raw:
            raise BadRequestData(f"{field}: a JsonProperty needs json", field=f"{field}.json")
        inst["json"] = raw["json"]
