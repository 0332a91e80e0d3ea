"""JSON refusals that middleware sends before any route runs (401, 429).

They have the one error shape of the API, `{"error": {"type", "message"}}` (`ErrorResponse`),
so a client parses a refusal by the gate the same way as an error from a route.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.responses import JSONResponse

from api.schemas import ErrorDetail, ErrorResponse


def refusal(
    status: int, kind: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A JSON error reply in the API's error shape."""
    body = ErrorResponse(error=ErrorDetail(type=kind, message=message))
    return JSONResponse(body.model_dump(exclude_none=True), status, headers=dict(headers or {}))
