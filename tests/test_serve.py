"""End to end: `cptqa serve` as a real process with uvicorn, queried over loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import CORPUS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@dataclass(frozen=True)
class FirstServe:
    base: str
    pid: int
    log: Path
    cache: Path


@pytest.fixture(scope="module")
def first_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstServe]:
    """A fresh `cptqa serve` with no index and no cached model export, as on a new machine:
    it must export the model, build the index from the corpus, then serve."""
    work = tmp_path_factory.mktemp("serve")
    index_dir, cache, log = work / "index", work / "cache", work / "serve.log"
    port = free_port()
    # The default settings, as `make serve` runs it: no CPTQA_* from the session (a module
    # fixture is made before the autouse fixture that clears them for each test).
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CPTQA_")},
        "CPTQA_INDEX_DIR": str(index_dir),
        "CPTQA_CORPUS_DIR": str(CORPUS),
        "CPTQA_CACHE_DIR": str(cache),
        "CPTQA_PORT": str(port),
    }
    with open(log, "w", encoding="utf-8") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve"], env=env, stdout=sink, stderr=sink
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"cptqa serve exited early:\n{log.read_text()}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("cptqa serve did not become ready in 300 s")
        yield FirstServe(base, process.pid, log, cache)
    finally:
        stop(process)


@pytest.fixture(scope="module")
def server(first_serve: FirstServe) -> str:
    return first_serve.base


def test_serve_builds_the_index_and_answers_the_example_question(server: str) -> None:
    response = httpx.post(
        f"{server}/v1/query",
        json={"question": "which fluoro code for occipital nerve block", "k": 3},
        timeout=30,
    )
    assert response.status_code == 200
    body = response.json()
    answering = [r for r in body["results"] if "for non-spinal procedures" in r["text"]]
    assert answering and "77002" in [c["code"] for c in answering[0]["codes"]]


def test_the_first_serve_builds_in_a_child_and_serves_without_torch(
    first_serve: FirstServe,
) -> None:
    """The index (and the model's export, which needs torch) is built by a child `cptqa
    ingest`: the serving process never maps torch's library, as after a restart."""
    maps = Path(f"/proc/{first_serve.pid}/maps").read_text()
    assert "onnxruntime" in maps  # it does serve with the ONNX encoder
    assert "libtorch" not in maps
    log = first_serve.log.read_text()
    assert "indexing" in log and "indexed 2 documents" in log


def test_the_first_serve_logs_only_what_a_user_needs(first_serve: FirstServe) -> None:
    log = first_serve.log.read_text()
    for noise in (
        "Quantization parameters",
        "pre-processing before quantization",
        "session manager",
        "Traceback",
    ):
        assert noise not in log
    (export,) = (first_serve.cache / "encoders").iterdir()
    assert (export / "model.onnx").is_file()
    assert not (export / "model-int8.onnx").exists()  # the int8 variant is made when asked


def test_served_errors_are_json_without_stack_traces(server: str) -> None:
    response = httpx.post(f"{server}/v1/query", json={"question": ""}, timeout=30)
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "invalid_input"
    assert "Traceback" not in response.text


def test_serve_with_two_workers_shares_one_snapshot(seed_index) -> None:  # type: ignore[no-untyped-def]
    """`--workers 2`: two server processes answer from the same published snapshot."""
    port = free_port()
    env = {**os.environ, "CPTQA_INDEX_DIR": str(seed_index), "CPTQA_LOG_LEVEL": "warning"}
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        snapshots: set[str] = set()
        while time.monotonic() < deadline and not snapshots:
            try:
                reply = httpx.get(f"{base}/readyz", timeout=2)
                if reply.status_code == 200:
                    snapshots.add(reply.json()["snapshot"])
            except httpx.TransportError:
                time.sleep(0.3)
        assert snapshots, "cptqa serve --workers 2 did not become ready"
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        assert len(children) >= 2  # the workers (beside uvicorn's own helper, if any)
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(6):
                body = client.post("/v1/query", json={"question": "fluoro code for a GON block"})
                assert body.status_code == 200
                assert body.json()["codes"][0]["code"] == "77002"
                snapshots.add(client.get("/readyz").json()["snapshot"])
        assert len(snapshots) == 1
    finally:
        stop(process)


def test_the_workers_socket_gives_connections_tcp_nodelay() -> None:
    """Connections accepted on the socket `--workers` shares get TCP_NODELAY from asyncio (a
    socket bound with protocol 0 did not, and every keep-alive request waited ~40 ms)."""
    import asyncio
    import socket

    from api.cli import _listening_socket

    listener = _listening_socket("127.0.0.1", 0)
    assert listener.proto == socket.IPPROTO_TCP
    seen: list[int] = []

    async def main() -> None:
        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection(*listener.getsockname())
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(main())
    assert seen and seen[0] != 0
