"""The optional API key (`CPTQA_API_KEY`): who may call the API.

When a key is set, every request needs it, sent as `Authorization: Bearer <key>` or
`X-API-Key: <key>`, except the health probes (an orchestrator has no key) and the web page with
its files (the page asks the user for the key and sends it with each call it makes). A missing
or wrong key is 401 in the API's error shape. Keys are compared with `hmac.compare_digest`, whose
time does not depend on where a guess first differs from the key.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from api.refusals import refusal

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/"})
OPEN_PREFIXES = ("/page/", "/docs-assets/")


def is_open(path: str) -> bool:
    """Paths anyone may fetch, key or not: health probes and the web page."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def presented_keys(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    """The keys a request carries: the Bearer token and the X-API-Key header, if present."""
    keys = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                keys.append(token.strip())
        elif lowered == b"x-api-key" and value.strip():
            keys.append(value.strip())
    return keys


class ApiKeyGuard:
    """Refuse requests without the API key (401); open paths pass."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        keys = presented_keys(scope.get("headers", []))
        # Every presented key is compared, so the time spent does not say which header matched.
        matches = [hmac.compare_digest(key, self.key) for key in keys]
        if any(matches):
            await self.app(scope, receive, send)
            return
        message = (
            "the API key is wrong"
            if keys
            else "this server needs an API key: send `Authorization: Bearer <key>` or "
            "`X-API-Key: <key>`"
        )
        response = refusal(
            401, "unauthorized", message, {"WWW-Authenticate": 'Bearer realm="cptqa"'}
        )
        await response(scope, receive, send)
