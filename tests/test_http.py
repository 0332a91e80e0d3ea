"""The HTTP API on the real app (TestClient), the real model and the real index."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_settings
from fastapi.testclient import TestClient

from api import create_app
from index import Embedder

EXAMPLE = "which fluoro code for occipital nerve block"


def assert_error(response, status: int, kind: str) -> str:  # noqa: ANN001
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["type"] == kind
    assert body["error"]["message"]
    return body["error"]["message"]


def test_query_returns_ranked_passages_with_codes_and_answer_codes(client: TestClient) -> None:
    response = client.post("/v1/query", json={"question": EXAMPLE, "k": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["question"] == EXAMPLE
    assert [r["rank"] for r in body["results"]] == [1, 2, 3]
    answering = [r for r in body["results"] if "for non-spinal procedures" in r["text"]]
    assert answering
    assert "77002" in [c["code"] for c in answering[0]["codes"]]
    assert body["codes"] and body["codes"][0]["evidence"]
    assert "77002" in [c["code"] for c in body["codes"]]
    assert body["took_ms"] > 0
    for result in body["results"]:
        assert result["end"] - result["start"] == len(result["text"])
        assert result["document"].endswith(".txt")


def test_default_k_is_five(client: TestClient) -> None:
    body = client.post("/v1/query", json={"question": "what is fluoroscopy"}).json()
    assert len(body["results"]) == 5


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_empty_or_blank_question_is_422(client: TestClient, question: str) -> None:
    message = assert_error(
        client.post("/v1/query", json={"question": question}), 422, "invalid_input"
    )
    assert "empty" in message


def test_question_over_the_length_limit_is_422_and_says_the_limit(client: TestClient) -> None:
    message = assert_error(
        client.post("/v1/query", json={"question": "fluoro " * 200}), 422, "invalid_input"
    )
    assert "1000" in message


@pytest.mark.parametrize("k", [0, -1, 51, 10_000])
def test_k_out_of_range_is_422(client: TestClient, k: int) -> None:
    message = assert_error(
        client.post("/v1/query", json={"question": EXAMPLE, "k": k}), 422, "invalid_input"
    )
    assert "from 1 to 50" in message


@pytest.mark.parametrize("k", ["three", 2.5, [3]])
def test_k_of_the_wrong_type_is_422(client: TestClient, k: object) -> None:
    assert_error(client.post("/v1/query", json={"question": EXAMPLE, "k": k}), 422, "invalid_input")


def test_body_that_is_not_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/v1/query", content=b"question=fluoro", headers={"content-type": "application/json"}
    )
    assert_error(response, 422, "invalid_input")


def test_body_without_question_is_422_and_names_the_field(client: TestClient) -> None:
    message = assert_error(client.post("/v1/query", json={"k": 3}), 422, "invalid_input")
    assert "question" in message


def test_question_that_is_not_a_string_is_422(client: TestClient) -> None:
    assert_error(client.post("/v1/query", json={"question": 77002}), 422, "invalid_input")


def test_huge_body_is_413(client: TestClient) -> None:
    response = client.post("/v1/query", json={"question": "x" * 200_000})
    assert_error(response, 413, "payload_too_large")


def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    assert_error(client.get("/v1/nope"), 404, "not_found")


def test_health_ready_and_index_info(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "snapshot": None, "reason": None}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["snapshot"]
    info = client.get("/v1/index").json()
    assert info["model"] == "all-MiniLM-L6-v2" and info["dimension"] == 384
    assert info["snapshot"] == ready["snapshot"]
    assert info["counts"]["documents"] == 2 and info["counts"]["chunks"] > 10


def test_openapi_describes_the_query_endpoint(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "/v1/query" in schema["paths"]
    assert "QueryResponse" in schema["components"]["schemas"]


def test_no_index_means_503_with_what_to_run(tmp_path: Path, embedder: Embedder) -> None:
    app = create_app(make_settings(tmp_path / "empty-index"), embedder=embedder)
    with TestClient(app) as empty:
        assert empty.get("/healthz").status_code == 200
        assert "cptqa ingest" in assert_error(empty.get("/readyz"), 503, "index_missing")
        assert_error(empty.post("/v1/query", json={"question": EXAMPLE}), 503, "index_missing")


def test_corrupt_index_is_503_with_a_clear_message(index_copy: Path, embedder: Embedder) -> None:
    for path in (index_copy / "snapshots").rglob("sentence_vectors.npy"):
        path.write_bytes(b"garbage")
    with TestClient(create_app(make_settings(index_copy), embedder=embedder)) as broken:
        message = assert_error(broken.get("/readyz"), 503, "index_corrupt")
        assert "sentence_vectors.npy" in message
