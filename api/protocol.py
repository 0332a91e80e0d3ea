"""uvicorn's httptools protocol with the bounds it lacks: header size and count, header time.

uvicorn bounds headers only in its h11 protocol (`h11_max_incomplete_event_size`); with
httptools (which we keep: 1.05 ms against 1.4 ms a round trip, see pyproject.toml) a 50 MB
header was read into memory, and a connection that never finished its headers was held
forever (its keep-alive timer starts only after a first response). This subclass adds:

- a request line plus headers over `max_header_bytes`, or more than `max_headers` headers:
  431, and the connection closed, before the app sees the request;
- headers not complete `header_timeout` seconds after the connection opened (or after the
  request began): the connection is closed, and that is logged.

Keep-alive idle time and the connection cap are uvicorn's own settings (`timeout_keep_alive`,
`limit_concurrency`); `api.cli` sets them. The limits reach each worker process on the uvicorn
`Config` (`config.connection_limits`), which uvicorn hands to every worker it starts.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int = 16_384
    max_headers: int = 100
    header_timeout: float = 10.0


class BoundedHttpTools(HttpToolsProtocol):
    """HttpToolsProtocol refusing oversized headers (431) and closing slow ones."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.limits: ConnectionLimits = getattr(config, "connection_limits", ConnectionLimits())
        self._in_headers = True
        self._header_bytes = 0  # request line and headers, as parsed
        self._received = 0  # bytes received since the request began (a header in flight)
        self._headers = 0
        self._refused = False
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        began_in_headers = self._in_headers
        super().data_received(data)
        if began_in_headers and self._in_headers and not self._refused:
            self._received += len(data)
            if self._received > self.limits.max_header_bytes:
                self._refuse_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._header_bytes = self._headers = self._received = 0
        self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        self._header_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        self._headers += 1
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._received = 0
        self._cancel_header_timer()
        too_big = self._header_bytes > self.limits.max_header_bytes
        if too_big or self._headers > self.limits.max_headers:
            self._refuse_headers()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    def _refuse_headers(self) -> None:
        self._refused = True
        self._cancel_header_timer()
        limits = self.limits
        log.warning(
            "refused a request from %s with headers over %d bytes or %d fields (431)",
            self.client[0] if self.client else "?",
            limits.max_header_bytes,
            limits.max_headers,
        )
        message = (
            f"request headers over {limits.max_header_bytes} bytes or {limits.max_headers} fields"
        )
        body = json.dumps({"error": {"type": "headers_too_large", "message": message}}).encode()
        self.transport.write(
            STATUS_LINE[431]
            + b"content-type: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\nconnection: close\r\n\r\n"
            + body
        )
        self.transport.close()

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(
                self.limits.header_timeout, self._headers_timed_out
            )

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if self._in_headers and not self.transport.is_closing():
            log.warning(
                "closed a connection from %s: no complete request headers in %g s",
                self.client[0] if self.client else "?",
                self.limits.header_timeout,
            )
            self.transport.close()
