"""The OpenAPI schema as the running server enforces it.

FastAPI's schema is made from the pydantic models, which cannot know the limits that come
from `Settings` (CPTQA_MAX_QUESTION_CHARS, CPTQA_MAX_K, CPTQA_DEFAULT_K). Here the request's
properties are taken from the same place as `/v1/tools` and the MCP tools (api/tools.py), so
the three agree with each other and with the checks in `api.service.check_query`. The routes
that are not FastAPI routes (`/mcp`, `/metrics`) are described by hand.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.settings import Settings
from api.tools import SEARCH_PASSAGES, argument_schema

ERROR = {"$ref": "#/components/schemas/ErrorResponse"}

# Each status the API refuses with, and when (the README's error table, shorter).
ERROR_STATUSES: dict[int, str] = {
    401: "CPTQA_API_KEY is set and the request lacks the key or has the wrong one.",
    404: "An unknown code (with `suggestions`), document or route.",
    413: "The body is over CPTQA_MAX_BODY_BYTES.",
    422: "Bad input: the message says what was wrong and what to send.",
    429: "This client is over the rate limit; Retry-After says when to try again.",
    503: "No usable index yet; the message says what to run.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the error body for each status, described."""
    from api.schemas import ErrorResponse

    chosen = statuses or tuple(ERROR_STATUSES)
    return {s: {"model": ErrorResponse, "description": ERROR_STATUSES[s]} for s in chosen}


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Make `app.openapi()` return the schema with the server's limits and extra routes."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            _limits(schema, settings)
            schema["paths"].update(_hand_made_paths())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _limits(schema: dict[str, Any], settings: Settings) -> None:
    request = schema["components"]["schemas"]["QueryRequest"]
    arguments = argument_schema(SEARCH_PASSAGES, settings)
    for name, prop in arguments["properties"].items():
        request["properties"][name] = {"title": name.capitalize(), **prop}
    request["additionalProperties"] = False


def _hand_made_paths() -> dict[str, Any]:
    return {
        "/mcp": {
            "post": {
                "summary": "MCP over streamable HTTP",
                "description": "The Model Context Protocol (stateless, JSON replies): the tools "
                "`search_coding_passages` and `lookup_code`, with the same arguments as "
                "`/v1/tools` states. Send JSON-RPC 2.0 requests (`initialize`, `tools/list`, "
                "`tools/call`) with `Accept: application/json, text/event-stream`. `GET /mcp` "
                "is 405: the server sends no events.",
                "tags": ["chatbots"],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "200": {"description": "A JSON-RPC reply."},
                    "401": {"description": ERROR_STATUSES[401], "content": _error()},
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "description": "Requests by route and status, their latency, and the index "
                "loaded, in the Prometheus text format.",
                "tags": ["operations"],
                "responses": {
                    "200": {
                        "description": "Prometheus text format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": {"description": ERROR_STATUSES[401], "content": _error()},
                },
            }
        },
    }


def _error() -> dict[str, Any]:
    return {"application/json": {"schema": ERROR}}
