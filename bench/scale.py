"""cptqa at scale: search over 100,000 and 1,000,000 chunks, with vectors the benchmark makes.

Embedding a million passages takes hours on 2 cores, so the large snapshots are synthesised
from a real one: the seeds and the dev corpus are indexed for real, then each synthetic chunk
is a mixture of three real chunk vectors (Dirichlet weights) plus Gaussian noise, carrying the
text, codes and sentences of its main component (sentence vectors get the same noise). That
gives a continuous, corpus-shaped cloud of vectors rather than tight clusters of copies. The
snapshot is then written by cptqa's own `write_snapshot`, so the SQLite store, bm25s index,
IVF index, signals and encoder are the real thing, and searched by cptqa's own code.

For each size it reports: build time, size on disk and bytes per chunk (by file, and by table
of the SQLite store), dense-index recall@10 against an exact scan (on real question vectors
and on sampled queries), cold start of `cptqa serve` (process start to /readyz ready), query
latency p50/p95 in process and over HTTP, HTTP p50 divided by the bare encoder's p50 on the
same questions in the same run, and requests per second at 1, 4 and 16 concurrent clients
over loopback (each run bounded in time and count). Embedding throughput (torch vs ONNX, by
batch size) is measured separately, to project the time a real ingest of that size would take.

    python bench/scale.py [--sizes 100000,1000000] [--clients 1,4,16] [--seconds 8]
                          [--workers 1,2] [--skip-embedding] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import folder_bytes, free_port, peak_rss_mib, percentile  # noqa: E402
from index import DEFAULT_MODEL, Embedder, Searcher, build_index, load_current  # noqa: E402
from index.dense import exact_neighbours, recall_at, sample_queries  # noqa: E402
from index.encoder import OnnxEncoder, ensure_export  # noqa: E402
from index.sentences import SentenceVectors  # noqa: E402
from index.snapshot import prefetch, write_snapshot  # noqa: E402
from ingest import Chunk, CodeMention, CptqaError, Document  # noqa: E402

QUESTION_FILES = [
    ROOT / "tests" / "data" / "dev_questions.jsonl",
    ROOT / "tests" / "data" / "dev_questions_extra.jsonl",
]
PER_DOCUMENT = 50
NOISE = 0.03
MAX_REQUESTS = 20_000  # per throughput run, on top of the time bound


def questions() -> list[str]:
    return [
        json.loads(line)["question"]
        for path in QUESTION_FILES
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def real_snapshot(work: Path):  # type: ignore[no-untyped-def]
    index_dir = work / "base"
    try:
        return load_current(index_dir, DEFAULT_MODEL)
    except CptqaError:  # none yet, or made by another cptqa version
        shutil.rmtree(index_dir, ignore_errors=True)
    build_index([ROOT / "corpus", ROOT / "tests" / "data" / "dev_corpus"], index_dir, Embedder())
    return load_current(index_dir, DEFAULT_MODEL)


def _normalise(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def synthesise(base, size: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """Documents, chunks, chunk vectors and sentence vectors for `size` synthetic chunks."""
    rng = np.random.default_rng(seed)
    real_chunks = list(base.store.chunks)
    real_vectors = np.asarray(base.vectors, dtype=np.float32)
    sent = base.sentences
    picks = rng.integers(0, len(real_chunks), (size, 3))
    weights = rng.dirichlet([1.0, 1.0, 1.0], size).astype(np.float32)
    main = picks[np.arange(size), np.argmax(weights, axis=1)]
    vectors = np.empty((size, real_vectors.shape[1]), dtype=np.float32)
    for start in range(0, size, 100_000):
        block = slice(start, min(size, start + 100_000))
        mixed = (real_vectors[picks[block]] * weights[block][:, :, None]).sum(1)
        mixed += rng.normal(0, NOISE, mixed.shape).astype(np.float32)
        vectors[block] = _normalise(mixed)
    counts = np.diff(np.asarray(sent.offsets))[main]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    sentence_rows = np.concatenate(
        [np.arange(sent.offsets[m], sent.offsets[m + 1]) for m in main]
    ).astype(np.int64)
    sentence_vectors = np.empty((len(sentence_rows), vectors.shape[1]), dtype=np.float32)
    for start in range(0, len(sentence_rows), 200_000):
        block = slice(start, min(len(sentence_rows), start + 200_000))
        noisy = np.asarray(sent.vectors)[sentence_rows[block]]
        noisy = noisy + rng.normal(0, NOISE, noisy.shape).astype(np.float32)
        sentence_vectors[block] = _normalise(noisy)
    real_spans = np.asarray(sent.spans)
    documents: list[Document] = []
    chunks: list[Chunk] = []
    spans = np.empty((len(sentence_rows), 2), dtype=np.int64)
    for first in range(0, size, PER_DOCUMENT):
        doc_id = f"synthetic/{first // PER_DOCUMENT:06d}.txt"
        pieces: list[str] = []
        cursor = 0
        for row in range(first, min(size, first + PER_DOCUMENT)):
            source = real_chunks[main[row]]
            shift = cursor - source.start
            mentions = tuple(
                CodeMention(
                    m.code,
                    m.system,
                    m.category,
                    m.start + shift,
                    m.end + shift,
                    m.modifiers,
                    m.role,
                    m.from_range,
                )
                for m in source.codes
            )
            chunks.append(
                Chunk(
                    f"{doc_id}#{row - first}",
                    doc_id,
                    cursor,
                    cursor + len(source.text),
                    source.text,
                    mentions,
                    source.context,
                )
            )
            own = slice(int(offsets[row]), int(offsets[row + 1]))
            spans[own] = real_spans[sentence_rows[own]] + shift
            pieces.append(source.text)
            cursor += len(source.text) + 2
        text = "\n\n".join(pieces)
        documents.append(Document(doc_id, doc_id, text, f"synthetic-{first}", "synthetic"))
    return documents, chunks, vectors, SentenceVectors(sentence_vectors, spans, offsets)


def build_synthetic(base, size: int, work: Path) -> tuple[Path, dict]:  # type: ignore[no-untyped-def]
    index_dir = work / f"synthetic-{size}"
    started = time.perf_counter()
    documents, chunks, vectors, sentences = synthesise(base, size)
    made = time.perf_counter() - started
    settings = {**{k: base.manifest[k] for k in ("model", "chunker", "loader_version")}}
    settings["dimension"] = int(vectors.shape[1])
    started = time.perf_counter()
    snapshot = write_snapshot(
        index_dir,
        documents,
        chunks,
        vectors,
        sentences,
        settings,
        encoder=ensure_export(DEFAULT_MODEL),
    )
    built = time.perf_counter() - started
    del documents, chunks, vectors, sentences
    parts: dict[str, int] = {}
    for path in snapshot.rglob("*"):
        if path.is_file():
            top = path.relative_to(snapshot).parts[0]
            parts[top] = parts.get(top, 0) + path.stat().st_size
    total = folder_bytes(snapshot)
    encoder = parts.get("encoder", 0)
    return index_dir, {
        "synthesis_s": round(made, 1),
        "build_s": round(built, 1),
        "index_mib": round(total / 2**20, 1),
        "bytes_per_chunk": round((total - encoder) / size),
        "bytes_per_chunk_by_file": {k: round(v / size) for k, v in sorted(parts.items())},
        "sqlite_bytes_per_chunk_by_table": sqlite_bytes_by_table(snapshot / "chunks.sqlite", size),
    }


def sqlite_bytes_by_table(path: Path, size: int) -> dict[str, float]:
    """Bytes a chunk of each table and index of a SQLite file (its pages, from dbstat; empty
    when this SQLite was built without it)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        found = connection.execute(
            "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
        ).fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        connection.close()
    return {name: round(pages / size, 1) for name, pages in found}


