"""The HTTP service: the FastAPI app, its middleware and the routes of the JSON API (the error
table is api/errors.py; the request-body guard api/body.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import metrics, tools
from api.accesslog import AccessLog
from api.auth import ApiKeyGuard
from api.body import RequestBody
from api.docs import mount_docs
from api.documents import DocumentOut, document_view
from api.errors import add_error_handlers, without_roots
from api.mcp import mount_mcp
from api.openapi import error_responses, install_openapi
from api.ratelimit import RateLimit, TokenBuckets
from api.replies import code_reply, query_reply
from api.schemas import (
    CodeInfo,
    Health,
    IndexInfo,
    QueryRequest,
    QueryResponse,
    ReloadOut,
)
from api.service import Service
from api.settings import Settings
from api.web import mount_page
from index import Embedder
from ingest import CptqaError

log = logging.getLogger(__name__)


def public_documents(documents: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The manifest's documents with each `path` relative to the corpus folder (or, for a file
    indexed from elsewhere, its name alone)."""
    corpus = settings.corpus_dir.resolve()
    shown = {}
    for doc_id, record in documents.items():
        path = Path(record.get("path", doc_id))
        relative = path.relative_to(corpus) if path.is_relative_to(corpus) else Path(path.name)
        shown[doc_id] = {**record, "path": relative.as_posix()}
    return shown


ERROR_RESPONSES = error_responses()


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def create_app_from_environment() -> FastAPI:
    """The app configured from CPTQA_* alone: what each `cptqa serve --workers N` process runs."""
    from api.accesslog import configure_access_log

    settings = Settings()
    configure_access_log(settings.access_log)
    return create_app(settings)


def create_app(settings: Settings | None = None, embedder: Embedder | None = None) -> FastAPI:
    """The FastAPI app; the model and index load once, when the app starts."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(settings, embedder)
        try:
            service.load()
        except CptqaError as exc:
            log.error("index not loaded: %s", exc)
        app.state.service = service
        service.start_prefetch()
        watcher = None
        if settings.reload_interval > 0:
            watcher = asyncio.create_task(_watch_snapshots(service, settings.reload_interval))
        try:
            async with app.state.mcp.session_manager.run():
                yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    app = FastAPI(
        title="cptqa",
        summary="Answers medical coders' questions with passages and CPT/HCPCS codes.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served from the package by api/docs.py, not from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.add_middleware(
        RequestBody, limit=settings.max_body_bytes, timeout=settings.body_read_timeout
    )
    _add_safety_middleware(app, settings)
    add_error_handlers(app)
    _add_routes(app)
    tools.add_tools_route(app)
    metrics.add_metrics_route(app)
    app.state.mcp = mount_mcp(app, settings)
    mount_page(app)
    mount_docs(app)
    install_openapi(app, settings)
    return app


_LOCAL_CLIENTS = frozenset({"127.0.0.1", "::1", "localhost", "testclient"})


async def _watch_snapshots(service: Service, interval: float) -> None:
    """Reload when `cptqa ingest` publishes a new snapshot; a failed load keeps the old one."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(service.check_health)
            published = service.published_snapshot()
            if published is not None and published != service.serving_snapshot_id:
                await asyncio.to_thread(service.reload, False)
        except CptqaError:
            pass  # logged by reload; /readyz says why
        except Exception:  # a watcher must never die silently
            log.exception("snapshot watcher failed; will try again")


