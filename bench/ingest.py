"""Ingest throughput against the bare encoder's own, on the same texts in the same run.

The floor of an ingest on a CPU is the encoder: whatever else it does (load, chunk, codes,
SQLite, BM25, FAISS, publishing) should cost little beside the model's forward passes. On the
public texts (tests/data/public_sets.json: every corpus the evaluation indexes) this reports:

- the texts an ingest embeds: chunks and distinct sentences, and their tokens;
- the bare encoder on exactly those texts, ONNX on every core, nothing else in the loop: in
  batches cut by tokens as ingest now runs them, and in batches of 8 texts as it did before
  (chunks, then sentences), both as tokens and chunks a second;
- a real ingest (`build_index` from scratch, ONNX on every core, as `cptqa ingest` runs it):
  seconds, chunks and tokens a second, its share of the encoder's throughput, and the time it
  spends beside the encoder (wall seconds, and CPU seconds of the process: the steadier
  figure when other work shares the machine);
- the snapshot's bytes a chunk, by file (the ONNX encoder it carries left out).

    python bench/ingest.py [--budget 2048] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index import DEFAULT_MODEL, build_index  # noqa: E402
from index.encoder import OnnxEncoder, ensure_export  # noqa: E402
from index.passages import TOKEN_BUDGET, encode_texts  # noqa: E402
from index.sentences import chunk_sentences  # noqa: E402
from index.snapshot import embedding_text  # noqa: E402
from index.train import load_public_sets  # noqa: E402
from ingest import chunk_corpus, update_corpus  # noqa: E402

SETS = ROOT / "tests" / "data" / "public_sets.json"


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def ingest_texts(corpora) -> tuple[int, list[str], list[str]]:  # type: ignore[no-untyped-def]
    """Chunks, their embedding texts and their distinct sentences, as an ingest makes them."""
    documents = update_corpus(corpora).documents
    chunks = chunk_corpus(documents)
    by_id = {d.id: d for d in documents}
    sentences = [
        by_id[c.document_id].text[s.start : s.end]
        for c in chunks
        for s in chunk_sentences(by_id[c.document_id], c)
    ]
    texts = list(dict.fromkeys(embedding_text(c) for c in chunks))
    return len(chunks), texts, list(dict.fromkeys(sentences))


def timed(run) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Wall seconds and CPU seconds of this process (all its threads) spent in `run`.

    CPU seconds are the steadier measure on a shared machine: other processes stretch the
    wall time of both sides, not the work each does."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def rate(chunks: int, tokens: int, seconds: tuple[float, float]) -> dict:
    wall, cpu = seconds
    return {
        "seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "chunks_per_s": round(chunks / wall, 1),
        "tokens_per_s": round(tokens / wall),
        "tokens_per_cpu_s": round(tokens / cpu),
    }


def snapshot_bytes(snapshot: Path, chunks: int) -> dict:
    """Bytes a chunk by file (the lexical folder as one), the encoder left out."""
    parts: dict[str, int] = {}
    for path in snapshot.rglob("*"):
        top = path.relative_to(snapshot).parts[0]
        if path.is_file() and top != "encoder":
            parts[top] = parts.get(top, 0) + path.stat().st_size
    by_file = {k: round(v / chunks) for k, v in sorted(parts.items(), key=lambda kv: -kv[1])}
    return {"total": sum(by_file.values()), "by_file": by_file}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=TOKEN_BUDGET, help="tokens a batch")
    parser.add_argument("--keep", action="store_true", help="keep the snapshot folder")
    args = parser.parse_args()
    corpora = load_public_sets(SETS).corpora
    chunks, texts, sentences = ingest_texts(corpora)
    threads = os.cpu_count() or 1
    encoder = OnnxEncoder(ensure_export(DEFAULT_MODEL), "fp32", threads=threads, batch_size=8)
    count = encoder.tokenizer.encode_batch
    tokens = {"chunks": sum(len(e.ids) for e in count(texts))}
    tokens["sentences"] = sum(len(e.ids) for e in count(sentences))
    total = tokens["chunks"] + tokens["sentences"]
    encoder.encode_passages(texts[:16])  # warm
    everything = texts + sentences

    def bucketed() -> None:
        encode_texts(encoder, everything, args.budget)

    def by_eight() -> None:
        encoder.encode_passages(texts)
        encoder.encode_passages(sentences)

    floor = [timed(bucketed)]
    before = timed(by_eight)
    work = Path(tempfile.mkdtemp(prefix="cptqa-ingest-"))
    try:
        factory = lambda: OnnxEncoder(  # noqa: E731 - as api/service.py makes it
            ensure_export(DEFAULT_MODEL), "fp32", threads=threads, batch_size=8
        )
        reports = []
        ingest_s = timed(
            lambda: reports.append(
                build_index(corpora, work / "index", factory, model=DEFAULT_MODEL)
            )
        )
        report = reports[0]
        floor.append(timed(bucketed))  # again after: the machine may have changed meanwhile
        floor_s = (sum(f[0] for f in floor) / 2, sum(f[1] for f in floor) / 2)
        results = {
            "machine": {"cpu": cpu_name(), "cpus": threads, "python": platform.python_version()},
            "texts": {"chunks": chunks, "chunk_texts": len(texts), "sentences": len(sentences)},
            "tokens": {**tokens, "per_chunk": round(total / chunks, 1)},
            "encoder_floor": {
                **rate(chunks, total, floor_s),
                "budget": args.budget,
                "runs_wall_s": [round(f[0], 1) for f in floor],
            },
            "encoder_batches_of_8": rate(chunks, total, before),
            "ingest": {
                **rate(report.chunks, total, ingest_s),
                "share_of_floor": round(floor_s[0] / ingest_s[0], 3),
                "share_of_floor_cpu": round(floor_s[1] / ingest_s[1], 3),
                "beside_encoder_cpu_s": round(ingest_s[1] - floor_s[1], 1),
            },
            "bytes_per_chunk": snapshot_bytes(report.snapshot, report.chunks),
        }
    finally:
        if args.keep:
            print(f"snapshot kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=1))
    (ROOT / "bench" / "results-ingest.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
