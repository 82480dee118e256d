"""The broker's FastAPI application: routers, error mapping, limits, lifecycle."""

from __future__ import annotations

import gc
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hotoku.broker.api import batch, discovery, entities, jsonld_contexts, subscriptions_api, temporal_api
from hotoku.broker.auth import Authenticator
from hotoku.broker.context import ContextResolver
from hotoku.broker.errors import BadRequestData, NgsiError, PayloadTooLarge
from hotoku.broker.notifier import SubscriptionNotifier
from hotoku.broker.notify_base import NoNotifier, Notifier
from hotoku.broker.store.sql import SqlStore
from hotoku.settings import Settings

log = logging.getLogger("hotoku.broker")
PREFIX = "/ngsi-ld/v1"


@dataclass
class Services:
    settings: Settings
    store: SqlStore
    contexts: ContextResolver
    auth: Authenticator
    notifier: Any


def problem(exc: NgsiError) -> Response:
    return Response(orjson.dumps(exc.problem()), status_code=exc.status, media_type="application/json")


class RequestGuard:
    """Refuse NUL characters in the URL, and bodies above the limit whether or not Content-Length tells their size."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
            # NUL cannot be stored in PostgreSQL text or used in a JSON path: refuse it up front
            return await problem(BadRequestData("the URL contains a NUL character (%00)", field="url"))(
                scope, receive, send)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                return await problem(PayloadTooLarge(f"the body is larger than {self.max_bytes} bytes",
                                                     field="body"))(scope, receive, send)
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return msg

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await problem(PayloadTooLarge(f"the body is larger than {self.max_bytes} bytes",
                                          field="body"))(scope, receive, send)


class _TooLarge(Exception):
    pass


def build_services(settings: Settings, notifier_factory: Any = None) -> Services:
    store = SqlStore(settings.resolved_database_url())
    store.migrate()
    contexts = ContextResolver(lookup_stored=jsonld_contexts.lookup_stored(store),
                               timeout=settings.context_fetch_timeout_s)
    auth = Authenticator(store, admin_token=settings.admin_token,
                         jwt_secret=settings.jwt_secret or secrets.token_hex(32),
                         anonymous_read=settings.anonymous_read)
    svc = Services(settings, store, contexts, auth, NoNotifier())
    svc.notifier = notifier_factory(svc) if notifier_factory else default_notifier(svc)
    return svc


def default_notifier(svc: Services) -> Notifier:
    return SubscriptionNotifier(svc.store, svc.settings, svc.contexts)


def create_broker_app(settings: Settings, services: Services | None = None) -> FastAPI:
    svc = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # A batch of 1,000 entities allocates ~100k short-lived containers; the default GC
        # thresholds would scan the heap dozens of times per batch. Freeze start-up objects
        # and collect young garbage less often.
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        svc.notifier.start()
        try:
            yield
        finally:
            svc.notifier.stop()
            svc.store.dispose()

    app = FastAPI(title="hotoku NGSI-LD broker", version="0.1.0", lifespan=lifespan, docs_url=None,
                  redoc_url=None, description="The town's data linkage platform (都市OS), ETSI GS CIM 009 v1.8.")
    app.state.services = svc
    for r in (entities.router, batch.router, discovery.router, jsonld_contexts.router, subscriptions_api.router,
              temporal_api.router):
        app.include_router(r, prefix=PREFIX)

    @app.exception_handler(NgsiError)
    async def _ngsi(_req: Request, exc: NgsiError) -> Response:
        return problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> Response:
        err = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in err.get("loc", []) if p not in ("query", "path", "header", "body")]
        field = ".".join(loc) or "request"
        return problem(BadRequestData(f"{field}: {err.get('msg', 'invalid')}", field=field))

    @app.exception_handler(Exception)
    async def _internal(_req: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return problem(NgsiError(f"internal error: {type(exc).__name__}"))

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok", "database": svc.store.dialect}

    app.add_middleware(RequestGuard, max_bytes=settings.max_body_bytes)
    return app
