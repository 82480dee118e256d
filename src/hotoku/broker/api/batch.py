"""/entityOperations: batch create, upsert, update, delete, merge, and query by POST."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from hotoku.broker import ops
from hotoku.broker.api.deps import Ctx, make_ctx, make_view, parse_options, read_json
from hotoku.broker.api.querying import build_filter, run_query
from hotoku.broker.errors import BadRequestData, NgsiError
from hotoku.broker.model import Entity, now_iso
from hotoku.broker.normalize import check_uri, parse_entity

router = APIRouter(prefix="/entityOperations", tags=["batch"])
ARRAY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
    "application/ld+json": {"schema": {"type": "array", "items": {"type": "object"}}}}}}
QUERY_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object"}}, "application/ld+json": {"schema": {"type": "object"}}}}}

Op = Callable[[Entity | None, Any, str], ops.Change]


def _error(eid: Any, exc: NgsiError) -> dict[str, Any]:
    return {"entityId": eid if isinstance(eid, str) else str(eid), "error": exc.problem()}


async def _batch(request: Request, op: Op, *, parse: Callable[[Ctx, Any, str], Any], ok_status: int,
                 created_status: int | None = None) -> Response:
    body = await read_json(request)
    if not isinstance(body, list):
        raise BadRequestData("the body must be an array", field="body")
    ctx = make_ctx(request, body)
    ctx.require("write")
    svc = ctx.services
    if len(body) > svc.settings.max_batch:
        raise BadRequestData(f"at most {svc.settings.max_batch} entities per batch", field="body")
    now = now_iso()
    errors: list[dict[str, Any]] = []
    parsed: list[tuple[str, Any]] = []
    for i, item in enumerate(body):
        eid = item.get("id", item.get("@id")) if isinstance(item, dict) else item
        try:
            parsed.append((check_uri(eid, f"[{i}].id"), parse(ctx, item, now)))
        except NgsiError as exc:
            errors.append(_error(eid, exc))
    success: list[str] = []
    created = False

    def transact() -> bool:
        """The locked part; runs in a worker thread so the next request's parsing overlaps it."""
        made = False
        with svc.store.write() as tx:
            state: dict[str, Entity | None] = dict(tx.load(ctx.tenant, list({e for e, _ in parsed})))
            changes: list[ops.Change] = []
            for eid, item in parsed:
                try:
                    ch = op(state.get(eid), item, now)
                except NgsiError as exc:
                    errors.append(_error(eid, exc))
                    continue
                made = made or (ch.before is None and ch.after is not None)
                state[eid] = ch.after
                changes.append(ch)
                success.append(eid)
            tx.apply(ctx.tenant, changes, svc.notifier.outbox_for(ctx.tenant, changes))
        svc.notifier.wake()  # on this thread: the notifier tracks what this thread queued
        return made

    if parsed:
        created = await run_in_threadpool(transact)
    if errors:
        return Response(orjson.dumps({"success": success, "errors": errors}), status_code=207,
                        media_type="application/json")
    if created_status and created:
        return Response(orjson.dumps(success), status_code=created_status, media_type="application/json")
    return Response(status_code=ok_status)


def _entity(ctx: Ctx, item: Any, now: str) -> Entity:
    return parse_entity(item, ctx.terms, now=now)


def _partial(ctx: Ctx, item: Any, now: str) -> Entity:
    return parse_entity(item, ctx.terms, now=now, require_type=False)


def _id_only(_ctx: Ctx, item: Any, _now: str) -> str:
    if not isinstance(item, str):
        raise BadRequestData("delete takes an array of entity ids", field="id")
    return item


@router.post("/create", status_code=201, openapi_extra=ARRAY, summary="Batch create")
async def batch_create(request: Request) -> Response:
    return await _batch(request, lambda ex, e, now: ops.create(ex, e), parse=_entity, ok_status=201,
                        created_status=201)


@router.post("/upsert", status_code=201, openapi_extra=ARRAY, summary="Batch upsert")
async def batch_upsert(request: Request, options: str | None = None) -> Response:
    opts = parse_options(options)
    if "update" in opts:
        op: Op = lambda ex, e, now: ops.update_entity(ex, e, now)  # noqa: E731
    else:
        op = lambda ex, e, now: ops.replace(ex, e, now, must_exist=False)  # noqa: E731
    return await _batch(request, op, parse=_entity, ok_status=204, created_status=201)


@router.post("/update", status_code=204, openapi_extra=ARRAY, summary="Batch update")
async def batch_update(request: Request, options: str | None = None) -> Response:
    no_overwrite = "noOverwrite" in parse_options(options)

    def op(ex: Entity | None, e: Entity, now: str) -> ops.Change:
        if ex is None:
            return ops.update_entity(ops._require(ex, e.id), e, now)
        return ops.update_entity(ex, e, now, no_overwrite=no_overwrite)

    return await _batch(request, op, parse=_partial, ok_status=204)


@router.post("/merge", status_code=204, openapi_extra=ARRAY, summary="Batch merge")
async def batch_merge(request: Request) -> Response:
    return await _batch(request, lambda ex, e, now: ops.merge_entity(ex, e, now), parse=_partial, ok_status=204)


@router.post("/delete", status_code=204, openapi_extra=ARRAY, summary="Batch delete")
async def batch_delete(request: Request) -> Response:
    return await _batch(request, lambda ex, eid, _now: ops.delete_entity(ex, eid), parse=_id_only, ok_status=204)


@router.post("/query", summary="Query entities (POST)", openapi_extra=QUERY_BODY)
async def post_query(request: Request, limit: int | None = Query(None, ge=0), offset: int = Query(0, ge=0),
                     count: bool = False, options: str | None = None, format: str | None = None,
                     lang: str | None = None) -> Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequestData("the body must be a Query object", field="body")
    ctx = make_ctx(request, body, geo=True)
    ctx.require("read")
    ents = body.get("entities") or []
    if not isinstance(ents, list):
        raise BadRequestData("entities must be an array of EntitySelectors", field="entities")
    ids = [s["id"] for s in ents if isinstance(s, dict) and "id" in s]
    types = ",".join(s["type"] for s in ents if isinstance(s, dict) and isinstance(s.get("type"), str)) or None
    patterns = [s["idPattern"] for s in ents if isinstance(s, dict) and "idPattern" in s]
    geoq = body.get("geoQ") or {}
    if not isinstance(geoq, dict):
        raise BadRequestData("geoQ must be an object", field="geoQ")
    f = build_filter(ctx, ids=ids or None, id_pattern="|".join(patterns) or None, types=types,
                     attrs=body.get("attrs"), q=body.get("q"), scope_q=body.get("scopeQ"),
                     georel=geoq.get("georel"), geometry=geoq.get("geometry"), coordinates=geoq.get("coordinates"),
                     geoproperty=geoq.get("geoproperty"))
    attrs = body.get("attrs")
    view = make_view(ctx, options=options, format=format, attrs=",".join(attrs) if isinstance(attrs, list) else None,
                     pick=None, omit=None, lang=lang or body.get("lang"), geometry_property=None)
    return run_query(ctx, f, view, limit=limit, offset=offset, count=count or "count" in parse_options(options))
