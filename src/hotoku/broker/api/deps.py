"""Per-request context: tenant, credentials, @context and content negotiation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from hotoku.broker.auth import Principal
from hotoku.broker.context import CORE_CONTEXT_URL, TermMap, link_header_context, make_link_header
from hotoku.broker.errors import BadRequestData, InvalidRequest, NotAcceptable, UnsupportedMediaType
from hotoku.broker.render import View

TENANT_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
JSON, LD_JSON, GEO_JSON = "application/json", "application/ld+json", "application/geo+json"
MERGE_PATCH = "application/merge-patch+json"


@dataclass
class Ctx:
    """What every handler needs to know about the request."""

    request: Request
    tenant: str
    principal: Principal
    terms: TermMap
    accept: str

    @property
    def services(self) -> Any:
        return self.request.app.state.services

    def require(self, scope: str) -> None:
        self.principal.require(scope, self.tenant)

    def respond(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        hdrs = dict(headers or {})
        if self.accept == JSON or self.accept == GEO_JSON:
            url = self.terms.link_url or CORE_CONTEXT_URL
            hdrs["Link"] = make_link_header(url)
        if self.tenant:
            hdrs["NGSILD-Tenant"] = self.tenant
        return Response(orjson.dumps(body), status_code=status, media_type=self.accept, headers=hdrs)

    @property
    def context_out(self) -> Any:
        return self.terms.context_value if self.accept == LD_JSON else None


def negotiate(accept_header: str | None, *, geo: bool = False) -> str:
    if not accept_header:
        return JSON
    offered = [JSON, LD_JSON] + ([GEO_JSON] if geo else [])
    best, best_q = None, -1.0
    for part in accept_header.split(","):
        media, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        candidates = offered if media in ("*/*", "application/*") else [media] if media in offered else []
        for c in candidates:
            if q > best_q:
                best, best_q = c, q
    if best is None or best_q <= 0:
        raise NotAcceptable(f"cannot produce {accept_header}; offer: {', '.join(offered)}", field="Accept")
    return best


def tenant_of(request: Request) -> str:
    tenant = request.headers.get("NGSILD-Tenant", "")
    if tenant and not TENANT_RE.match(tenant):
        raise BadRequestData("NGSILD-Tenant must be 1-64 letters, digits, '-' or '_'", field="NGSILD-Tenant")
    return tenant


def make_ctx(request: Request, body: Any = None, *, geo: bool = False) -> Ctx:
    """Build the request context; ``body`` is the parsed JSON body, if any."""
    svc = request.app.state.services
    principal = svc.auth.authenticate(request.headers.get("Authorization"))
    ctype = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    link = request.headers.get("Link")
    ctx_value: Any = None
    if body is not None and ctype == LD_JSON:
        if link:
            raise BadRequestData("with Content-Type application/ld+json the @context goes in the body, "
                                 "not in a Link header", field="Link")
        items = body if isinstance(body, list) else [body]
        ctxs = [i.get("@context") for i in items if isinstance(i, dict)]
        if ctxs and any(c is None for c in ctxs):
            raise BadRequestData("application/ld+json payloads must carry @context", field="@context")
        ctx_value = ctxs[0] if ctxs else None  # an array of ids (batch delete) needs no context
    else:
        ctx_value = link_header_context(link)
    terms = svc.contexts.resolve(ctx_value)
    return Ctx(request, tenant_of(request), principal, terms, negotiate(request.headers.get("Accept"), geo=geo))


async def read_json(request: Request, *, allow: tuple[str, ...] = (JSON, LD_JSON)) -> Any:
    ctype = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype not in allow:
        raise UnsupportedMediaType(f"Content-Type must be one of {', '.join(allow)}", field="Content-Type")
    raw = await request.body()
    if not raw:
        raise InvalidRequest("the request body is empty", field="body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}", field="body") from None
    if b"\\u0000" in raw and _has_nul(body):  # JSON spells NUL only so; PostgreSQL text cannot hold it
        raise BadRequestData("the body contains a NUL character (\\u0000)", field="body")
    return body


def _has_nul(node: Any) -> bool:
    if isinstance(node, str):
        return "\x00" in node
    if isinstance(node, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in node.items())
    if isinstance(node, list):
        return any(_has_nul(v) for v in node)
    return False


def parse_options(options: str | None) -> set[str]:
    return {o.strip() for o in options.split(",") if o.strip()} if options else set()


def make_view(ctx: Ctx, *, options: str | None, format: str | None, attrs: str | None, pick: str | None,
              omit: str | None, lang: str | None, geometry_property: str | None) -> View:
    opts = parse_options(options)
    fmt = format or ("keyValues" if "keyValues" in opts or "simplified" in opts else
                     "concise" if "concise" in opts else "normalized")
    if fmt == "simplified":
        fmt = "keyValues"
    if fmt not in ("normalized", "concise", "keyValues"):
        raise BadRequestData(f"format must be normalized, concise or keyValues, not {fmt!r}", field="format")
    if pick and attrs:
        raise BadRequestData("give pick or attrs, not both", field="pick")
    keep = pick or attrs
    expand = ctx.terms.expand
    return View(
        fmt=fmt,
        sys_attrs="sysAttrs" in opts,
        attrs=frozenset(expand(a) for a in keep.split(",") if a and a not in ("id", "type")) if keep else None,
        omit=frozenset(expand(a) for a in omit.split(",")) if omit else frozenset(),
        lang=lang,
        geometry_property=geometry_property or "location",
        geojson=ctx.accept == GEO_JSON,
    )
