"""The FastAPI application: ``create_app(settings)``.

Two FHIR bases (``/fhir/R4``, ``/fhir/R5``) served by the same routers (the release is a path
parameter), OpenAPI docs at ``/docs``, a liveness probe at ``/healthz``.  Every error leaves as an
OperationOutcome in the client's format: FhirError from the handlers, the store's errors, FastAPI's
own 404/405/422, and anything unexpected (500, logged with its traceback, none of it sent).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapter.server.context import RELEASES, ServerContext
from adapter.server.fhir_io import FhirError, error_response, lenient_format
from adapter.server.routers import export, metadata, operations, read, write
from adapter.server.settings import Settings
from adapter.store import Store, StoreError, StoreUnavailable, VersionConflict

log = logging.getLogger("trial2fhir.server")

_HTTP_CODES = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}


def _version_of(request: Request) -> str:
    parts = request.url.path.split("/")
    return RELEASES.get(parts[2], "4.0") if len(parts) > 2 and parts[1] == "fhir" else "4.0"


def _error(request: Request, error: FhirError) -> Response:
    version = _version_of(request)
    return error_response(error, lenient_format(request, version), version)


async def _fhir_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, FhirError)
    return _error(request, error)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    code = _HTTP_CODES.get(error.status_code, "processing")
    detail = error.detail if isinstance(error.detail, str) else "request failed"
    if error.status_code == 404:
        detail = f"no such endpoint: {request.method} {request.url.path}"
    elif error.status_code == 405:
        detail = f"{request.method} is not supported on {request.url.path}"
    headers = dict(error.headers or {})
    return _error(request, FhirError(error.status_code, detail, code, headers=headers))


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    parts = []
    for item in error.errors()[:5]:
        location = ".".join(str(p) for p in item.get("loc", ()))
        parts.append(f"{location}: {item.get('msg')}")
    return _error(request, FhirError(400, "invalid request: " + "; ".join(parts), "invalid"))


async def _store_error(request: Request, error: Exception) -> Response:
    if isinstance(error, VersionConflict):
        return _error(request, FhirError(412, str(error), "conflict"))
    if isinstance(error, StoreUnavailable):
        log.warning("store unavailable: %s", error)
        return _error(request, FhirError(503, str(error), "transient", headers={"Retry-After": "1"}))
    log.error("store error on %s %s: %s", request.method, request.url.path, error)
    return _error(request, FhirError(500, "the database failed to answer; the error is logged", "exception"))


async def _unexpected(request: Request, error: Exception) -> Response:
    log.exception("internal error on %s %s", request.method, request.url.path)
    return _error(request, FhirError(500, "internal server error; the details are in the server log", "exception"))


class HeadersMiddleware:
    """Pure ASGI (cheap): ``X-Content-Type-Options: nosniff`` on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-content-type-options", b"nosniff")]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    """The application for ``settings`` (default: from the environment); ``store`` overrides ``settings.db``."""
    settings = settings or Settings()
    context = ServerContext(settings, store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        context.close()

    app = FastAPI(
        title="trial2fhir FHIR server",
        summary="Clinical-trial study definitions as FHIR R4 and R5 (ResearchStudy, PlanDefinition, Group, ...)",
        description="FHIR REST API. Bodies are FHIR JSON (application/fhir+json) or XML (application/fhir+xml), "
        "chosen with Accept or _format; errors are OperationOutcome resources. The CapabilityStatement of each "
        "base (/fhir/R4/metadata, /fhir/R5/metadata) lists every resource, interaction, search parameter and "
        "operation.",
        version=_version(),
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.context = context
    app.add_exception_handler(FhirError, _fhir_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(HeadersMiddleware)
    if settings.gzip:
        from starlette.middleware.gzip import GZipMiddleware

        app.add_middleware(GZipMiddleware, minimum_size=1400)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Accept",
                "If-Match",
                "If-None-Match",
                "If-None-Exist",
                "If-Modified-Since",
                "Prefer",
            ],
            expose_headers=["ETag", "Location", "Last-Modified", "Content-Location"],
        )

    @app.get("/healthz", tags=["service"], summary="liveness and database check")
    def healthz() -> Any:
        try:
            context.store.is_ingested("healthz")
        except StoreError as error:
            return JSONResponse({"status": "unavailable", "detail": str(error)}, status_code=503)
        return {"status": "ok", "bases": [f"/fhir/{r}" for r in RELEASES]}

    # Literal paths (metadata, operations) first: /fhir/R4/$convert must not be taken for a type.
    app.include_router(metadata.router)
    app.include_router(operations.router)
    app.include_router(export.router)
    app.include_router(read.router)
    app.include_router(write.router)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (several worker processes read the settings from the environment)."""
    return create_app(Settings())


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trial2fhir")
    except PackageNotFoundError:
        return "0.0.0"
