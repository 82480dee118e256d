"""Shared by GET /entities and POST /entityOperations/query: filters in, page out."""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response

from hotoku.broker import geo, qlang
from hotoku.broker.api.deps import Ctx
from hotoku.broker.errors import BadRequestData, TooManyResults
from hotoku.broker.normalize import check_pattern
from hotoku.broker.render import View, render_collection
from hotoku.broker.store.sqlparts import Filter, parse_type_expr

DEFAULT_LIMIT = 20


def build_filter(ctx: Ctx, *, ids: str | list[str] | None = None, id_pattern: str | None = None,
                 types: str | None = None, attrs: str | list[str] | None = None, q: str | None = None,
                 scope_q: str | None = None, georel: str | None = None, geometry: str | None = None,
                 coordinates: Any = None, geoproperty: str | None = None) -> Filter:
    expand = ctx.terms.expand
    id_list = ids.split(",") if isinstance(ids, str) else ids
    attr_list = attrs.split(",") if isinstance(attrs, str) else attrs
    geoq = geo.parse_geo_query(georel, geometry, coordinates, geoproperty)
    if geoq is not None:
        geoq = _with_expanded_property(geoq, expand(geoq.geoproperty))
    if id_pattern:
        check_pattern(id_pattern, "idPattern")
    return Filter(
        ids=[i for i in id_list if i] if id_list else None,
        id_pattern=id_pattern,
        types=parse_type_expr(types, expand) if types else None,
        attrs_any=[expand(a) for a in attr_list if a and a not in ("id", "type")] if attr_list else None,
        q=qlang.parse_q(q) if q else None,
        scope_q=qlang.parse_scope_q(scope_q) if scope_q else None,
        geo=geoq,
        expand=expand,
    )


def _with_expanded_property(q: geo.GeoQuery, iri: str) -> geo.GeoQuery:
    import dataclasses

    return dataclasses.replace(q, geoproperty=iri)


def run_query(ctx: Ctx, f: Filter, view: View, *, limit: int | None, offset: int, count: bool) -> Response:
    svc = ctx.services
    max_limit = svc.settings.max_limit
    if limit is None:
        limit = DEFAULT_LIMIT
    if limit > max_limit:
        raise TooManyResults(f"limit {limit} is above the maximum {max_limit}", field="limit")
    if limit == 0 and not count:
        raise BadRequestData("limit=0 is only allowed together with count=true", field="limit")
    if not (f.ids or f.id_pattern or f.types or f.attrs_any or f.q or f.geo or f.scope_q):
        raise BadRequestData("give at least one of type, attrs, q, geoQ, id, idPattern or scopeQ", field="type")
    page = svc.store.query(ctx.tenant, f, limit=limit, offset=offset, count=count)
    headers = {}
    if page.count is not None:
        headers["NGSILD-Results-Count"] = str(page.count)
    return ctx.respond(render_collection(page.entities, ctx.terms, view, ctx.context_out), headers=headers)
