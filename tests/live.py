"""A real `cptqa serve` process for end-to-end tests (browser, MCP over HTTP, access logs).

It serves a copy of an index that the session already built, so it starts in the time the
model takes to load. Its stdout and stderr go to a file (a pipe nobody reads would fill and
stall the server), which tests read to check the access log.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import CORPUS


@dataclass(frozen=True)
class LiveServer:
    base: str
    log: Path
    api_key: str | None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def cptqa_serve(
    seed_index: Path, workdir: Path, api_key: str | None = None, **env: str
) -> Iterator[LiveServer]:
    """Run `cptqa serve` on a copy of `seed_index` until the block ends."""
    # Not "index": `python -m` puts the working folder first on sys.path, where a folder of
    # that name would hide the `index` package.
    index_dir = workdir / "served-index"
    shutil.copytree(seed_index, index_dir)
    port = free_port()
    log = workdir / "serve.log"
    environment = {
        **os.environ,
        "CPTQA_INDEX_DIR": str(index_dir),
        "CPTQA_CORPUS_DIR": str(CORPUS),
        "CPTQA_PORT": str(port),
        "CPTQA_LOG_LEVEL": "warning",
        **env,
    }
    if api_key:
        environment["CPTQA_API_KEY"] = api_key
    with open(log, "w", encoding="utf-8") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve"],
            env=environment,
            cwd=workdir,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, base, log)
        yield LiveServer(base=base, log=log, api_key=api_key)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def _wait_ready(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"cptqa serve exited early:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail("cptqa serve did not become ready in 180 s")
