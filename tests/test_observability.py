"""Access logs (one JSON line per request, with a request id) and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import make_settings
from fastapi.testclient import TestClient
from live import LiveServer
from prometheus_client.parser import text_string_to_metric_families

from api import create_app
from index import Embedder

EXAMPLE = "which fluoro code for occipital nerve block"


@pytest.fixture()
def fresh(seed_index: Path, embedder: Embedder) -> Iterator[TestClient]:
    """An app of its own, so its counters start at zero."""
    with TestClient(create_app(make_settings(seed_index), embedder=embedder)) as test_client:
        yield test_client


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "cptqa.access"]


# --- access log --------------------------------------------------------------------------------


def test_each_request_logs_one_json_line_with_the_callers_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cptqa.access")
    response = client.get("/v1/codes/77002", headers={"X-Request-ID": "chat-42.turn-7"})
    assert response.headers["x-request-id"] == "chat-42.turn-7"
    (line,) = access_lines(caplog)
    assert line["request_id"] == "chat-42.turn-7"
    assert (line["method"], line["path"], line["route"]) == (
        "GET",
        "/v1/codes/77002",
        "/v1/codes/{code}",
    )
    assert line["status"] == 200
    assert line["duration_ms"] > 0
    assert {"ts", "client"} <= set(line)


@pytest.mark.parametrize("given", [None, "", "x" * 200, "has spaces", "new\nline"])
def test_a_missing_or_odd_request_id_is_replaced_by_a_new_one(
    client: TestClient, caplog: pytest.LogCaptureFixture, given: str | None
) -> None:
    caplog.set_level(logging.INFO, logger="cptqa.access")
    headers = {} if given is None else {"X-Request-ID": given}
    first = client.get("/healthz", headers=headers).headers["x-request-id"]
    second = client.get("/healthz", headers=headers).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second
    assert [line["request_id"] for line in access_lines(caplog)] == [first, second]


def test_errors_and_refusals_are_logged_with_their_status(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cptqa.access")
    client.post("/v1/query", json={"question": ""})
    client.post("/v1/query", content=b"x" * 100_000, headers={"content-type": "application/json"})
    client.get("/nowhere")
    assert [(line["route"], line["status"]) for line in access_lines(caplog)] == [
        ("/v1/query", 422),
        ("/v1/query", 413),
        ("unmatched", 404),
    ]


def test_the_access_log_never_holds_the_question(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client.post("/v1/query", json={"question": "patient Jane Roe occipital block"})
    assert "Jane Roe" not in caplog.text


def test_the_access_log_can_be_turned_off(
    seed_index: Path, embedder: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cptqa.access")
    app = create_app(make_settings(seed_index, access_log=False), embedder=embedder)
    with TestClient(app) as quiet:
        quiet.get("/healthz")
    assert access_lines(caplog) == []


# --- metrics -----------------------------------------------------------------------------------


def samples(test_client: TestClient) -> dict[tuple[str, frozenset], float]:
    response = test_client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def labels(**pairs: str) -> frozenset:
    return frozenset(pairs.items())


def test_metrics_count_and_time_requests_by_route_template_and_status(fresh: TestClient) -> None:
    fresh.post("/v1/query", json={"question": EXAMPLE})
    fresh.post("/v1/query", json={"question": EXAMPLE, "k": 2})
    fresh.post("/v1/query", json={"question": " "})
    for code in ("77002", "77003", "27447", "99999"):
        fresh.get(f"/v1/codes/{code}")
    fresh.get("/nowhere/at/all")
    seen = samples(fresh)
    total = "cptqa_http_requests_total"
    assert seen[(total, labels(method="POST", route="/v1/query", status="200"))] == 2
    assert seen[(total, labels(method="POST", route="/v1/query", status="422"))] == 1
    assert seen[(total, labels(method="GET", route="/v1/codes/{code}", status="200"))] == 2
    assert seen[(total, labels(method="GET", route="/v1/codes/{code}", status="404"))] == 1
    assert seen[(total, labels(method="GET", route="/v1/codes/{code}", status="422"))] == 1
    assert seen[(total, labels(method="GET", route="unmatched", status="404"))] == 1
    assert not any("27447" in str(key) or "nowhere" in str(key) for key in seen)
    histogram = "cptqa_http_request_duration_seconds"
    ok = labels(method="POST", route="/v1/query", status="200")
    assert seen[(f"{histogram}_count", ok)] == 2
    assert seen[(f"{histogram}_sum", ok)] > 0
    assert seen[(f"{histogram}_bucket", ok | labels(le="+Inf"))] == 2


def test_metrics_report_the_size_of_the_loaded_index(fresh: TestClient) -> None:
    counts = fresh.get("/v1/index").json()["counts"]
    seen = samples(fresh)
    assert seen[("cptqa_index_loaded", frozenset())] == 1
    assert seen[("cptqa_index_chunks", frozenset())] == counts["chunks"] > 10
    assert seen[("cptqa_index_documents", frozenset())] == counts["documents"] == 2
    assert seen[("cptqa_index_bytes", frozenset())] > 0
    assert ("process_resident_memory_bytes", frozenset()) in seen


def test_metrics_say_when_no_index_is_loaded(tmp_path: Path, embedder: Embedder) -> None:
    app = create_app(make_settings(tmp_path / "none"), embedder=embedder)
    with TestClient(app) as empty:
        seen = samples(empty)
    assert seen[("cptqa_index_loaded", frozenset())] == 0
    assert seen[("cptqa_index_chunks", frozenset())] == 0


def test_a_served_request_is_one_bare_json_line_on_stderr(keyed_server: LiveServer) -> None:
    """`cptqa serve` prints access lines as bare JSON, uvicorn's own access log off."""
    response = httpx.post(
        f"{keyed_server.base}/v1/query",
        json={"question": EXAMPLE},
        headers={**keyed_server.headers(), "X-Request-ID": "live-check-7"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "live-check-7"
    refused = httpx.get(f"{keyed_server.base}/v1/index", timeout=30)
    assert refused.status_code == 401
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [json.loads(x) for x in keyed_server.log_text().splitlines() if x.startswith("{")]
        ours = [x for x in lines if x["request_id"] == "live-check-7"]
        theirs = [x for x in lines if x["path"] == "/v1/index" and x["status"] == 401]
        if ours and theirs:
            break
        time.sleep(0.2)
    assert len(ours) == 1 and theirs
    assert ours[0]["route"] == "/v1/query" and ours[0]["status"] == 200
    assert ours[0]["client"] == "127.0.0.1"
    assert '"POST /v1/query HTTP/1.1" 200' not in keyed_server.log_text()  # no uvicorn line