def measure_in_process(index_dir: Path, asked: list[str], repeat: int = 3) -> dict:
    snapshot = load_current(index_dir, DEFAULT_MODEL)
    # As a server does once it has loaded a snapshot (CPTQA_PREFETCH): its files are read into
    # the page cache, so the timings below never wait on the disk.
    prefetch(snapshot)
    # As `cptqa serve` encodes: every core for a lone question, one thread for overlapping ones.
    encoder = OnnxEncoder(snapshot.encoder_dir, "fp32", threads=1, solo_threads=os.cpu_count() or 1)
    searcher = Searcher(snapshot, encoder)
    vectors = np.vstack([encoder.encode_query(q) for q in asked])
    # Recall of the dense index against an exact scan, on real questions and sampled queries.
    stored = np.asarray(snapshot.vectors)
    sampled = sample_queries(stored, 200, seed=11)
    recall = {}
    for name, queries in (("questions", vectors), ("sampled", sampled)):
        truth = exact_neighbours(stored, queries, 10)
        recall[name] = round(recall_at(snapshot.dense.search(queries, 10)[1], truth), 4)
    timings: dict[str, list[float]] = {"new_query": [], "query": [], "encode": [], "dense": []}
    # Each question asked for the first time: its candidates' chunks come from the store, not
    # the LRU cache that holds them afterwards (a chatbot's questions are mostly new). The
    # passes after it time questions asked before.
    for question in asked:
        started = time.perf_counter()
        searcher.search(question, 5)
        timings["new_query"].append((time.perf_counter() - started) * 1000)
    for _ in range(repeat):
        for question, vector in zip(asked, vectors, strict=True):
            started = time.perf_counter()
            searcher.search(question, 5)
            timings["query"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            encoder.encode_query(question)
            timings["encode"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            snapshot.dense.search(vector[None, :], 100)
            timings["dense"].append((time.perf_counter() - started) * 1000)
    out: dict = {"recall@10": recall, "dense_kind": snapshot.manifest["dense_index"]}
    for name, values in timings.items():
        out[f"{name}_p50_ms"] = round(percentile(values, 50), 2)
        out[f"{name}_p95_ms"] = round(percentile(values, 95), 2)
    return out


def start_server(index_dir: Path, workers: int) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    env = {
        **os.environ,
        "CPTQA_INDEX_DIR": str(index_dir),
        "CPTQA_PORT": str(port),
        "CPTQA_WORKERS": str(workers),
        "CPTQA_RATE_LIMIT_PER_MINUTE": "0",
        "CPTQA_ACCESS_LOG": "false",
        "CPTQA_RELOAD_INTERVAL": "0",
        "CPTQA_LOG_LEVEL": "warning",
        # The snapshot was just built or searched in process, so its pages are in the cache;
        # a server's background read of them (seconds at 1M chunks) would run beside the
        # timed queries. The README measures the prefetch on its own, after dropped caches.
        "CPTQA_PREFETCH": "false",
    }
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = started + 120
    ready = 0
    with httpx.Client(base_url=base, timeout=2) as client:
        while time.perf_counter() < deadline:
            try:
                if client.get("/readyz").status_code == 200:
                    ready += 1
                    if ready >= workers:  # every worker answers once it is up
                        break
                    continue
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
    cold = time.perf_counter() - started
    if ready < 1:
        server.kill()
        raise RuntimeError(f"cptqa serve on {index_dir} did not become ready")
    return server, base, cold


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


def server_memory_mib(server: subprocess.Popen) -> dict[str, float]:
    """Memory of the server and its worker processes (MiB): resident in all, and the private
    part (RssAnon); the rest is the snapshot's memory-mapped files, shared between processes
    and given back by the kernel under pressure."""
    pids = [server.pid]
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    totals = {"rss_mib": 0.0, "private_mib": 0.0}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    totals["rss_mib"] += int(line.split()[1]) / 1024
                elif line.startswith("RssAnon:"):
                    totals["private_mib"] += int(line.split()[1]) / 1024
        except FileNotFoundError:
            pass
    return {k: round(v, 1) for k, v in totals.items()}


def measure_http(base: str, asked: list[str], repeat: int = 3) -> dict:
    timings = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for question in asked:
            client.post("/v1/query", json={"question": question, "k": 5}).raise_for_status()
        for _ in range(repeat):
            for question in asked:
                started = time.perf_counter()
                client.post("/v1/query", json={"question": question, "k": 5}).raise_for_status()
                timings.append((time.perf_counter() - started) * 1000)
    return {
        "http_p50_ms": round(percentile(timings, 50), 2),
        "http_p95_ms": round(percentile(timings, 95), 2),
    }


def throughput(base: str, asked: list[str], clients: int, seconds: float) -> dict:
    """Requests per second with `clients` concurrent keep-alive clients, for at most
    `seconds` and MAX_REQUESTS requests in all."""
    done: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client_loop(offset: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            i = offset
            while time.perf_counter() < stop_at:
                with lock:
                    if len(done) + errors[0] >= MAX_REQUESTS:
                        return
                started = time.perf_counter()
                reply = client.post("/v1/query", json={"question": asked[i % len(asked)], "k": 5})
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if reply.status_code == 200:
                        done.append(elapsed)
                    else:
                        errors[0] += 1
                i += 1

    began = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(n * 7,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    return {
        "clients": clients,
        "requests": len(done),
        "errors": errors[0],
        "rps": round(len(done) / wall, 1),
        "p50_ms": round(percentile(done, 50), 2) if done else None,
        "p95_ms": round(percentile(done, 95), 2) if done else None,
    }


def bench_embedding(base, sizes: list[int]) -> dict:  # type: ignore[no-untyped-def]
    """Passages per second, torch vs ONNX, by batch size, over the real chunk texts."""
    from index.snapshot import embedding_text

    texts = [embedding_text(c) for c in base.store.chunks]
    texts = (texts * (1 + 256 // len(texts)))[:256]
    threads = os.cpu_count() or 1
    rows = []
    embedder = Embedder()
    embedder.use_threads(threads)
    onnx = OnnxEncoder(ensure_export(DEFAULT_MODEL), "fp32", threads=threads)
    for batch in (8, 32, 64):
        embedder.batch_size = batch
        for name, encode in (
            ("torch", lambda t: embedder.encode_passages(t)),
            ("onnx", lambda t, b=batch: onnx.encode_passages(t, batch_size=b)),
        ):
            encode(texts[:batch])  # warm
            started = time.perf_counter()
            encode(texts)
            seconds = time.perf_counter() - started
            rows.append(
                {"encoder": name, "batch": batch, "chunks_per_s": round(len(texts) / seconds, 1)}
            )
    best = max(r["chunks_per_s"] for r in rows)
    # A real ingest embeds each chunk and its sentences (~3.2 per chunk in the dev corpus).
    per_chunk = 1 + len(base.sentences.vectors) / len(base.store.chunks)
    projected = {str(n): round(n * per_chunk / best / 3600, 1) for n in sizes}
    return {
        "threads": threads,
        "rows": rows,
        "texts_per_chunk": round(per_chunk, 2),
        "projected_ingest_hours": projected,
    }


def _write(results: dict, embedding_only: bool) -> None:
    name = "results-embedding.json" if embedding_only else "results-scale.json"
    (ROOT / "bench" / name).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--work", type=Path, default=None, help="keep snapshots here")
    parser.add_argument("--skip-embedding", action="store_true")
    parser.add_argument(
        "--embedding-only", action="store_true", help="only the torch vs ONNX embedding part"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    clients = [int(c) for c in args.clients.split(",") if c]
    workers = [int(w) for w in args.workers.split(",") if w]
    work = args.work or Path(tempfile.mkdtemp(prefix="cptqa-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    asked = questions()
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "sizes": {},
    }
    try:
        base = real_snapshot(work)
        if not args.skip_embedding:
            results["embedding"] = bench_embedding(base, sizes)
            print(json.dumps(results["embedding"], indent=1), flush=True)
        for size in [] if args.embedding_only else sizes:
            index_dir = work / f"synthetic-{size}"
            row: dict = {}
            built = index_dir / "build.json"  # the build's figures, kept with the snapshot
            if (index_dir / "CURRENT").exists() and built.exists():
                row["build"] = {**json.loads(built.read_text()), "reused": True}
            else:
                shutil.rmtree(index_dir, ignore_errors=True)
                index_dir, row["build"] = build_synthetic(base, size, work)
                built.write_text(json.dumps(row["build"]), encoding="utf-8")
            print(size, "build", row["build"], flush=True)
            row["in_process"] = measure_in_process(index_dir, asked)
            print(size, "in process", row["in_process"], flush=True)
            row["serve"] = {}
            for count in workers:
                server, url, cold = start_server(index_dir, count)
                try:
                    served: dict = {"cold_start_s": round(cold, 2)}
                    served.update(measure_http(url, asked))
                    # The floor of a query is encoding it: HTTP p50 over the bare encoder's
                    # p50 on the same questions, measured in this run (measure_in_process).
                    encode = row["in_process"]["encode_p50_ms"]
                    served["http_to_encoder_p50"] = round(served["http_p50_ms"] / encode, 2)
                    served["throughput"] = [
                        throughput(url, asked, n, args.seconds) for n in clients
                    ]
                    served.update(server_memory_mib(server))
                finally:
                    stop_server(server)
                row["serve"][f"workers={count}"] = served
                print(size, f"workers={count}", served, flush=True)
            results["sizes"][str(size)] = row
            _write(results, args.embedding_only)
        _write(results, args.embedding_only)
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"bench process peak RSS {peak_rss_mib():.0f} MiB; results in bench/results-*.json")


if __name__ == "__main__":
    main()
