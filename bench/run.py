"""cptqa benchmark: index build, query latency (in process and over HTTP), memory, size.

Runs on the default corpus and on a synthetic corpus of about 10,000 chunks that it generates
deterministically (seeded), prints a table and writes bench/results.json.

    python bench/run.py [--synthetic-chunks 10000] [--queries 200] [--skip-synthetic]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index import DEFAULT_MODEL, Searcher, build_index, load_current  # noqa: E402
from index.encoder import OnnxEncoder, ensure_export  # noqa: E402

QUESTIONS_FILE = ROOT / "tests" / "data" / "dev_questions.jsonl"

# Vocabulary for the synthetic corpus: coding-flavoured sentences with random codes, so the
# extractor, the chunker and both indexes do realistic work. Not domain facts.
_SUBJECTS = [
    "Fluoroscopic guidance",
    "Ultrasound needle guidance",
    "The epidural injection",
    "A facet joint injection",
    "The lumbar puncture",
    "Trigger point injection",
    "The nerve block",
    "Shock wave lithotripsy",
    "The arthrogram",
    "CT guidance",
]
_VERBS = [
    "is reported with",
    "is bundled into",
    "may be billed with",
    "is included in",
    "requires modifier 59 when billed with",
    "is an add-on to",
    "replaced",
]
_TAILS = [
    "when documented in the procedure note.",
    "per spinal region, not per level.",
    "for each additional level.",
    "once per encounter regardless of needles.",
    "only when a permanent image is retained.",
    "for the professional component only.",
]


def synthetic_corpus(folder: Path, chunks: int, seed: int = 7) -> None:
    """About `chunks` paragraphs of 250-450 characters, in files of 50 paragraphs."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    per_file = 50
    for file_no in range(0, chunks, per_file):
        paragraphs = []
        for _ in range(min(per_file, chunks - file_no)):
            sentences = []
            while sum(len(s) for s in sentences) < 250:
                code_a = f"{rng.randint(10021, 69990):05d}"
                code_b = f"{rng.randint(70010, 79999):05d}"
                sentences.append(
                    f"{rng.choice(_SUBJECTS)} {code_b} {rng.choice(_VERBS)} {code_a} "
                    f"{rng.choice(_TAILS)}"
                )
            paragraphs.append(" ".join(sentences))
        (folder / f"synthetic_{file_no // per_file:04d}.txt").write_text(
            "\n\n".join(paragraphs), encoding="utf-8"
        )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mib(pid: int | None = None) -> float:
    status = Path(f"/proc/{pid or 'self'}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_corpus(
    name: str, paths: list[Path], embedder: OnnxEncoder, questions: list[str], work: Path
) -> dict[str, float | int | str]:
    index_dir = work / f"index-{name}"
    # Passages as `cptqa ingest` embeds them: the ONNX export on every core, batch 8.
    report = build_index(paths, index_dir, lambda: embedder, model=DEFAULT_MODEL)
    snapshot = load_current(index_dir, embedder.name)
    # Questions as `cptqa serve` encodes them: the snapshot's ONNX encoder, every core for a
    # question asked alone (as here), one thread each for questions that overlap.
    encoder = OnnxEncoder(snapshot.encoder_dir, "fp32", threads=1, solo_threads=os.cpu_count() or 1)
    searcher = Searcher(snapshot, encoder)
    for question in questions[:5]:
        searcher.search(question, 5)  # warm-up
    latencies = []
    for question in questions:
        started = time.perf_counter()
        searcher.search(question, 5)
        latencies.append((time.perf_counter() - started) * 1000)
    http = bench_http(index_dir, questions)
    return {
        "corpus": name,
        "documents": report.documents,
        "chunks": report.chunks,
        "build_s": round(report.seconds, 2),
        "chunks_per_s": round(report.chunks / report.seconds, 1),
        "query_p50_ms": round(percentile(latencies, 50), 2),
        "query_p95_ms": round(percentile(latencies, 95), 2),
        "http_p50_ms": round(percentile(http["latencies"], 50), 2),
        "http_p95_ms": round(percentile(http["latencies"], 95), 2),
        "server_peak_rss_mib": round(http["peak_rss_mib"], 1),
        "index_mib": round(folder_bytes(index_dir) / 2**20, 2),
    }


def bench_http(index_dir: Path, questions: list[str]) -> dict:
    port = free_port()
    env = {
        **os.environ,
        "CPTQA_INDEX_DIR": str(index_dir),
        "CPTQA_PORT": str(port),
        "CPTQA_LOG_LEVEL": "warning",
        "CPTQA_RATE_LIMIT_PER_MINUTE": "0",  # one client asking as fast as it can
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.3)
            for question in questions[:5]:
                client.post("/v1/query", json={"question": question})
            latencies = []
            for question in questions:
                started = time.perf_counter()
                response = client.post("/v1/query", json={"question": question, "k": 5})
                latencies.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
        rss = peak_rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"latencies": latencies, "peak_rss_mib": rss}


def print_table(rows: list[dict]) -> None:
    columns = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(str(row[c]).ljust(w) for c, w in zip(columns, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic-chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200, help="timed queries per corpus")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    args = parser.parse_args()

    base = [json.loads(line)["question"] for line in QUESTIONS_FILE.read_text().splitlines()]
    questions = [base[i % len(base)] for i in range(args.queries)]
    started = time.perf_counter()
    embedder = OnnxEncoder(ensure_export(DEFAULT_MODEL), "fp32", threads=os.cpu_count() or 1)
    model_load_s = time.perf_counter() - started
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows.append(bench_corpus("default", [ROOT / "corpus"], embedder, questions, work))
        if not args.skip_synthetic:
            synthetic = work / "synthetic"
            synthetic_corpus(synthetic, args.synthetic_chunks)
            rows.append(bench_corpus("synthetic", [synthetic], embedder, questions, work))
    print_table(rows)
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "model_load_s": round(model_load_s, 2),
        "bench_process_peak_rss_mib": round(peak_rss_mib(), 1),
        "rows": rows,
    }
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(
        f"\nmodel load {model_load_s:.1f} s; bench process peak RSS "
        f"{result['bench_process_peak_rss_mib']} MiB; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
