"""MCP: both transports driven by the SDK's own client against the real index.

stdio: `cptqa mcp` as a subprocess, as a desktop chat client starts it. Streamable HTTP: `/mcp`
of a real `cptqa serve` with an API key. Each tool must return what the HTTP API returns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from conftest import CORPUS, make_settings
from fastapi.testclient import TestClient
from live import LiveServer
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from api.mcp import create_mcp_server
from api.service import Service
from api.tools import TOOLS, function_definitions
from index import Embedder

EXAMPLE = "which fluoro code for occipital nerve block"
TOOL_NAMES = {"search_coding_passages", "lookup_code"}


def same_reply(tool: dict[str, Any], http: dict[str, Any]) -> None:
    """The tool's structured result carries the HTTP reply's passages, offsets and codes."""
    assert [(r["chunk_id"], r["start"], r["end"], r["text"]) for r in tool["results"]] == [
        (r["chunk_id"], r["start"], r["end"], r["text"]) for r in http["results"]
    ]
    assert [r["codes"] for r in tool["results"]] == [r["codes"] for r in http["results"]]
    assert [(c["code"], c["evidence"]) for c in tool["codes"]] == [
        (c["code"], c["evidence"]) for c in http["codes"]
    ]


async def exercise(client: Client, http: TestClient) -> None:
    """List the tools and call each one, checking the replies against the HTTP API."""
    listed = await client.list_tools()
    assert {tool.name for tool in listed.tools} == TOOL_NAMES
    for tool in listed.tools:
        assert len(tool.description or "") > 100, "an LLM needs a real description"

    found = await client.call_tool("search_coding_passages", {"question": EXAMPLE, "k": 3})
    assert not found.is_error, found.content
    reply = found.structured_content
    assert reply is not None
    answering = [r for r in reply["results"] if "for non-spinal procedures" in r["text"]]
    assert answering and "77002" in [c["code"] for c in answering[0]["codes"]]
    assert reply["codes"][0]["code"] == "77002"
    same_reply(reply, http.post("/v1/query", json={"question": EXAMPLE, "k": 3}).json())
    assert json.loads(found.content[0].text)["results"] == reply["results"]  # type: ignore[union-attr]

    looked = await client.call_tool("lookup_code", {"code": "77002"})
    assert not looked.is_error
    info = looked.structured_content
    assert info is not None
    expected = http.get("/v1/codes/77002").json()
    assert info["descriptors"] == expected["descriptors"]
    assert info["documents"] == expected["documents"] and info["mentions"] == expected["mentions"]

    rare = await client.call_tool("lookup_code", {"code": "62370"})  # mentioned once
    assert not rare.is_error and rare.structured_content is not None
    assert rare.structured_content["suggestions"][0] == "62270"
    unknown = await client.call_tool("lookup_code", {"code": "62271"})
    assert unknown.is_error and "62270" in unknown.content[0].text  # type: ignore[union-attr]
    empty = await client.call_tool("search_coding_passages", {"question": "   "})
    assert empty.is_error and "empty" in empty.content[0].text  # type: ignore[union-attr]
    too_many = await client.call_tool("search_coding_passages", {"question": EXAMPLE, "k": 51})
    assert too_many.is_error


# --- stdio -------------------------------------------------------------------------------------


def test_stdio_server_serves_both_tools_with_the_http_apis_data(
    seed_index: Path, client: TestClient
) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "api.cli", "mcp"],
        env={"CPTQA_INDEX_DIR": str(seed_index), "CPTQA_LOG_LEVEL": "warning"},
    )

    async def run() -> None:
        async with Client(params, read_timeout_seconds=120) as mcp_client:
            await exercise(mcp_client, client)

    anyio.run(run)


def test_stdio_stdout_carries_nothing_but_protocol_messages(tmp_path: Path) -> None:
    """A desktop client reads every stdout line as JSON-RPC; `cptqa mcp` builds its index
    first here (no index yet), so its progress and logs must all go to stderr."""
    env = {
        **os.environ,
        "CPTQA_INDEX_DIR": str(tmp_path / "new-index"),
        "CPTQA_CORPUS_DIR": str(CORPUS),
        "CPTQA_LOG_LEVEL": "info",
    }
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "desktop-client", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "search_coding_passages", "arguments": {"question": EXAMPLE}},
        },
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    watchdog = threading.Timer(300, process.kill)
    watchdog.start()
    try:
        assert process.stdin and process.stdout
        process.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        process.stdin.flush()
        replies = []
        while not any(reply.get("id") == 3 for reply in replies):
            line = process.stdout.readline()
            assert line, "cptqa mcp closed stdout before answering"
            replies.append(json.loads(line))  # any stray print fails here
        process.stdin.close()  # a client hanging up ends the server
        assert process.wait(timeout=60) == 0
        replies += [json.loads(line) for line in process.stdout.read().splitlines() if line]
        stderr = process.stderr.read() if process.stderr else ""
    finally:
        watchdog.cancel()
        process.kill()
    assert all(reply.get("jsonrpc") == "2.0" for reply in replies)
    by_id = {reply["id"]: reply for reply in replies if "id" in reply}
    assert by_id[1]["result"]["serverInfo"]["name"] == "cptqa"
    assert {t["name"] for t in by_id[2]["result"]["tools"]} == TOOL_NAMES
    assert by_id[3]["result"]["structuredContent"]["codes"][0]["code"] == "77002"
    assert "indexing" in stderr  # the build happened, and said so on stderr


# --- streamable HTTP at /mcp -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_http_mcp_serves_both_tools_behind_the_api_key(
    keyed_server: LiveServer, client: TestClient, mode: str
) -> None:
    """`auto` speaks the newest protocol; `legacy` the initialize handshake of older clients."""

    async def run() -> None:
        async with httpx2.AsyncClient(headers=keyed_server.headers(), timeout=60) as http:
            transport = streamable_http_client(f"{keyed_server.base}/mcp", http_client=http)
            async with Client(transport, mode=mode) as mcp_client:
                await exercise(mcp_client, client)

    anyio.run(run)


def test_http_mcp_without_the_key_is_401(keyed_server: LiveServer) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    refused = httpx.post(f"{keyed_server.base}/mcp", json=body, headers=headers, timeout=30)
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "unauthorized"


# --- one contract for every chatbot stack ------------------------------------------------------


def test_mcp_tool_schemas_say_what_v1_tools_says(seed_index: Path, embedder: Embedder) -> None:
    settings = make_settings(seed_index, max_k=7, default_k=4)
    service = Service(settings, embedder)
    server = create_mcp_server(settings, lambda: service)
    definitions = {d["function"]["name"]: d["function"] for d in function_definitions(settings)}

    async def listed() -> list[Any]:
        async with Client(server) as mcp_client:
            return list((await mcp_client.list_tools()).tools)

    tools = anyio.run(listed)
    assert {t.name for t in tools} == {spec.name for spec in TOOLS} == set(definitions)
    for tool in tools:
        openai = definitions[tool.name]
        assert tool.description == openai["description"]
        mcp_props = tool.input_schema["properties"]
        assert set(mcp_props) == set(openai["parameters"]["properties"])
        assert tool.input_schema.get("required", []) == openai["parameters"]["required"]
        for name, prop in openai["parameters"]["properties"].items():
            for key in ("type", "description", "minimum", "maximum", "maxLength", "default"):
                assert mcp_props[name].get(key) == prop.get(key), (tool.name, name, key)
    search = next(t for t in tools if t.name == "search_coding_passages")
    assert search.input_schema["properties"]["k"]["maximum"] == 7
    assert search.input_schema["properties"]["k"]["default"] == 4
