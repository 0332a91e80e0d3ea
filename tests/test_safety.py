"""Safe HTTP: API key, CORS, body limit, rate limit, and no stack traces in replies."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import CORPUS, make_settings
from fastapi.testclient import TestClient
from live import LiveServer, cptqa_serve
from pydantic import ValidationError

import api.auth
from api import Settings, create_app
from api.ratelimit import TokenBuckets
from index import Embedder

EXAMPLE = "which fluoro code for occipital nerve block"
KEY = "s3cret-test-key-0123456789"
ORIGIN = "https://chat.example.org"


def assert_refused(response, status: int, kind: str) -> str:  # noqa: ANN001
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}
    assert response.json()["error"]["type"] == kind
    return str(response.json()["error"]["message"])


@pytest.fixture(scope="module")
def keyed(seed_index: Path, embedder: Embedder) -> Iterator[TestClient]:
    app = create_app(make_settings(seed_index, api_key=KEY), embedder=embedder)
    with TestClient(app) as test_client:
        yield test_client


# --- API key -----------------------------------------------------------------------------------

PROTECTED = [
    ("POST", "/v1/query"),
    ("GET", "/v1/codes/77002"),
    ("GET", "/v1/index"),
    ("GET", "/v1/tools"),
    ("GET", "/metrics"),
    ("POST", "/mcp"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/v1/no-such-route"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_without_the_key_every_api_route_is_401(keyed: TestClient, method: str, path: str) -> None:
    response = keyed.request(method, path, json={"question": EXAMPLE})
    message = assert_refused(response, 401, "unauthorized")
    assert "Authorization: Bearer" in message
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/", "/page/app.js", "/page/style.css"])
def test_health_probes_and_the_page_need_no_key(keyed: TestClient, path: str) -> None:
    assert keyed.get(path).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {KEY}"},
        {"Authorization": f"bearer   {KEY}"},
        {"X-API-Key": KEY},
        {"Authorization": "Basic Zm9vOmJhcg==", "X-API-Key": KEY},
    ],
)
def test_the_key_opens_the_api(keyed: TestClient, headers: dict[str, str]) -> None:
    response = keyed.post("/v1/query", json={"question": EXAMPLE, "k": 3}, headers=headers)
    assert response.status_code == 200
    assert "77002" in [c["code"] for c in response.json()["codes"]]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {KEY[:-1]}"},
        {"Authorization": f"Bearer {KEY}x"},
        {"X-API-Key": KEY.upper()},
        {"Authorization": KEY},
    ],
)
def test_a_wrong_key_is_401(keyed: TestClient, headers: dict[str, str]) -> None:
    response = keyed.get("/v1/index", headers=headers)
    assert_refused(response, 401, "unauthorized")
    assert KEY not in response.text


def test_keys_are_compared_in_constant_time(
    keyed: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = api.auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(api.auth.hmac, "compare_digest", spy)
    assert keyed.get("/v1/index", headers={"X-API-Key": "not-the-key"}).status_code == 401
    assert keyed.get("/v1/index", headers={"X-API-Key": KEY}).status_code == 200
    assert calls == [(b"not-the-key", KEY.encode()), (KEY.encode(), KEY.encode())]


def test_without_a_key_setting_the_api_is_open(client: TestClient) -> None:
    assert client.get("/v1/index").status_code == 200


@pytest.mark.parametrize("weak", ["short", "changethis"])
def test_a_short_api_key_is_refused_at_start(weak: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="16 characters"):
        Settings(index_dir=tmp_path, api_key=weak)  # type: ignore[arg-type]


def test_an_empty_api_key_variable_means_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CPTQA_API_KEY", "")
    assert Settings().api_key is None


# --- CORS --------------------------------------------------------------------------------------


def preflight(test_client: TestClient, origin: str):  # noqa: ANN201
    return test_client.options(
        "/v1/query",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_cors_is_closed_by_default(client: TestClient) -> None:
    assert "access-control-allow-origin" not in preflight(client, ORIGIN).headers
    answered = client.post("/v1/query", json={"question": EXAMPLE}, headers={"Origin": ORIGIN})
    assert answered.status_code == 200
    assert "access-control-allow-origin" not in answered.headers


def test_configured_origins_and_only_they_may_call(seed_index: Path, embedder: Embedder) -> None:
    settings = make_settings(seed_index, api_key=KEY, cors_origins=[ORIGIN])
    with TestClient(create_app(settings, embedder=embedder)) as cors:
        allowed = preflight(cors, ORIGIN)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == ORIGIN
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in allowed.headers
        other = preflight(cors, "https://evil.example.com")
        assert "access-control-allow-origin" not in other.headers
        # A refusal carries CORS headers, so the calling page can read why.
        refused = cors.get("/v1/index", headers={"Origin": ORIGIN})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == ORIGIN


def test_cors_origins_are_read_from_a_comma_separated_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CPTQA_CORS_ORIGINS", f"{ORIGIN}, http://localhost:3000")
    assert Settings().cors_origins == [ORIGIN, "http://localhost:3000"]
    monkeypatch.setenv("CPTQA_CORS_ORIGINS", f'["{ORIGIN}"]')
    assert Settings().cors_origins == [ORIGIN]


@pytest.mark.parametrize("bad", ["chat.example.org", "https://chat.example.org/", "ftp://x.org"])
def test_a_cors_value_that_is_not_an_origin_is_refused(
    bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CPTQA_CORS_ORIGINS", bad)
    with pytest.raises(ValidationError, match="not an origin"):
        Settings()


# --- body size ---------------------------------------------------------------------------------


def test_an_oversized_mcp_call_is_413(client: TestClient) -> None:
    big = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"pad": "x" * 100_000}}
    assert_refused(client.post("/mcp", json=big), 413, "payload_too_large")


# --- rate limit --------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(per_minute=60, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(1.0)  # one token a second
    assert buckets.take("b") == 0.0  # another client has its own bucket
    clock.now += 1.0
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0.0
    clock.now += 3600
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]  # never above the burst
    assert buckets.take("a") > 0.0


def test_buckets_forget_the_least_recent_clients_past_the_cap() -> None:
    buckets = TokenBuckets(per_minute=60, burst=1, max_clients=100, clock=FakeClock())
    for n in range(1000):
        buckets.take(f"10.0.{n // 256}.{n % 256}")
    assert len(buckets._buckets) == 100


def test_a_client_over_the_rate_gets_429_with_retry_after(
    seed_index: Path, embedder: Embedder
) -> None:
    settings = make_settings(seed_index, rate_limit_per_minute=6, rate_limit_burst=3)
    with TestClient(create_app(settings, embedder=embedder)) as limited:
        codes = [limited.get("/v1/tools").status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        refused = limited.post("/v1/query", json={"question": EXAMPLE})
        assert_refused(refused, 429, "rate_limited")
        assert int(refused.headers["retry-after"]) >= 1
        # Health probes are never limited.
        assert all(limited.get("/healthz").status_code == 200 for _ in range(10))


def test_a_zero_rate_turns_the_limit_off(seed_index: Path, embedder: Embedder) -> None:
    settings = make_settings(seed_index, rate_limit_per_minute=0, rate_limit_burst=1)
    with TestClient(create_app(settings, embedder=embedder)) as open_app:
        assert all(open_app.get("/v1/tools").status_code == 200 for _ in range(20))


# --- no stack traces ---------------------------------------------------------------------------


def test_an_unexpected_error_is_a_json_500_without_its_details(
    seed_index: Path, embedder: Embedder
) -> None:
    app = create_app(make_settings(seed_index), embedder=embedder)

    def broken() -> None:
        raise RuntimeError("secret detail /etc/cptqa")

    app.add_api_route("/v1/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.get("/v1/broken")
    message = assert_refused(response, 500, "internal_error")
    assert "log" in message
    assert "Traceback" not in response.text and "secret detail" not in response.text


# --- hostile requests to a real `cptqa serve` (issue 17) ---------------------------------------

CPTQA = str(Path(sys.executable).with_name("cptqa"))


@pytest.fixture(scope="module")
def served(seed_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real server for the hostile-request tests; no API key, default limits."""
    workdir = tmp_path_factory.mktemp("hostile")
    limits = {
        "CPTQA_BODY_READ_TIMEOUT": "2",
        "CPTQA_HEADER_READ_TIMEOUT": "2",
        "CPTQA_KEEP_ALIVE_TIMEOUT": "2",
        "CPTQA_MAX_CONNECTIONS": "50",
    }
    with cptqa_serve(seed_index, workdir, **limits) as server:
        yield server


