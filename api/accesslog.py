"""Structured access logs: one JSON line per request, with a request id that the reply echoes.

Each request gets an id: the caller's `X-Request-ID` when it is a plain token of at most 128
characters (so a chatbot's or a proxy's id follows the request through), else a new random one.
The reply carries it back in `X-Request-ID`, and the line logged to the `cptqa.access` logger
has: ts, request_id, method, path, route (the route's template, e.g. `/v1/codes/{code}`),
status, duration_ms and client. Bodies, questions and headers are never logged: a coder's
question may name a patient.

`cptqa serve` prints these lines alone on stderr (`configure_access_log`), in place of
uvicorn's own access log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute, Match, Router

from api.auth import ASGIApp, Receive, Scope, Send

access_log = logging.getLogger("cptqa.access")

REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


def route_template(router: Router, scope: Scope) -> str:
    """The template of the route that serves the request's path, or 'unmatched'.

    Metrics and logs group by it: `/v1/codes/{code}` is one route, not one per code asked.
    After routing, the router has put the route in the scope; for a request refused before
    routing (401, 413, 429) the routes are matched here.
    """
    route = scope.get("route")
    if route is None:
        partial = None
        routes: list[BaseRoute] = router.routes
        for candidate in routes:
            match, child = candidate.matches(scope)
            found = child.get("route", candidate)
            if match is Match.FULL:
                route = found
                break
            if match is Match.PARTIAL and partial is None:
                partial = found
        route = route or partial
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


def request_id_of(scope: Scope) -> str:
    """The caller's X-Request-ID if it is a plain token, else a new random id."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"x-request-id":
            given = value.decode("latin-1").strip()
            if REQUEST_ID.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


class AccessLog:
    """Give each request an id, echo it in `X-Request-ID`, log one JSON line when it ends."""

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before it answers

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            record = {
                "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "request_id": request_id,
                "method": scope["method"],
                "path": scope["path"],
                "route": route_template(self.router, scope),
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "client": (scope.get("client") or ("", 0))[0],
            }
            access_log.info(json.dumps(record))


def configure_access_log(enabled: bool) -> None:
    """Print access lines as bare JSON on stderr (or not at all), apart from other logs."""
    access_log.propagate = False
    access_log.handlers.clear()
    if not enabled:
        access_log.disabled = True
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