def _add_safety_middleware(app: FastAPI, settings: Settings) -> None:
    """Key, rate limit, CORS, metrics and access log; the last added runs first."""
    if settings.api_key is not None:
        app.add_middleware(ApiKeyGuard, key=settings.api_key.get_secret_value())
    if settings.rate_limit_per_minute > 0:
        buckets = TokenBuckets(settings.rate_limit_per_minute, settings.rate_limit_burst)
        app.add_middleware(RateLimit, buckets=buckets)
    if settings.cors_origins:
        # Outside the key check, so that preflights (which carry no key) and refusals get
        # their CORS headers; no cookies are used, so credentials stay off.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "X-API-Key",
                "X-Request-ID",
                "Mcp-Protocol-Version",
                "Mcp-Session-Id",
            ],
            expose_headers=["X-Request-ID", "Retry-After"],
            max_age=600,
        )
    app.state.metrics_registry = metrics.metrics_registry(
        lambda: getattr(app.state, "service", None)
    )
    http_metrics = metrics.HttpMetrics(app.state.metrics_registry)
    app.add_middleware(metrics.MetricsMiddleware, metrics=http_metrics, router=app.router)
    if settings.access_log:
        app.add_middleware(AccessLog, router=app.router)


def _add_routes(app: FastAPI) -> None:
    @app.post("/v1/query", response_model=QueryResponse, responses=ERROR_RESPONSES)
    def query(body: QueryRequest, request: Request) -> Response:
        """The passages that answer a question, their codes, and the answer's ranked codes."""
        # Serialised once, here: returning the model would validate and dump it again.
        result = query_reply(get_service(request), body.question, body.k, body.explain)
        return Response(result.model_dump_json(), media_type="application/json")

    @app.get("/v1/codes/{code}", response_model=CodeInfo, responses=ERROR_RESPONSES)
    def code_info(code: str, service: ServiceDep) -> CodeInfo:
        """What the corpus says about a code: descriptors with their source, passages, related
        codes. 422 for a malformed code; 404 with suggestions for one the corpus lacks."""
        return service.read(lambda searcher: code_reply(searcher, code))

    @app.get(
        "/v1/documents/{document_id:path}", response_model=DocumentOut, responses=ERROR_RESPONSES
    )
    def document(document_id: str, service: ServiceDep) -> DocumentOut:
        """One document's whole text with its passages' offsets and codes (a passage's
        `document` is its id). 404 for an id the index does not hold."""
        return service.read(lambda searcher: document_view(searcher, document_id))

    @app.get("/healthz", response_model=Health)
    def healthz() -> Health:
        """The process is up (says nothing of the index)."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, responses=ERROR_RESPONSES)
    def readyz(service: ServiceDep) -> Health:
        """An index is loaded and queries can be answered (503 otherwise, with the reason)."""
        snapshot = service.snapshot
        reason = service.reload_error or snapshot.fallback_reason or None
        if reason:
            reason = without_roots(reason, service.settings)
        return Health(status="ready", snapshot=snapshot.id, reason=reason)

    @app.post("/v1/admin/reload", response_model=ReloadOut, responses=ERROR_RESPONSES)
    def reload(request: Request, service: ServiceDep) -> ReloadOut:
        """Serve the newest published snapshot now (after `cptqa ingest`). Needs the API key;
        without one configured, only clients on this machine may call it."""
        settings: Settings = request.app.state.settings
        client = request.client.host if request.client else ""
        if settings.api_key is None and client not in _LOCAL_CLIENTS:
            raise StarletteHTTPException(403, "reload is allowed from this machine only")
        report = service.reload()
        error = without_roots(report.error, settings) if report.error else None
        return ReloadOut(**{**report.__dict__, "error": error})

    @app.get("/v1/index", response_model=IndexInfo, responses=ERROR_RESPONSES)
    def index_info(service: ServiceDep) -> IndexInfo:
        """The loaded snapshot's manifest: model, chunker settings, documents and counts."""
        snapshot = service.snapshot
        manifest = snapshot.manifest
        return IndexInfo(
            snapshot=snapshot.id,
            created=manifest["created"],
            model=manifest["model"],
            dimension=manifest["dimension"],
            format_version=manifest["format_version"],
            counts=manifest["counts"],
            chunker=manifest["chunker"],
            documents=public_documents(manifest["documents"], service.settings),
            fallback_reason=without_roots(snapshot.fallback_reason, service.settings),
        )
