"""What the server tells chatbot builders (OpenAPI, /v1/tools, MCP's tool schemas) is what it
enforces: the same limits, the same error bodies, every route described."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import make_settings
from fastapi.testclient import TestClient
from mcp import Client

from api import create_app
from api.mcp import create_mcp_server
from api.schemas import ErrorResponse
from api.service import Service
from index import Embedder

LIMITS = {"max_k": 7, "default_k": 4, "max_question_chars": 60}


@pytest.fixture(scope="module")
def limited(seed_index: Path, embedder: Embedder) -> Iterator[TestClient]:
    """The app with limits other than the defaults, so that nothing agrees by accident."""
    settings = make_settings(seed_index, **LIMITS)
    with TestClient(create_app(settings, embedder=embedder)) as client:
        yield client


def mcp_search_schema(seed_index: Path, embedder: Embedder) -> dict[str, Any]:
    settings = make_settings(seed_index, **LIMITS)
    server = create_mcp_server(settings, lambda: Service(settings, embedder))

    async def listed() -> dict[str, Any]:
        async with Client(server) as client:
            tools = (await client.list_tools()).tools
            return next(t.input_schema for t in tools if t.name == "search_coding_passages")

    return anyio.run(listed)


def test_openapi_tools_and_mcp_state_the_limits_the_server_enforces(
    limited: TestClient, seed_index: Path, embedder: Embedder
) -> None:
    openapi = limited.get("/openapi.json").json()
    stated = {
        "openapi": openapi["components"]["schemas"]["QueryRequest"]["properties"],
        "tools": limited.get("/v1/tools").json()["tools"][0]["function"]["parameters"][
            "properties"
        ],
        "mcp": mcp_search_schema(seed_index, embedder)["properties"],
    }
    for where, props in stated.items():
        assert props["question"]["maxLength"] == 60, where
        assert props["question"]["minLength"] == 1, where
        assert (props["k"]["minimum"], props["k"]["maximum"]) == (1, 7), where
        assert props["k"]["default"] == 4, where
    # ... and what it enforces, at each edge.
    query = "fluoro code for an occipital nerve block "
    assert len(query) < 60
    ok = limited.post("/v1/query", json={"question": query.ljust(60, "x"), "k": 7})
    assert ok.status_code == 200 and len(ok.json()["results"]) <= 7
    assert len(limited.post("/v1/query", json={"question": query}).json()["results"]) == 4
    for refused in (
        {"question": query.ljust(61, "x")},
        {"question": query, "k": 8},
        {"question": query, "k": 0},
        {"question": ""},
    ):
        reply = limited.post("/v1/query", json=refused)
        assert reply.status_code == 422, refused
        ErrorResponse.model_validate(reply.json())  # the error body the schema states


def test_openapi_describes_every_route_and_its_error_bodies(limited: TestClient) -> None:
    openapi = limited.get("/openapi.json").json()
    paths = openapi["paths"]
    for path in (
        "/v1/query",
        "/v1/codes/{code}",
        "/v1/documents/{document_id}",
        "/v1/tools",
        "/v1/index",
        "/mcp",
        "/metrics",
        "/healthz",
        "/readyz",
    ):
        assert path in paths, path
    query = paths["/v1/query"]["post"]["responses"]
    for status in ("401", "413", "422", "429", "503"):
        assert query[status]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/ErrorResponse"
        ), status
        assert query[status]["description"]
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert "tools/call" in paths["/mcp"]["post"]["description"]
    # The hand-described routes are real.
    assert limited.get("/metrics").status_code == 200
    assert limited.get("/mcp").status_code == 405
