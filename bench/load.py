"""cptqa load test: a real `cptqa serve` held at a fixed concurrency while a new snapshot is
ingested and hot-reloaded, over loopback, with a bounded time and request budget.

    python bench/load.py [--concurrency 8] [--seconds 30] [--max-requests 20000]

It indexes the default corpus, starts the server, sends the dev questions round-robin from
`--concurrency` clients, runs `cptqa ingest` with the dev corpus added half-way (the server's
watcher, checking every second, reloads the new snapshot) and prints requests per second,
latency p50/p95/p99, errors, and the snapshots served. Writes bench/results-load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CPTQA = str(Path(sys.executable).with_name("cptqa"))
QUESTIONS = [
    json.loads(line)["question"]
    for name in ("dev_questions.jsonl", "dev_questions_extra.jsonl")
    for line in (ROOT / "tests" / "data" / name).read_text().splitlines()
    if line.strip()
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered)) - 1))]


async def client_loop(
    client: httpx.AsyncClient, offset: int, stop_at: list[float], budget: list[int], out: dict
) -> None:
    i = offset
    while time.monotonic() < stop_at[0] and budget[0] > 0:
        budget[0] -= 1
        question = QUESTIONS[i % len(QUESTIONS)]
        i += 1
        started = time.perf_counter()
        try:
            reply = await client.post("/v1/query", json={"question": question, "k": 5})
            ok = reply.status_code == 200
        except httpx.HTTPError:
            ok = False
        out["latencies"].append((time.perf_counter() - started) * 1000)
        out["errors"] += 0 if ok else 1


async def watch_snapshots(client: httpx.AsyncClient, stop_at: list[float], seen: list[str]) -> None:
    while time.monotonic() < stop_at[0]:
        snapshot = (await client.get("/readyz")).json().get("snapshot")
        if snapshot and (not seen or seen[-1] != snapshot):
            seen.append(snapshot)
        await asyncio.sleep(0.2)


async def run_load(base: str, env: dict, args: argparse.Namespace) -> dict:
    out: dict = {"latencies": [], "errors": 0}
    budget = [args.max_requests]
    started = time.monotonic()
    # The load lasts `seconds`, and at least 5 s past the end of the ingest, so that the reload
    # happens under load; `max_requests` bounds it either way.
    stop_at = [started + args.seconds]
    seen: list[str] = []
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        watcher = asyncio.create_task(watch_snapshots(client, stop_at, seen))
        clients = [
            asyncio.create_task(client_loop(client, n, stop_at, budget, out))
            for n in range(args.concurrency)
        ]
        await asyncio.sleep(args.seconds / 2)
        planned_end, stop_at[0] = stop_at[0], float("inf")  # hold the load until ingest ends
        ingest = await asyncio.create_subprocess_exec(
            CPTQA,
            "ingest",
            str(ROOT / "corpus"),
            str(ROOT / "tests" / "data" / "dev_corpus"),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        ingest_code = await ingest.wait()
        ingest_done = time.monotonic() - started
        stop_at[0] = max(planned_end, time.monotonic() + 5)
        await asyncio.gather(*clients)
        await watcher
    elapsed = time.monotonic() - started
    latencies = out["latencies"]
    return {
        "concurrency": args.concurrency,
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "errors": out["errors"],
        "ingest_exit_code": ingest_code,
        "ingest_done_at_s": round(ingest_done, 1),
        "snapshots_served": seen,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--max-requests", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results-load.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cptqa-load-") as work:
        port = free_port()
        env = {
            **os.environ,
            "CPTQA_INDEX_DIR": str(Path(work) / "store"),
            "CPTQA_CORPUS_DIR": str(ROOT / "corpus"),
            "CPTQA_PORT": str(port),
            "CPTQA_RELOAD_INTERVAL": "1",
            "CPTQA_ACCESS_LOG": "false",
            "CPTQA_RATE_LIMIT_PER_MINUTE": "0",
        }
        subprocess.run([CPTQA, "ingest"], env=env, check=True, capture_output=True)
        log = open(Path(work) / "serve.log", "w")  # noqa: SIM115 - closed below
        server = subprocess.Popen([CPTQA, "serve"], env=env, stdout=log, stderr=log, cwd=work)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("server did not become ready")
                time.sleep(0.3)
            result = asyncio.run(run_load(base, env, args))
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
    print(json.dumps(result, indent=2))
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
