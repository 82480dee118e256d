"""/types and /attributes: what the broker holds (clause 5.7.5-5.7.10)."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hotoku.broker.api.deps import make_ctx
from hotoku.broker.errors import ResourceNotFound

router = APIRouter(tags=["discovery"])


def _list_id(kind: str, items: list[str]) -> str:
    return f"urn:ngsi-ld:{kind}:" + hashlib.sha1("|".join(items).encode()).hexdigest()[:16]


@router.get("/types", summary="Available entity types")
def types(request: Request, details: bool = False) -> Response:
    ctx = make_ctx(request)
    ctx.require("read")
    found = ctx.services.store.distinct_types(ctx.tenant)
    c = ctx.terms.compact
    if details:
        return ctx.respond([{"id": t, "type": "EntityType", "typeName": c(t),
                             "attributeNames": [c(a) for a in attrs]} for t, attrs in found])
    names = [c(t) for t, _ in found]
    body = {"id": _list_id("EntityTypeList", names), "type": "EntityTypeList", "typeList": names}
    if ctx.context_out is not None:
        body["@context"] = ctx.context_out
    return ctx.respond(body)


@router.get("/types/{type_name}", summary="Details of one entity type")
def type_info(request: Request, type_name: str) -> Response:
    ctx = make_ctx(request)
    ctx.require("read")
    iri = ctx.terms.expand(type_name)
    stats = [s for s in ctx.services.store.attribute_stats(ctx.tenant) if s[1] == iri]
    count = ctx.services.store.count_by_type(ctx.tenant).get(iri, 0)
    if count == 0:
        raise ResourceNotFound(f"no entity of type {type_name}", field="type")
    c = ctx.terms.compact
    return ctx.respond({
        "id": iri, "type": "EntityTypeInfo", "typeName": c(iri), "entityCount": count,
        "attributeDetails": [{"id": a, "type": "Attribute", "attributeName": c(a), "attributeTypes": kinds}
                             for a, _, kinds, _n in stats],
    })


def _by_attr(ctx_stats: list[tuple[str, str, list[str], int]]) -> dict[str, dict[str, set[str] | int]]:
    out: dict[str, dict[str, set[str] | int]] = {}
    for attr, etype, kinds, n in ctx_stats:
        entry = out.setdefault(attr, {"types": set(), "kinds": set(), "count": 0})
        entry["types"].add(etype)  # type: ignore[union-attr]
        entry["kinds"].update(kinds)  # type: ignore[union-attr]
        entry["count"] += n  # type: ignore[operator]
    return out


@router.get("/attributes", summary="Available attributes")
def attributes(request: Request, details: bool = False) -> Response:
    ctx = make_ctx(request)
    ctx.require("read")
    by_attr = _by_attr(ctx.services.store.attribute_stats(ctx.tenant))
    c = ctx.terms.compact
    if details:
        return ctx.respond([{"id": a, "type": "Attribute", "attributeName": c(a),
                             "typeNames": sorted(c(t) for t in e["types"])}  # type: ignore[union-attr]
                            for a, e in sorted(by_attr.items())])
    names = [c(a) for a in sorted(by_attr)]
    return ctx.respond({"id": _list_id("AttributeList", names), "type": "AttributeList", "attributeList": names})


@router.get("/attributes/{attr_name}", summary="Details of one attribute")
def attribute_info(request: Request, attr_name: str) -> Response:
    ctx = make_ctx(request)
    ctx.require("read")
    iri = ctx.terms.expand(attr_name)
    entry = _by_attr(ctx.services.store.attribute_stats(ctx.tenant)).get(iri)
    if entry is None:
        raise ResourceNotFound(f"no attribute {attr_name}", field="attrId")
    c = ctx.terms.compact
    return ctx.respond({"id": iri, "type": "Attribute", "attributeName": c(iri), "attributeCount": entry["count"],
                        "attributeTypes": sorted(entry["kinds"]),  # type: ignore[arg-type]
                        "typeNames": sorted(c(t) for t in entry["types"])})  # type: ignore[union-attr]
