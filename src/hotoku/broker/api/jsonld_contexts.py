"""/jsonldContexts: contexts the broker hosts or has cached (clause 5.13)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import text

from hotoku.broker.api.deps import make_ctx, read_json
from hotoku.broker.errors import BadRequestData, ResourceNotFound
from hotoku.broker.model import now_iso

router = APIRouter(prefix="/jsonldContexts", tags=["contexts"])
HOSTED_PATH = "/ngsi-ld/v1/jsonldContexts/"


def lookup_stored(store: Any) -> Any:
    """The resolver's hook: serve hosted contexts from the database, never over HTTP."""

    def lookup(url: str) -> dict[str, Any] | None:
        if HOSTED_PATH not in url:
            return None
        cid = url.rsplit("/", 1)[-1]
        with store.read() as conn:
            row = conn.execute(text("SELECT body FROM jsonld_contexts WHERE id = :id"), {"id": cid}).first()
        if row is None:
            return None
        return orjson.loads(row.body) if isinstance(row.body, (str, bytes)) else row.body

    return lookup


@router.post("", status_code=201, summary="Add a context to host", openapi_extra={"requestBody": {
    "required": True, "content": {"application/json": {"schema": {"type": "object"}},
                                  "application/ld+json": {"schema": {"type": "object"}}}}})
async def add_context(request: Request) -> Response:
    body = await read_json(request)
    ctx = make_ctx(request)
    ctx.require("manage")
    if not isinstance(body, dict) or not isinstance(body.get("@context"), (dict, list, str)):
        raise BadRequestData("the body must be an object with an @context member", field="@context")
    ctx.services.contexts.resolve(body["@context"])  # reject what cannot be processed before storing it
    cid = uuid.uuid4().hex
    url = str(request.base_url).rstrip("/") + HOSTED_PATH + cid
    pg = ctx.services.store.dialect == "postgresql"
    with ctx.services.store.write() as tx:
        tx.conn.execute(text("INSERT INTO jsonld_contexts (id, url, kind, body, created_at, hits) VALUES "
                             f"(:id, :url, 'Hosted', {'CAST(:body AS jsonb)' if pg else ':body'}, :c, 0)"),
                        {"id": cid, "url": url, "body": orjson.dumps(body).decode(), "c": now_iso()})
    return Response(status_code=201, headers={"Location": url})


@router.get("", summary="List contexts")
def list_contexts(request: Request, details: bool = False, kind: str | None = None) -> Response:
    ctx = make_ctx(request)
    ctx.require("read")
    sql = "SELECT id, url, kind, created_at FROM jsonld_contexts"
    params: dict[str, Any] = {}
    if kind:
        sql += " WHERE kind = :k"
        params["k"] = kind
    with ctx.services.store.read() as conn:
        rows = conn.execute(text(sql + " ORDER BY created_at"), params).all()
    if details:
        return ctx.respond([{"URL": r.url, "localId": f"urn:ngsi-ld:jsonldContext:{r.id}", "kind": r.kind,
                             "createdAt": r.created_at} for r in rows])
    return ctx.respond([r.url for r in rows])


@router.get("/{context_id}", summary="Serve a hosted context")
def get_context(request: Request, context_id: str) -> Response:
    with request.app.state.services.store.read() as conn:
        row = conn.execute(text("SELECT body FROM jsonld_contexts WHERE id = :id OR url = :id"),
                           {"id": context_id.removeprefix("urn:ngsi-ld:jsonldContext:")}).first()
    if row is None:
        raise ResourceNotFound(f"no context {context_id}", field="contextId")
    body = row.body if isinstance(row.body, (str, bytes)) else orjson.dumps(row.body)
    return Response(body, media_type="application/ld+json")


@router.delete("/{context_id}", status_code=204, summary="Delete a hosted context")
def delete_context(request: Request, context_id: str) -> Response:
    ctx = make_ctx(request)
    ctx.require("manage")
    cid = context_id.removeprefix("urn:ngsi-ld:jsonldContext:")
    with ctx.services.store.write() as tx:
        row = tx.conn.execute(text("SELECT url FROM jsonld_contexts WHERE id = :id"), {"id": cid}).first()
        if row is None:
            raise ResourceNotFound(f"no context {context_id}", field="contextId")
        tx.conn.execute(text("DELETE FROM jsonld_contexts WHERE id = :id"), {"id": cid})
    ctx.services.contexts.invalidate(row.url)
    return Response(status_code=204)
