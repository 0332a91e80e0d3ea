"""A per-client rate limit: one token bucket per client address (429 when it is empty).

Each client address may make `burst` requests at once and `per_minute` requests a minute
sustained. The default is generous: it stops a chatbot stuck in a loop from taking every core
from the other users, not a person searching. Set `CPTQA_RATE_LIMIT_PER_MINUTE=0` to turn it
off (for instance when a gateway in front already limits).

The address is the one uvicorn gives: the TCP peer, or the client named in X-Forwarded-For when
the peer is a proxy that uvicorn trusts (`--forwarded-allow-ips`, 127.0.0.1 by default). Behind
an untrusted proxy every user shares the proxy's bucket, so raise the limit or trust the proxy.
Health probes are never limited. Buckets live in memory, per process; the least recently seen
clients are forgotten past `max_clients`, which costs them at most a fresh, full bucket.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from api.auth import ASGIApp, Receive, Scope, Send
from api.refusals import refusal

UNLIMITED_PATHS = frozenset({"/healthz", "/readyz"})


class TokenBuckets:
    """Token buckets by key; `take(key)` spends one token or says how long until there is one."""

    def __init__(
        self,
        per_minute: int,
        burst: int,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """0.0 if a token was spent, else the seconds until the next token."""
        now = self.clock()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait


class RateLimit:
    """Answer 429 with Retry-After to a client whose bucket is empty."""

    def __init__(self, app: ASGIApp, buckets: TokenBuckets) -> None:
        self.app = app
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("unknown", 0)
        wait = self.buckets.take(str(client[0]))
        if wait <= 0.0:
            await self.app(scope, receive, send)
            return
        seconds = max(1, math.ceil(wait))
        response = refusal(
            429,
            "rate_limited",
            f"too many requests from this address; try again in {seconds} s",
            {"Retry-After": str(seconds)},
        )
        await response(scope, receive, send)
