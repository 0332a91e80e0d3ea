"""The one error table of the HTTP API: each error class's status and type, and the JSON
body every refusal has (`{"error": {"type", "message"}}`)."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.messages import explain_errors, field_hints
from api.schemas import QueryRequest
from api.settings import Settings
from index import IndexBusy, IndexUnwritable, ModelUnavailable
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


def error_body(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, **extra}}


def add_error_handlers(app: FastAPI) -> None:
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
