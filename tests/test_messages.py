"""Refusals say, in words, what was wrong and what to send: over HTTP, and to MCP callers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import make_settings
from fastapi.testclient import TestClient
from mcp import Client

from api.mcp import create_mcp_server
from api.service import Service
from index import Embedder

# Marks of a message written for a programmer of the framework, not for the caller.
RAW = ("JSON decode error", "Input should", "Field required", "errors.pydantic.dev", "`")

HTTP_CASES = [
    (b"not json", ["not valid JSON", '"question"']),
    (b'{"question": ', ["not valid JSON"]),
    (b"[1, 2]", ["must be a JSON object", '"question"']),
    (b"{}", ["question is missing", "the question as text"]),
    (b'{"question": "x", "k": "3"}', ['k must be a whole number, not "3"', "from 1 to 50"]),
    (b'{"question": "x", "k": 0}', ["k is 0", "from 1 to 50"]),
    (b'{"question": 5}', ["question must be text, not 5"]),
    (b'{"question": "x", "explain": "yes"}', ["explain must be true or false"]),
    (b'{"question": "x", "color": 1}', ["color is not a field", "question, k, explain"]),
    (b'{"question": "   "}', ["question is empty", "type a question"]),
]


@pytest.mark.parametrize(("body", "said"), HTTP_CASES)
def test_http_refusals_say_what_was_wrong_and_what_to_send(
    client: TestClient, body: bytes, said: list[str]
) -> None:
    reply = client.post("/v1/query", content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 422
    message = reply.json()["error"]["message"]
    for words in said:
        assert words in message, message
    for raw in RAW:
        assert raw not in message, message
    assert not message.startswith("0:"), message


def test_an_unknown_document_says_where_ids_come_from(client: TestClient) -> None:
    reply = client.get("/v1/documents/nope.txt")
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert error["type"] == "unknown_document"
    assert "nope.txt" in error["message"] and "/v1/index" in error["message"]


MCP_CASES = [
    ({"question": 5}, ["question must be text, not 5"]),
    ({"question": "x", "k": "3"}, ['k must be a whole number, not "3"']),
    ({"question": "x", "k": 99}, ["k is out of range (99)", "from 1 to 50"]),
    ({"question": "x", "colour": "red"}, ["colour is not a field", "question, k, explain"]),
    ({}, ["question is missing"]),
]


@pytest.mark.parametrize(("arguments", "said"), MCP_CASES)
def test_mcp_refusals_are_sentences_not_a_validation_dump(
    seed_index: Path, embedder: Embedder, arguments: dict[str, Any], said: list[str]
) -> None:
    settings = make_settings(seed_index)
    service = Service(settings, embedder)
    service.load()
    server = create_mcp_server(settings, lambda: service)

    async def call() -> Any:
        async with Client(server) as mcp_client:
            return await mcp_client.call_tool("search_coding_passages", arguments)

    result = anyio.run(call)
    assert result.is_error
    message = result.content[0].text
    assert "bad arguments" in message
    for words in said:
        assert words in message, message
    for raw in RAW:
        assert raw not in message, message
    assert not message.startswith("0:"), message
