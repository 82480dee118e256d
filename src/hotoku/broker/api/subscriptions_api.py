"""/subscriptions: create, query, retrieve, update and delete subscriptions (clause 5.8, 6.10, 6.11)."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import text

from hotoku.broker.api.deps import LD_JSON, MERGE_PATCH, Ctx, make_ctx, parse_options, read_json
from hotoku.broker.errors import (
    AlreadyExists,
    BadRequestData,
    NgsiError,
    ResourceNotFound,
    TooManyResults,
    Unauthorized,
)
from hotoku.broker.model import now_iso
from hotoku.broker.normalize import Terms, check_uri
from hotoku.broker.subscriptions import STATUS_FIELDS, merge_subscription, parse_subscription

router = APIRouter(tags=["subscriptions"])
_SCHEMA = {"schema": {"type": "object"}}
OBJ = {"requestBody": {"required": True, "content": {"application/json": _SCHEMA, LD_JSON: _SCHEMA}}}
PATCH_BODY = {"requestBody": {"required": True, "content": {
    "application/json": _SCHEMA, LD_JSON: _SCHEMA, MERGE_PATCH: _SCHEMA}}}
DEFAULT_LIMIT = 20
COLS = "id, body, status, created_at, modified_at"


def _loads(v: Any) -> Any:
    return orjson.loads(v) if isinstance(v, str | bytes) else v


def _json_param(ctx: Ctx) -> str:
    return "CAST(:{} AS jsonb)" if ctx.services.store.dialect == "postgresql" else ":{}"


def _check_future(body: dict[str, Any], now: str) -> None:
    if body.get("expiresAt") and body["expiresAt"] <= now:
        raise BadRequestData("expiresAt: must be in the future", field="expiresAt")


def _changed(ctx: Ctx) -> None:
    """Let this process's notifier see the change at once (others refresh within a second)."""
    invalidate = getattr(ctx.services.notifier, "invalidate", None)
    if invalidate is not None:
        invalidate(ctx.tenant)


def _compact_body(body: dict[str, Any], terms: Terms) -> dict[str, Any]:
    c = terms.compact
    out = {k: v for k, v in body.items() if k not in ("qTerms", "@context", "notification")}
    if body.get("entities"):
        out["entities"] = [
            {k: (c(v) if k == "type" and "typeTerms" not in sel else v) for k, v in sel.items() if k != "typeTerms"}
            for sel in body["entities"]]
    if body.get("watchedAttributes"):
        out["watchedAttributes"] = [c(a) for a in body["watchedAttributes"]]
    if body.get("geoQ"):
        out["geoQ"] = {**body["geoQ"], "geoproperty": c(body["geoQ"]["geoproperty"])}
    return out


def render_subscription(body: dict[str, Any], status: dict[str, Any], terms: Terms, *, now: str,
                        created_at: str | None = None, modified_at: str | None = None,
                        sys_attrs: bool = False) -> dict[str, Any]:
    """A stored subscription as the API shows it, in the subscriber's terms, with its delivery status."""
    out = _compact_body(body, terms)
    out.setdefault("isActive", True)
    expires = body.get("expiresAt")
    out["status"] = "expired" if expires and expires <= now else "active" if out["isActive"] else "paused"
    n = dict(body["notification"])
    if n.get("attributes"):
        n["attributes"] = [terms.compact(a) for a in n["attributes"]]
    n.update({k: status[k] for k in STATUS_FIELDS if status.get(k) is not None})
    if status.get("status"):
        n["status"] = status["status"]
    out["notification"] = n
    if sys_attrs:
        out["createdAt"], out["modifiedAt"] = created_at, modified_at
    return out


def _require_read(ctx: Ctx) -> None:
    """Endpoints may carry credentials (receiverInfo headers, mqtt://user:pass@): never shown anonymously."""
    ctx.require("read")
    if ctx.principal.role == "anonymous":
        raise Unauthorized("reading subscriptions needs a bearer token", field="Authorization")


def _render(ctx: Ctx, row: Any, sys_attrs: bool) -> tuple[dict[str, Any], Any]:
    """One row in its subscriber's terms; also returns those terms, for the Link header."""
    body = _loads(row.body)
    context = body.get("jsonldContext") or body.get("@context")
    try:
        terms = ctx.services.contexts.resolve(context)
    except NgsiError:
        terms = ctx.terms
    out = render_subscription(body, _loads(row.status) or {}, terms, now=now_iso(), created_at=row.created_at,
                              modified_at=row.modified_at, sys_attrs=sys_attrs)
    if ctx.accept == LD_JSON:
        out["@context"] = context
    return out, terms


