"""/temporal/entities: the temporal evolution of entities (clauses 5.5.8-5.5.11, 6.18-6.22).

Reads come from ``attr_history``, which every ordinary entity write feeds. The
provision endpoints edit that history directly and leave the current state
(``/entities``) alone: adding a past instance must not overwrite a newer value.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from hotoku.broker import qlang
from hotoku.broker.api.deps import Ctx, make_ctx, parse_options, read_json
from hotoku.broker.api.querying import DEFAULT_LIMIT
from hotoku.broker.errors import BadRequestData, ResourceNotFound, TooManyResults
from hotoku.broker.model import Instance, now_iso
from hotoku.broker.normalize import check_pattern, check_uri, parse_instance
from hotoku.broker.ops import merge_instance
from hotoku.broker.store.sqlparts import parse_type_expr
from hotoku.broker.store.temporal_sql import DEFAULT_MAX_INSTANCES, Selection, TemporalSql
from hotoku.broker.temporal import (
    Aggregation,
    parse_aggregation,
    parse_instance_id,
    parse_temporal_attrs,
    parse_temporal_entity,
    parse_temporal_query,
    render_aggregated,
    render_temporal,
)

router = APIRouter(tags=["temporal"])
OBJ = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object"}}, "application/ld+json": {"schema": {"type": "object"}}}}}
FORMATS = ("normalized", "concise", "temporalValues", "aggregatedValues")


def max_instances(ctx: Ctx) -> int:
    """Instances per attribute in one response: ``app.state.temporal_max_instances`` or settings, else 1000."""
    cap = getattr(ctx.request.app.state, "temporal_max_instances", None)
    if cap is None:
        cap = getattr(ctx.services.settings, "temporal_max_instances", DEFAULT_MAX_INSTANCES)
    return max(int(cap), 1)


def _format(options: str | None, format: str | None) -> tuple[str, bool]:
    opts = parse_options(options)
    fmt = format or next((f for f in ("aggregatedValues", "temporalValues", "concise") if f in opts), None)
    if fmt is None:
        fmt = "temporalValues" if opts & {"keyValues", "simplified"} else "normalized"
    fmt = {"keyValues": "temporalValues", "simplified": "temporalValues"}.get(fmt, fmt)
    if fmt not in FORMATS:
        raise BadRequestData(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}", field="format")
    return fmt, "sysAttrs" in opts


def _selection(ctx: Ctx, *, ids: list[str] | None = None, id_pattern: str | None = None, types: str | None = None,
               attrs: list[str] | None = None, q: str | None = None, scope_q: str | None = None,
               tq: Any) -> Selection:
    expand = ctx.terms.expand
    if id_pattern:
        check_pattern(id_pattern, "idPattern")
    return Selection(
        ids=[i for i in ids if i] or None if ids else None,
        id_pattern=id_pattern or None,
        types=parse_type_expr(types, expand) if types else None,
        attrs=[expand(a) for a in attrs if a] or None if attrs else None,
        q=qlang.parse_q(q) if q else None,
        scope_q=qlang.parse_scope_q(scope_q) if scope_q else None,
        expand=expand,
        tq=tq,
    )


def _render_page(ctx: Ctx, sel: Selection, ids: list[str], fmt: str, sys_attrs: bool,
                 agg: Aggregation | None) -> tuple[list[dict[str, Any]], str | None]:
    ts = TemporalSql(ctx.services.store)
    types = ts.entity_types(ctx.tenant, ids)
    terms, context = ctx.terms, ctx.context_out
    if agg is not None:
        rows, start, end = ts.aggregate(ctx.tenant, sel, ids, agg)
        return [render_aggregated(eid, types.get(eid, []), [r for r in rows if r.entity_id == eid], agg, terms,
                                  start=start, end=end, last_n=sel.tq.last_n, context=context) for eid in ids], None
    page = ts.history(ctx.tenant, sel, ids, max_instances(ctx))
    return [render_temporal(eid, types.get(eid, []), page.rows.get(eid, []), terms, fmt=fmt, sys_attrs=sys_attrs,
                            context=context) for eid in ids], page.content_range


def _query(ctx: Ctx, sel: Selection, fmt: str, sys_attrs: bool, agg: Aggregation | None, *, limit: int | None,
           offset: int, count: bool) -> Response:
    max_limit = ctx.services.settings.max_limit
    limit = DEFAULT_LIMIT if limit is None else limit
    if limit > max_limit:
        raise TooManyResults(f"limit {limit} is above the maximum {max_limit}", field="limit")
    if limit == 0 and not count:
        raise BadRequestData("limit=0 is only allowed together with count=true", field="limit")
    if not (sel.ids or sel.id_pattern or sel.types or sel.attrs or sel.q or sel.scope_q):
        raise BadRequestData("give at least one of type, attrs, q, id, idPattern or scopeQ", field="type")
    ids, total = TemporalSql(ctx.services.store).entity_ids(ctx.tenant, sel, limit=limit, offset=offset,
                                                            count=count)
    body, content_range = _render_page(ctx, sel, ids, fmt, sys_attrs, agg)
    headers = {}
    if total is not None:
        headers["NGSILD-Results-Count"] = str(total)
    if content_range:
        headers["Content-Range"] = content_range
    return ctx.respond(body, 206 if content_range else 200, headers)


@router.get("/temporal/entities", summary="Query temporal evolution of entities")
def query_temporal(
    request: Request,
    id: str | None = None,
    idPattern: str | None = None,
    type: str | None = None,
    attrs: str | None = None,
    q: str | None = None,
    scopeQ: str | None = None,
    timerel: str | None = None,
    timeAt: str | None = None,
    endTimeAt: str | None = None,
    timeproperty: str | None = None,
    lastN: int | None = None,
    aggrMethods: str | None = None,
    aggrPeriodDuration: str | None = None,
    limit: int | None = Query(None, ge=0),
    offset: int = Query(0, ge=0),
    count: bool = False,
    options: str | None = None,
    format: str | None = None,
) -> Response:
    ctx = make_ctx(request)
    ctx.require("read")
    fmt, sys_attrs = _format(options, format)
    tq = parse_temporal_query(timerel, timeAt, endTimeAt, timeproperty, lastN)
    agg = parse_aggregation(aggrMethods, aggrPeriodDuration) if fmt == "aggregatedValues" else None
    sel = _selection(ctx, ids=id.split(",") if id else None, id_pattern=idPattern, types=type,
                     attrs=attrs.split(",") if attrs else None, q=q, scope_q=scopeQ, tq=tq)
    return _query(ctx, sel, fmt, sys_attrs, agg, limit=limit, offset=offset,
                  count=count or "count" in parse_options(options))


@router.post("/temporal/entityOperations/query", summary="Query temporal evolution (POST)", openapi_extra=OBJ)
async def post_query_temporal(request: Request, limit: int | None = Query(None, ge=0), offset: int = Query(0, ge=0),
                              count: bool = False, options: str | None = None, format: str | None = None,
                              lastN: int | None = None, aggrMethods: str | None = None,
                              aggrPeriodDuration: str | None = None) -> Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequestData("the body must be a Query object", field="body")
    ctx = make_ctx(request, body)
    ctx.require("read")
    fmt, sys_attrs = _format(options, format)
    ents = body.get("entities") or []
    tqb = body.get("temporalQ") or {}
    if not isinstance(ents, list) or not all(isinstance(s, dict) for s in ents):
        raise BadRequestData("entities must be an array of EntitySelectors", field="entities")
    if not isinstance(tqb, dict):
        raise BadRequestData("temporalQ must be an object", field="temporalQ")
    attrs = body.get("attrs")
    if attrs is not None and not (isinstance(attrs, list) and all(isinstance(a, str) for a in attrs)):
        raise BadRequestData("attrs must be an array of attribute names", field="attrs")
    tq = parse_temporal_query(tqb.get("timerel"), tqb.get("timeAt"), tqb.get("endTimeAt"), tqb.get("timeproperty"),
                              lastN if lastN is not None else tqb.get("lastN"))
    agg = None
    if fmt == "aggregatedValues":
        agg = parse_aggregation(aggrMethods or tqb.get("aggrMethods"),
                                aggrPeriodDuration or tqb.get("aggrPeriodDuration"))
    patterns = [s["idPattern"] for s in ents if "idPattern" in s]
    sel = _selection(ctx, ids=[s["id"] for s in ents if "id" in s] or None, id_pattern="|".join(patterns) or None,
                     types=",".join(s["type"] for s in ents if isinstance(s.get("type"), str)) or None,
                     attrs=attrs, q=body.get("q"), scope_q=body.get("scopeQ"), tq=tq)
    return _query(ctx, sel, fmt, sys_attrs, agg, limit=limit, offset=offset,
                  count=count or "count" in parse_options(options))


@router.get("/temporal/entities/{entity_id}", summary="Retrieve temporal evolution of an entity")
def retrieve_temporal(
    request: Request,
    entity_id: str,
    attrs: str | None = None,
    type: str | None = None,
    timerel: str | None = None,
    timeAt: str | None = None,
    endTimeAt: str | None = None,
    timeproperty: str | None = None,
    lastN: int | None = None,
    aggrMethods: str | None = None,
    aggrPeriodDuration: str | None = None,
    options: str | None = None,
    format: str | None = None,
) -> Response:
    ctx = make_ctx(request)
    ctx.require("read")
    check_uri(entity_id, "entityId")
    fmt, sys_attrs = _format(options, format)
    tq = parse_temporal_query(timerel, timeAt, endTimeAt, timeproperty, lastN)
    agg = parse_aggregation(aggrMethods, aggrPeriodDuration) if fmt == "aggregatedValues" else None
    ts = TemporalSql(ctx.services.store)
    types = ts.entity_types(ctx.tenant, [entity_id]).get(entity_id)
    if not types or (type and ctx.terms.expand(type) not in types):
        raise ResourceNotFound(f"temporal entity {entity_id} not found", field="entityId")
    sel = _selection(ctx, ids=[entity_id], attrs=attrs.split(",") if attrs else None, tq=tq)
    body, content_range = _render_page(ctx, sel, [entity_id], fmt, sys_attrs, agg)
    headers = {"Content-Range": content_range} if content_range else None
    return ctx.respond(body[0], 206 if content_range else 200, headers)


# --- provision ---------------------------------------------------------------------------------------
@router.post("/temporal/entities", status_code=201, openapi_extra=OBJ,
             summary="Create or update the temporal evolution of an entity")
async def create_temporal(request: Request) -> Response:
    body = await read_json(request)
    ctx = make_ctx(request, body)
    ctx.require("write")
    eid, types, items = parse_temporal_entity(body, ctx.terms, now=now_iso())
    ts = TemporalSql(ctx.services.store)
    with ctx.services.store.write() as tx:
        existed = ts.entity_type(tx.conn, ctx.tenant, eid) is not None
        ts.insert_instances(tx.conn, ctx.tenant, eid, types[0], items)
    if existed:
        return Response(status_code=204)
    return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/temporal/entities/{eid}"})


@router.post("/temporal/entities/{entity_id}/attrs", status_code=204, openapi_extra=OBJ,
             summary="Add attribute instances to a temporal entity")
async def add_temporal_attrs(request: Request, entity_id: str) -> Response:
    body = await read_json(request)
    ctx = make_ctx(request, body)
    ctx.require("write")
    check_uri(entity_id, "entityId")
    if not isinstance(body, dict):
        raise BadRequestData("the body must be an object of attributes", field="body")
    items = parse_temporal_attrs(body, ctx.terms, now=now_iso())
    ts = TemporalSql(ctx.services.store)
    with ctx.services.store.write() as tx:
        etype = ts.entity_type(tx.conn, ctx.tenant, entity_id)
        if etype is None:
            raise ResourceNotFound(f"temporal entity {entity_id} not found", field="entityId")
        ts.insert_instances(tx.conn, ctx.tenant, entity_id, etype, items)
    return Response(status_code=204)


def _fragment(body: Any, attr_id: str, iri: str) -> dict[str, Any]:
    """The instance in a PATCH body: bare, or wrapped as ``{attrId: instance | [instance]}``."""
    if not isinstance(body, dict):
        raise BadRequestData("the body must be an attribute fragment", field="body")
    body = {k: v for k, v in body.items() if k != "@context"}
    for key in (attr_id, iri):
        if len(body) == 1 and key in body:
            inner = body[key]
            inner = inner[0] if isinstance(inner, list) and len(inner) == 1 else inner
            if not isinstance(inner, dict):
                raise BadRequestData(f"{attr_id} must be one attribute instance", field=attr_id)
            return inner
    return body


@router.patch("/temporal/entities/{entity_id}/attrs/{attr_id}/{instance_id}", status_code=204, openapi_extra=OBJ,
              summary="Modify one attribute instance")
async def modify_instance(request: Request, entity_id: str, attr_id: str, instance_id: str) -> Response:
    body = await read_json(request)
    ctx = make_ctx(request, body)
    ctx.require("write")
    check_uri(entity_id, "entityId")
    seq = parse_instance_id(instance_id)
    iri = ctx.terms.expand(attr_id)
    frag = _fragment(body, attr_id, iri)
    now = now_iso()

    def patch(old: Instance) -> Instance:
        from hotoku.broker.model import TARGET_MEMBER

        kind = frag.get("type", old.get("type", "Property"))
        target = TARGET_MEMBER.get(kind, "value")
        base = {"type": kind, target: old.get(target)} if target not in frag else {}
        new = parse_instance({**base, **frag}, attr_id, ctx.terms, now=now)
        if "datasetId" not in frag and "datasetId" in old:
            new["datasetId"] = old["datasetId"]
        return merge_instance(old, new, now)

    ts = TemporalSql(ctx.services.store)
    with ctx.services.store.write() as tx:
        if not ts.modify_instance(tx.conn, ctx.tenant, entity_id, iri, seq, patch):
            raise ResourceNotFound(f"no instance {instance_id} of {attr_id} in {entity_id}", field="instanceId")
    return Response(status_code=204)


@router.delete("/temporal/entities/{entity_id}/attrs/{attr_id}/{instance_id}", status_code=204,
               summary="Delete one attribute instance")
def delete_instance(request: Request, entity_id: str, attr_id: str, instance_id: str) -> Response:
    ctx = make_ctx(request)
    ctx.require("write")
    check_uri(entity_id, "entityId")
    seq = parse_instance_id(instance_id)
    ts = TemporalSql(ctx.services.store)
    with ctx.services.store.write() as tx:
        if not ts.delete_instance(tx.conn, ctx.tenant, entity_id, ctx.terms.expand(attr_id), seq):
            raise ResourceNotFound(f"no instance {instance_id} of {attr_id} in {entity_id}", field="instanceId")
    return Response(status_code=204)


@router.delete("/temporal/entities/{entity_id}/attrs/{attr_id}", status_code=204,
               summary="Delete an attribute's temporal evolution")
def delete_temporal_attr(request: Request, entity_id: str, attr_id: str, datasetId: str | None = None,
                         deleteAll: bool = False) -> Response:
    ctx = make_ctx(request)
    ctx.require("write")
    check_uri(entity_id, "entityId")
    ts = TemporalSql(ctx.services.store)
    with ctx.services.store.write() as tx:
        n = ts.delete_attr(tx.conn, ctx.tenant, entity_id, ctx.terms.expand(attr_id), dataset_id=datasetId,
                           delete_all=deleteAll)
        if n == 0:
            raise ResourceNotFound(f"{entity_id} has no history of {attr_id}", field="attrId")
    return Response(status_code=204)


@router.delete("/temporal/entities/{entity_id}", status_code=204, summary="Delete a temporal entity")
def delete_temporal(request: Request, entity_id: str, type: str | None = None) -> Response:
    ctx = make_ctx(request)
    ctx.require("write")
    check_uri(entity_id, "entityId")
    ts = TemporalSql(ctx.services.store)
    with ctx.services.store.write() as tx:
        if ts.delete_entity(tx.conn, ctx.tenant, entity_id) == 0:
            raise ResourceNotFound(f"temporal entity {entity_id} not found", field="entityId")
    return Response(status_code=204)