def post_raw(server: LiveServer, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.base}/v1/query",
        content=body,
        headers={"content-type": "application/json", **headers},
        timeout=30,
    )


def test_a_lone_surrogate_in_a_question_is_422_not_500(served: LiveServer) -> None:
    response = post_raw(served, b'{"question": "\\ud800 fluoro"}')
    message = assert_refused(response, 422, "invalid_input")
    assert "not valid Unicode" in message
    assert httpx.get(f"{served.base}/readyz", timeout=10).status_code == 200


def test_cli_query_with_invalid_utf8_exits_2_with_a_clear_message(seed_index: Path) -> None:
    env = {**os.environ, "CPTQA_INDEX_DIR": str(seed_index)}
    result = subprocess.run(
        [CPTQA.encode(), b"query", b"\xff fluoro \xfe"], env=env, capture_output=True, timeout=120
    )
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2, stderr
    assert "not valid Unicode" in stderr and "Traceback" not in stderr


UNREADABLE_BODIES = {
    "deep nesting": b'{"question": "fluoro", "k": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    "a 4,400-digit k": b'{"question": "fluoro", "k": ' + b"7" * 4400 + b"}",
    "invalid UTF-8": b'{"question": "\xff\xfe fluoro"}',
}


@pytest.mark.parametrize("name", list(UNREADABLE_BODIES))
def test_json_that_cannot_be_read_is_422_invalid_input(served: LiveServer, name: str) -> None:
    message = assert_refused(post_raw(served, UNREADABLE_BODIES[name]), 422, "invalid_input")
    assert "not JSON that can be read" in message


def test_a_gzip_body_is_422_invalid_input(served: LiveServer) -> None:
    body = gzip.compress(b'{"question": "fluoro"}')
    response = post_raw(served, body, **{"content-encoding": "gzip"})
    assert "compressed" in assert_refused(response, 422, "invalid_input")


def test_a_chunked_body_over_the_limit_is_413(served: LiveServer) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(20):
            yield b"x" * 8192
        yield b'"}'

    response = httpx.post(
        f"{served.base}/v1/query",
        content=chunks(),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert_refused(response, 413, "payload_too_large")


def test_a_body_shorter_than_its_content_length_is_408_not_a_wait_forever(
    served: LiveServer,
) -> None:
    reply = send_then_read(
        served,
        b"POST /v1/query HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        b'{"question": "x',
    )
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"request_timeout" in reply
    assert "did not arrive in 2 s" in served.log_text()


# One contract, strict, through every door: /v1/tools declares `additionalProperties: false`
# and an integer `k`, so the HTTP API and MCP refuse what does not fit instead of guessing.
NOT_THE_CONTRACT = {
    "k true": {"question": "fluoro", "k": True},
    "k a string": {"question": "fluoro", "k": "3"},
    "k a float": {"question": "fluoro", "k": 3.0},
    "an unknown field": {"question": "fluoro", "colour": "red"},
}


@pytest.mark.parametrize("name", list(NOT_THE_CONTRACT))
def test_arguments_outside_the_declared_schema_are_422(served: LiveServer, name: str) -> None:
    response = httpx.post(f"{served.base}/v1/query", json=NOT_THE_CONTRACT[name], timeout=30)
    message = assert_refused(response, 422, "invalid_input")
    assert ("colour" if name == "an unknown field" else "k") in message


def mcp_call(server: LiveServer, method: str, params: dict, request_id: int = 1) -> dict:
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
    headers = {"Accept": "application/json, text/event-stream"}
    response = httpx.post(f"{server.base}/mcp", json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("name", list(NOT_THE_CONTRACT))
def test_mcp_refuses_the_same_arguments(served: LiveServer, name: str) -> None:
    params = {"name": "search_coding_passages", "arguments": NOT_THE_CONTRACT[name]}
    reply = mcp_call(served, "tools/call", params)
    assert reply["result"]["isError"] is True, reply
    good = {"name": "search_coding_passages", "arguments": {"question": EXAMPLE, "k": 2}}
    assert mcp_call(served, "tools/call", good)["result"]["isError"] is False


def test_mcp_lists_exactly_the_schema_v1_tools_declares(served: LiveServer) -> None:
    declared = httpx.get(f"{served.base}/v1/tools", timeout=30).json()["tools"]
    listed = mcp_call(served, "tools/list", {})["result"]["tools"]
    by_name = {tool["name"]: tool["inputSchema"] for tool in listed}
    for tool in declared:
        schema = tool["function"]["parameters"]
        assert schema["additionalProperties"] is False
        assert by_name[tool["function"]["name"]] == schema


def port_of(server: LiveServer) -> int:
    return int(server.base.rsplit(":", 1)[1])


def send_then_read(server: LiveServer, data: bytes, timeout: float = 15) -> bytes:
    """Send `data` on a fresh connection (the server may close it midway), then read all the
    server says until it closes; a server that never answers fails on the socket timeout."""
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass
        return reply


def test_a_huge_header_is_431_before_it_is_read_whole(served: LiveServer) -> None:
    request = b"GET /v1/tools HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 4_000_000
    reply = send_then_read(served, request)
    assert reply.startswith(b"HTTP/1.1 431"), reply[:200]
    assert b"headers_too_large" in reply
    assert httpx.get(f"{served.base}/v1/tools", timeout=10).status_code == 200


def test_too_many_headers_is_431(served: LiveServer) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % n for n in range(150))
    reply = send_then_read(served, b"GET /v1/tools HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert reply.startswith(b"HTTP/1.1 431"), reply[:200]
    many_but_fine = {f"X-H{n}": "v" for n in range(50)}
    response = httpx.get(f"{served.base}/v1/tools", headers=many_but_fine, timeout=10)
    assert response.status_code == 200


def test_a_connection_that_never_finishes_its_headers_is_closed(served: LiveServer) -> None:
    reply = send_then_read(served, b"GET /v1/tools HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    assert reply == b""  # closed by the server after 2 s, not left open
    assert "no complete request headers in 2 s" in served.log_text()


def test_an_idle_keep_alive_connection_is_closed(served: LiveServer) -> None:
    reply = send_then_read(served, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200")  # then closed after the 2 s keep-alive


def test_idle_sockets_past_the_cap_are_503_and_logged_then_closed(served: LiveServer) -> None:
    idle: list[socket.socket] = []
    try:
        # The idle sockets are closed 2 s after they open: on a busy machine that can come
        # before the request, so each attempt opens a fresh set.
        for _ in range(5):
            idle += [socket.create_connection(("127.0.0.1", port_of(served))) for _ in range(60)]
            if httpx.get(f"{served.base}/v1/tools", timeout=10).status_code == 503:
                break
        else:
            pytest.fail("60 idle sockets past a cap of 50 never made a request 503")
        assert "Exceeded concurrency limit." in served.log_text()
        # The idle sockets never sent headers: after the 2 s header timeout they are closed,
        # and a normal client is served again.
        for sock in idle:
            sock.settimeout(15)
            assert sock.recv(1) == b""
        assert httpx.get(f"{served.base}/v1/tools", timeout=10).status_code == 200
    finally:
        for sock in idle:
            sock.close()


def test_x_forwarded_for_from_an_untrusted_peer_does_not_dodge_the_rate_limit(
    seed_index: Path, tmp_path: Path
) -> None:
    limits = {"CPTQA_RATE_LIMIT_PER_MINUTE": "6", "CPTQA_RATE_LIMIT_BURST": "3"}
    with cptqa_serve(seed_index, tmp_path, **limits) as server:
        statuses = [
            httpx.get(
                f"{server.base}/v1/tools",
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
                timeout=10,
            ).status_code
            for n in range(6)
        ]
        assert statuses[:3] == [200, 200, 200]
        assert statuses[3:] == [429, 429, 429]  # one bucket: the TCP peer's
        assert '"client": "203.0.113.' not in server.log_text()


def test_replies_name_no_absolute_paths(served: LiveServer) -> None:
    served_index = str(served.log.parent / "served-index")
    info = httpx.get(f"{served.base}/v1/index", timeout=10)
    ready = httpx.get(f"{served.base}/readyz", timeout=10)
    for reply in (info, ready):
        assert reply.status_code == 200
        assert served_index not in reply.text and str(CORPUS) not in reply.text
    paths = [d["path"] for d in info.json()["documents"].values()]
    assert paths and all(not p.startswith("/") for p in paths)
    assert sorted(paths) == sorted(info.json()["documents"])  # relative to the corpus folder


# --- MCP: nothing unanswered, nothing held open -----------------------------------------------


def test_get_mcp_holds_no_event_stream_open(served: LiveServer) -> None:
    headers = {"Accept": "text/event-stream"}
    response = httpx.get(f"{served.base}/mcp", headers=headers, timeout=10)  # no hang
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_stdio_mcp_answers_unreadable_lines_with_parse_errors(seed_index: Path) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "hostile-client", "version": "1"},
        },
    }
    call = (
        '{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": '
        '"search_coding_passages", "arguments": {"question": "\\ud800 fluoro"}}}'
    )
    lines = [json.dumps(initialize).encode(), b"this is not json", call.encode(), b"\xff\xfe{"]
    lines.append(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')
    lines.append(b'{"jsonrpc": "2.0", "id": 9, "method": "tools/list"}')
    process = subprocess.Popen(
        [CPTQA, "mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "CPTQA_INDEX_DIR": str(seed_index)},
    )
    watchdog = threading.Timer(120, process.kill)  # a reply never sent fails, not hangs
    watchdog.start()
    replies: list[dict] = []
    try:
        assert process.stdin and process.stdout
        process.stdin.write(b"\n".join(lines) + b"\n")
        process.stdin.flush()
        while not any(r.get("id") == 9 for r in replies):
            line = process.stdout.readline()
            assert line, f"cptqa mcp stopped answering; got {replies}"
            replies.append(json.loads(line))
    finally:
        watchdog.cancel()
        process.kill()
        process.wait()
    errors = [r for r in replies if "error" in r]
    assert [e["error"]["code"] for e in errors] == [-32700, -32700, -32700]
    assert [e["id"] for e in errors] == [None, 7, None]  # the id is kept where it can be read
    assert {r["id"] for r in replies} >= {1, 9}  # and the session carries on
