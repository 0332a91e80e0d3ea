"""The HTTP service: FastAPI app, the one error table, and the routes of the JSON API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import metrics, tools
from api.accesslog import AccessLog
from api.auth import ApiKeyGuard
from api.docs import mount_docs
from api.documents import DocumentOut, document_view
from api.mcp import mount_mcp
from api.messages import explain_errors, field_hints
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
from index import Embedder, IndexBusy, IndexUnwritable, ModelUnavailable
from ingest import (
    CorpusError,
    CptqaError,
    IndexCorrupt,
    IndexIncompatible,
    IndexMissing,
    InvalidInput,
    UnknownCode,
    UnknownDocument,
)

log = logging.getLogger(__name__)

# The one table from error class to HTTP status; subclasses inherit their parent's row.
STATUS_BY_ERROR: dict[type[CptqaError], int] = {
    InvalidInput: 422,
    CorpusError: 422,
    UnknownCode: 404,
    UnknownDocument: 404,
    IndexBusy: 409,
    IndexUnwritable: 503,
    IndexMissing: 503,
    IndexIncompatible: 503,
    IndexCorrupt: 503,
    ModelUnavailable: 503,
}


def error_type(exc: CptqaError) -> str:
    """'InvalidInput' -> 'invalid_input'."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def status_of(exc: CptqaError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]  # type: ignore[index]
    return 500


# Statuses of the framework's own refusals, as the README's error table has them. FastAPI
# answers a body it cannot parse as JSON (nested too deeply, a number of 4,300+ digits, not
# UTF-8, compressed) with 400; to a caller that is a bad input like any other: 422.
HTTP_STATUS_KINDS: dict[int, tuple[int, str]] = {
    400: (422, "invalid_input"),
    404: (404, "not_found"),
    405: (405, "method_not_allowed"),
    413: (413, "payload_too_large"),
}


def unreadable_body(exc: Exception) -> str:
    """Why FastAPI could not read a JSON body, in words a caller can act on."""
    cause = exc.__cause__
    if isinstance(cause, RecursionError):
        why = "it is nested too deeply"
    elif isinstance(cause, UnicodeDecodeError):
        why = "it is not UTF-8 text (compressed bodies are not accepted)"
    elif isinstance(cause, ValueError) and "digits" in str(cause):
        why = "it has a number too long to read"
    else:
        why = "it cannot be parsed"
    return f"the body is not JSON that can be read: {why}; send a JSON object"


def without_roots(text: str, settings: Settings) -> str:
    """`text` with the index and corpus folders' absolute paths taken out: replies name files
    relative to those roots ("snapshots/<id>/dense.faiss"), and only the log has the rest, so
    an unauthenticated /readyz does not tell a caller where the server keeps its files."""
    for root, name in ((settings.index_dir, "the index folder"), (settings.corpus_dir, "corpus")):
        for form in {str(root.resolve()), str(root.absolute()), str(root)}:
            if form not in (".", ""):
                text = text.replace(form + "/", "").replace(form, name)
    return text


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


def error_body(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, **extra}}


ERROR_RESPONSES = error_responses()


Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


class RequestBody:
    """Read the whole request body before the app sees any of it, bounded in size and time.

    Over `limit` bytes (declared or streamed, chunked included) is 413; a body not complete
    `timeout` seconds after the headers (a Content-Length of 100 and 16 bytes sent) is 408.
    The app then gets the body in one message, so no parser ever meets a half-read one.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], limit: int, timeout: float) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _refuse(scope, receive, send, 413, "payload_too_large", self._too_large)
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)  # no route reads a body; /mcp's GET streams
            return
        parts: list[bytes] = []
        with anyio.move_on_after(self.timeout) as waited:
            parts = await self._read(receive)
        if waited.cancelled_caught:
            log.warning("a request body did not arrive in %g s; refused with 408", self.timeout)
            await _refuse(scope, receive, send, 408, "request_timeout", self._too_slow)
            return
        if sum(map(len, parts)) > self.limit:
            await _refuse(scope, receive, send, 413, "payload_too_large", self._too_large)
            return
        replayed = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(parts), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(
        self, receive: Callable[[], Awaitable[MutableMapping[str, Any]]]
    ) -> list[bytes]:
        """The body's parts; stops as soon as they pass the limit (or the client leaves)."""
        parts: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return parts
            parts.append(message.get("body", b""))
            seen += len(parts[-1])
            if seen > self.limit or not message.get("more_body", False):
                return parts

    @property
    def _too_large(self) -> str:
        return f"request body is over the {self.limit}-byte limit"

    @property
    def _too_slow(self) -> str:
        return f"request body did not arrive within {self.timeout:g} s"


async def _refuse(
    scope: Any, receive: Any, send: Any, status: int, kind: str, message: str
) -> None:
    headers = {"connection": "close"} if status == 408 else None
    response = JSONResponse(error_body(kind, message), status_code=status, headers=headers)
    await response(scope, receive, send)


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
    _add_error_handlers(app)
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


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CptqaError)
    async def cptqa_error(request: Request, exc: CptqaError) -> JSONResponse:
        extra = {"suggestions": exc.suggestions} if isinstance(exc, UnknownCode) else {}
        message = without_roots(exc.message, request.app.state.settings)
        return JSONResponse(error_body(error_type(exc), message, **extra), status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        settings: Settings = request.app.state.settings
        hints = field_hints(settings.max_k, settings.max_question_chars)
        message = explain_errors(exc.errors(), hints, QueryRequest.model_fields)
        return JSONResponse(error_body("invalid_input", message), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status, kind = HTTP_STATUS_KINDS.get(exc.status_code, (exc.status_code, "http_error"))
        message = unreadable_body(exc) if exc.status_code == 400 else str(exc.detail)
        return JSONResponse(error_body(kind, message), status)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body("internal_error", "internal error; the server log has the details"), 500
        )


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