@router.post("/subscriptions", status_code=201, openapi_extra=OBJ, summary="Create a subscription")
async def create_subscription(request: Request) -> Response:
    raw = await read_json(request)
    ctx = make_ctx(request, raw)
    ctx.require("subscribe")
    body = parse_subscription(raw, ctx.terms)
    now = now_iso()
    _check_future(body, now)
    j = _json_param(ctx)
    with ctx.services.store.write() as tx:
        added = tx.conn.execute(text(
            "INSERT INTO subscriptions (tenant, id, body, status, created_at, modified_at) VALUES "
            f"(:t, :id, {j.format('body')}, {j.format('status')}, :now, :now) ON CONFLICT (tenant, id) DO NOTHING"),
            {"t": ctx.tenant, "id": body["id"], "body": orjson.dumps(body).decode(), "status": "{}", "now": now},
        ).rowcount
    if not added:
        raise AlreadyExists(f"subscription {body['id']} already exists", field="id")
    _changed(ctx)
    return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/subscriptions/{body['id']}"})


@router.get("/subscriptions", summary="Query subscriptions")
def query_subscriptions(request: Request, limit: int | None = Query(None, ge=0),
                        offset: int = Query(0, ge=0, le=2**62),
                        count: bool = False, options: str | None = None) -> Response:
    ctx = make_ctx(request)
    _require_read(ctx)
    limit = DEFAULT_LIMIT if limit is None else limit
    max_limit = ctx.services.settings.max_limit
    if limit > max_limit:
        raise TooManyResults(f"limit {limit} is above the maximum {max_limit}", field="limit")
    opts = parse_options(options)
    with ctx.services.store.read() as conn:
        rows = conn.execute(text(f"SELECT {COLS} FROM subscriptions WHERE tenant = :t ORDER BY id "
                                 "LIMIT :limit OFFSET :offset"), {"t": ctx.tenant, "limit": limit, "offset": offset})
        items = [_render(ctx, r, "sysAttrs" in opts)[0] for r in rows]
        headers = {}
        if count or "count" in opts:
            n = conn.execute(text("SELECT count(*) FROM subscriptions WHERE tenant = :t"), {"t": ctx.tenant}).scalar()
            headers["NGSILD-Results-Count"] = str(n)
    return ctx.respond(items, headers=headers)


def _check_id(sid: str) -> None:
    check_uri(sid, "subscriptionId")
    if any(ord(c) < 0x20 for c in sid):
        raise BadRequestData("subscriptionId must not contain control characters", field="subscriptionId")


def _load(ctx: Ctx, conn: Any, sid: str, *, lock: bool = False) -> Any:
    _check_id(sid)
    for_update = " FOR UPDATE" if lock and ctx.services.store.dialect == "postgresql" else ""
    row = conn.execute(text(f"SELECT {COLS} FROM subscriptions WHERE tenant = :t AND id = :id{for_update}"),
                       {"t": ctx.tenant, "id": sid}).first()
    if row is None:
        raise ResourceNotFound(f"subscription {sid} not found", field="subscriptionId")
    return row


@router.get("/subscriptions/{subscription_id}", summary="Retrieve a subscription")
def retrieve_subscription(request: Request, subscription_id: str, options: str | None = None) -> Response:
    ctx = make_ctx(request)
    _require_read(ctx)
    with ctx.services.store.read() as conn:
        row = _load(ctx, conn, subscription_id)
    body, terms = _render(ctx, row, "sysAttrs" in parse_options(options))
    return dataclasses.replace(ctx, terms=terms).respond(body)


@router.patch("/subscriptions/{subscription_id}", status_code=204, openapi_extra=PATCH_BODY,
              summary="Update a subscription")
async def update_subscription(request: Request, subscription_id: str) -> Response:
    raw = await read_json(request, allow=("application/json", LD_JSON, MERGE_PATCH))
    ctx = make_ctx(request, raw)
    ctx.require("subscribe")
    patch = parse_subscription(raw, ctx.terms, partial=True)
    if patch.pop("id", subscription_id) != subscription_id:
        raise BadRequestData("the id in the body differs from the id in the path", field="id")
    if not patch:
        raise BadRequestData("the fragment changes nothing", field="body")
    now = now_iso()
    if "expiresAt" in patch:
        _check_future(patch, now)
    j = _json_param(ctx)
    with ctx.services.store.write() as tx:
        row = _load(ctx, tx.conn, subscription_id, lock=True)
        merged = merge_subscription(_loads(row.body), patch)
        tx.conn.execute(text(f"UPDATE subscriptions SET body = {j.format('body')}, modified_at = :now "
                             "WHERE tenant = :t AND id = :id"),
                        {"body": orjson.dumps(merged).decode(), "now": now, "t": ctx.tenant, "id": subscription_id})
    _changed(ctx)
    return Response(status_code=204)


@router.delete("/subscriptions/{subscription_id}", status_code=204, summary="Delete a subscription")
def delete_subscription(request: Request, subscription_id: str) -> Response:
    ctx = make_ctx(request)
    ctx.require("subscribe")
    _check_id(subscription_id)
    params = {"t": ctx.tenant, "id": subscription_id}
    with ctx.services.store.write() as tx:
        gone = tx.conn.execute(text("DELETE FROM subscriptions WHERE tenant = :t AND id = :id"), params).rowcount
        tx.conn.execute(text("DELETE FROM outbox WHERE tenant = :t AND subscription_id = :id"), params)
    if not gone:
        raise ResourceNotFound(f"subscription {subscription_id} not found", field="subscriptionId")
    _changed(ctx)
    return Response(status_code=204)
