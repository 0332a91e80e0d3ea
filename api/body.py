"""The request-body guard: a body is read whole, bounded in size and time, before the app
sees any of it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
from fastapi.responses import JSONResponse

from api.errors import error_body

log = logging.getLogger(__name__)

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
