"""`GET /metrics`: Prometheus text format, through the official `prometheus-client`.

Series:
- `cptqa_http_requests_total{method,route,status}`: requests answered, refusals included.
- `cptqa_http_request_duration_seconds{method,route,status}`: a latency histogram.
- `cptqa_index_loaded`, `cptqa_index_documents`, `cptqa_index_chunks`, `cptqa_index_codes`,
  `cptqa_index_bytes`: the snapshot being served, read at scrape time.
- the `process_*` series of the client library (memory, CPU, open files).

`route` is the route's template (`/v1/codes/{code}`), never the raw path, so the number of
series stays fixed whatever clients ask. Each app has its own registry: two apps in one process
(as in the tests) do not share counts. When an API key is set, /metrics needs it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Router

from api.accesslog import route_template
from api.auth import ASGIApp, Receive, Scope, Send
from api.service import Service
from ingest import CptqaError

# Seconds; a query takes tens of milliseconds, a cold one or a big k a few hundred.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    """The request counter and latency histogram of one app."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("method", "route", "status")
        self.requests = Counter(
            "cptqa_http_requests", "HTTP requests answered.", labels, registry=registry
        )
        self.latency = Histogram(
            "cptqa_http_request_duration_seconds",
            "Time from request to the end of the reply.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route, str(status)).observe(seconds)


class IndexCollector(Collector):
    """Size of the snapshot being served, read when Prometheus scrapes."""

    def __init__(self, service: Callable[[], Service | None]) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        counts: dict[str, int] = {}
        size = 0
        service = self.service()
        try:
            if service is None:
                raise LookupError
            snapshot = service.snapshot
            counts = dict(snapshot.manifest.get("counts", {}))
            size = sum(p.stat().st_size for p in snapshot.directory.rglob("*") if p.is_file())
        except (CptqaError, LookupError, OSError):
            pass
        yield GaugeMetricFamily(
            "cptqa_index_loaded",
            "1 when an index is loaded and queries can be answered.",
            value=1 if counts else 0,
        )
        for name, what in (
            ("documents", "Documents in the loaded index."),
            ("chunks", "Chunks (passages) in the loaded index."),
            ("codes", "Distinct codes cited in the loaded index."),
        ):
            yield GaugeMetricFamily(f"cptqa_index_{name}", what, value=counts.get(name, 0))
        yield GaugeMetricFamily(
            "cptqa_index_bytes", "Bytes on disk of the loaded snapshot.", value=size
        )


def metrics_registry(service: Callable[[], Service | None]) -> CollectorRegistry:
    """A registry with the process and index collectors; `HttpMetrics` adds the HTTP series."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    registry.register(IndexCollector(service))
    return registry


class MetricsMiddleware:
    """Count and time every request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics, router: Router) -> None:
        self.app = app
        self.metrics = metrics
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_counted(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            self.metrics.observe(
                scope["method"],
                route_template(self.router, scope),
                status,
                time.perf_counter() - started,
            )


def metrics(request: Request) -> Response:
    """Prometheus text exposition of this app's registry."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def add_metrics_route(app: FastAPI) -> None:
    """Serve `GET /metrics` from the app's `state.metrics_registry`."""
    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
