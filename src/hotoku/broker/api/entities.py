"""/entities and /entities/{id}/attrs: the context-information endpoints (clause 6.4-6.7)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from hotoku.broker import ops
from hotoku.broker.api.deps import MERGE_PATCH, Ctx, make_ctx, make_view, parse_options, read_json
from hotoku.broker.api.querying import build_filter, run_query
from hotoku.broker.errors import BadRequestData, ResourceNotFound
from hotoku.broker.model import now_iso
from hotoku.broker.normalize import check_uri, parse_attributes, parse_entity, parse_instances
from hotoku.broker.render import render_entity

router = APIRouter(tags=["entities"])
OBJ = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object"}}, "application/ld+json": {"schema": {"type": "object"}}}}}
PATCH_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object"}}, "application/ld+json": {"schema": {"type": "object"}},
    MERGE_PATCH: {"schema": {"type": "object"}}}}}


def _commit(ctx: Ctx, ids: list[str], fn: Any) -> list[ops.Change]:
    """Load the entities locked, let the pure core compute the change, write it and its notifications."""
    svc = ctx.services
    with svc.store.write() as tx:
        existing = tx.load(ctx.tenant, ids)
        changes = fn(existing)
        tx.apply(ctx.tenant, changes, svc.notifier.outbox_for(ctx.tenant, changes))
    svc.notifier.wake()
    return changes


@router.post("/entities", status_code=201, openapi_extra=OBJ, summary="Create an entity")
async def create_entity(request: Request) -> Response:
    body = await read_json(request)
    ctx = make_ctx(request, body)
    ctx.require("write")
    entity = parse_entity(body, ctx.terms, now=now_iso())
    _commit(ctx, [entity.id], lambda ex: [ops.create(ex.get(entity.id), entity)])
    return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/entities/{entity.id}"})


@router.get("/entities", summary="Query entities")
def query_entities(
    request: Request,
    id: str | None = None,
    idPattern: str | None = None,
    type: str | None = None,
    attrs: str | None = None,
    pick: str | None = None,
    omit: str | None = None,
    q: str | None = None,
    scopeQ: str | None = None,
    georel: str | None = None,
    geometry: str | None = None,
    coordinates: str | None = None,
    geoproperty: str | None = None,
    geometryProperty: str | None = None,
    lang: str | None = None,
    limit: int | None = Query(None, ge=0),
    offset: int = Query(0, ge=0),
    count: bool = False,
    options: str | None = None,
    format: str | None = None,
    local: bool | None = None,
) -> Response:
    ctx = make_ctx(request, geo=True)
    ctx.require("read")
    f = build_filter(ctx, ids=id, id_pattern=idPattern, types=type, attrs=attrs or pick, q=q, scope_q=scopeQ,
                     georel=georel, geometry=geometry, coordinates=coordinates, geoproperty=geoproperty)
    view = make_view(ctx, options=options, format=format, attrs=attrs, pick=pick, omit=omit, lang=lang,
                     geometry_property=geometryProperty)
    return run_query(ctx, f, view, limit=limit, offset=offset, count=count or "count" in parse_options(options))


@router.get("/entities/{entity_id}", summary="Retrieve an entity")
async def retrieve_entity(  # async: a point lookup is cheaper than the hop to the thread pool
    request: Request, entity_id: str, attrs: str | None = None, pick: str | None = None,
    omit: str | None = None, type: str | None = None, options: str | None = None,
    format: str | None = None, lang: str | None = None, geometryProperty: str | None = None,
) -> Response:
    ctx = make_ctx(request, geo=True)
    ctx.require("read")
    check_uri(entity_id, "entityId")
    entity = ctx.services.store.get(ctx.tenant, entity_id)
    if entity is None or (type and ctx.terms.expand(type) not in entity.types):
        raise ResourceNotFound(f"entity {entity_id} not found", field="entityId")
    view = make_view(ctx, options=options, format=format, attrs=attrs, pick=pick, omit=omit, lang=lang,
                     geometry_property=geometryProperty)
    if view.geojson:
        from hotoku.broker.render import render_feature

        feature = render_feature(entity, ctx.terms, view)
        if ctx.context_out is not None:
            feature["@context"] = ctx.context_out
        return ctx.respond(feature)
    return ctx.respond(render_entity(entity, ctx.terms, view, ctx.context_out))


@router.put("/entities/{entity_id}", status_code=204, openapi_extra=OBJ, summary="Replace an entity")
async def replace_entity(request: Request, entity_id: str) -> Response:
    body = await read_json(request)
    ctx = make_ctx(request, body)
    ctx.require("write")
    check_uri(entity_id, "entityId")
    if not isinstance(body, dict):
        raise BadRequestData("the body must be an entity object", field="body")
    body = {**body, "id": body.get("id", entity_id)}
    if body["id"] != entity_id:
        raise BadRequestData("the id in the body differs from the id in the path", field="id")
    now = now_iso()
    entity = parse_entity(body, ctx.terms, now=now, require_type="type" in body)
    _commit(ctx, [entity_id], lambda ex: [ops.replace(ex.get(entity_id), entity, now)])
    return Response(status_code=204)


@router.patch("/entities/{entity_id}", status_code=204, openapi_extra=PATCH_BODY, summary="Merge-patch an entity")
async def merge_entity(request: Request, entity_id: str) -> Response:
    body = await read_json(request, allow=("application/json", "application/ld+json", MERGE_PATCH))
    ctx = make_ctx(request, body)
    ctx.require("write")
    check_uri(entity_id, "entityId")
    if not isinstance(body, dict):
        raise BadRequestData("the body must be an object of attributes", field="body")
    now = now_iso()
    patch = parse_entity({**body, "id": entity_id}, ctx.terms, now=now, require_type=False) \
        if "type" in body else _attrs_only(ctx, entity_id, body, now)
    _commit(ctx, [entity_id], lambda ex: [ops.merge_entity(ex.get(entity_id), patch, now)])
    return Response(status_code=204)


def _attrs_only(ctx: Ctx, eid: str, body: dict[str, Any], now: str) -> Any:
    from hotoku.broker.model import Entity

    return Entity(eid, [], parse_attributes(body, ctx.terms, now=now, allow_null=True))


@router.delete("/entities/{entity_id}", status_code=204, summary="Delete an entity")
def delete_entity(request: Request, entity_id: str, type: str | None = None) -> Response:
    ctx = make_ctx(request)
    ctx.require("write")
    check_uri(entity_id, "entityId")
    _commit(ctx, [entity_id], lambda ex: [ops.delete_entity(ex.get(entity_id), entity_id)])
    return Response(status_code=204)


def _update_result(change: ops.Change, terms: Any) -> Response | None:
    if not change.not_updated:
        return None
    import orjson

    body = {"updated": sorted({terms.compact(a) for a, _ in change.written}),
            "notUpdated": [{"attributeName": terms.compact(a), "reason": r} for a, r in change.not_updated]}
    return Response(orjson.dumps(body), status_code=207, media_type="application/json")


@router.post("/entities/{entity_id}/attrs", status_code=204, openapi_extra=OBJ, summary="Append attributes")
async def append_attrs(request: Request, entity_id: str, options: str | None = None,
                       type: str | None = None) -> Response:
    body = await read_json(request)
    ctx = make_ctx(request, body)
    ctx.require("write")
    check_uri(entity_id, "entityId")
    if not isinstance(body, dict):
        raise BadRequestData("the body must be an object of attributes", field="body")
    now = now_iso()
    attrs = parse_attributes(body, ctx.terms, now=now)
    no_overwrite = "noOverwrite" in parse_options(options)
    types = [ctx.terms.expand(body["type"])] if isinstance(body.get("type"), str) else None
    changes = _commit(ctx, [entity_id], lambda ex: [
        ops.append_attrs(ex.get(entity_id), entity_id, attrs, now, no_overwrite=no_overwrite, types=types)])
    return _update_result(changes[0], ctx.terms) or Response(status_code=204)


@router.patch("/entities/{entity_id}/attrs", status_code=204, openapi_extra=OBJ, summary="Update attributes")
async def update_attrs(request: Request, entity_id: str) -> Response:
    body = await read_json(request)
    ctx = make_ctx(request, body)
    ctx.require("write")
    check_uri(entity_id, "entityId")
    if not isinstance(body, dict):
        raise BadRequestData("the body must be an object of attributes", field="body")
    now = now_iso()
    attrs = parse_attributes(body, ctx.terms, now=now, allow_null=True)
    changes = _commit(ctx, [entity_id], lambda ex: [ops.update_attrs(ex.get(entity_id), entity_id, attrs, now)])
    return _update_result(changes[0], ctx.terms) or Response(status_code=204)


def _one_instance(ctx: Ctx, body: Any, attr_id: str, now: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequestData("the body must be an attribute object", field="body")
    body = {k: v for k, v in body.items() if k != "@context"}
    insts = parse_instances(body, attr_id, ctx.terms, now=now, allow_null=True)
    return insts[0]


@router.patch("/entities/{entity_id}/attrs/{attr_id}", status_code=204, openapi_extra=OBJ,
              summary="Partial attribute update")
async def patch_attr(request: Request, entity_id: str, attr_id: str) -> Response:
    body = await read_json(request)
    ctx = make_ctx(request, body)
    ctx.require("write")
    check_uri(entity_id, "entityId")
    now = now_iso()
    if isinstance(body, dict) and "type" not in body and not {"value", "object", "languageMap", "vocab",
                                                              "valueList", "objectList", "json"} & set(body):
        raise BadRequestData("the fragment must set value, object, languageMap, vocab, valueList, objectList "
                             "or json", field="body")
    inst = _one_instance(ctx, body, attr_id, now)
    iri = ctx.terms.expand(attr_id)
    _commit(ctx, [entity_id], lambda ex: [ops.patch_attr(ex.get(entity_id), entity_id, iri, inst, now)])
    return Response(status_code=204)


@router.put("/entities/{entity_id}/attrs/{attr_id}", status_code=204, openapi_extra=OBJ, summary="Replace attribute")
async def replace_attr(request: Request, entity_id: str, attr_id: str) -> Response:
    body = await read_json(request)
    ctx = make_ctx(request, body)
    ctx.require("write")
    check_uri(entity_id, "entityId")
    now = now_iso()
    inst = _one_instance(ctx, body, attr_id, now)
    iri = ctx.terms.expand(attr_id)
    _commit(ctx, [entity_id], lambda ex: [ops.replace_attr(ex.get(entity_id), entity_id, iri, inst, now)])
    return Response(status_code=204)


@router.delete("/entities/{entity_id}/attrs/{attr_id}", status_code=204, summary="Delete attribute")
def delete_attr(request: Request, entity_id: str, attr_id: str, datasetId: str | None = None,
                deleteAll: bool = False) -> Response:
    ctx = make_ctx(request)
    ctx.require("write")
    check_uri(entity_id, "entityId")
    now = now_iso()
    iri = ctx.terms.expand(attr_id)
    _commit(ctx, [entity_id], lambda ex: [ops.delete_attr(ex.get(entity_id), entity_id, iri, now,
                                                          dataset_id=datasetId, delete_all=deleteAll)])
    return Response(status_code=204)


@router.delete("/entities", status_code=204, summary="Purge entities of a type")
def purge_entities(request: Request, type: str = Query(...)) -> Response:
    ctx = make_ctx(request)
    ctx.require("manage")
    ctx.services.store.purge_type(ctx.tenant, ctx.terms.expand(type))
    return Response(status_code=204)
