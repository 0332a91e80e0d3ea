"""Ranking benchmark: what the learned ranker costs a query, and what a cross-encoder would.

Indexes the public judged sets (seeds, the first dev corpus and the devset: every text the
ranker is judged on), then, on the same questions in one run:
- query latency in process (p50 / p95) with the shipped learned model and with the
  hand-weighted scorer, and the bare question encoder's, so the figures read as ratios;
- the forward pass a cross-encoder reranker would add: the same MiniLM network (the packaged
  all-MiniLM-L6-v2 weights, ONNX) over each question joined with its top N passages, one batch
  a question. A fine-tuned cross-encoder adds only a linear head to this pass, so this is its
  floor.

    python bench/ranking.py [--rerank 10,20] [--questions 100] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index import DEFAULT_MODEL, Searcher, build_index, load_current  # noqa: E402
from index.encoder import OnnxEncoder, _feeds, ensure_export  # noqa: E402
from index.train import load_public_sets  # noqa: E402

SETS = ROOT / "tests" / "data" / "public_sets.json"


def _percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[max(0, int(0.95 * len(ordered)) - 1)]


def _timed(call, items) -> list[float]:
    times = []
    for item in items:
        started = time.perf_counter()
        call(item)
        times.append((time.perf_counter() - started) * 1000.0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rerank", default="10,20", help="candidates a cross-encoder reads")
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--work", type=Path, default=ROOT / ".cptqa" / "public")
    args = parser.parse_args()

    sets = load_public_sets(SETS)
    export = ensure_export(DEFAULT_MODEL)
    encoder = OnnxEncoder(export, "fp32")
    build_index(sets.corpora, args.work, lambda: encoder, model=DEFAULT_MODEL)
    snapshot = load_current(args.work, DEFAULT_MODEL)
    questions = [q.question for qs in sets.questions().values() for q in qs]
    questions = questions[: args.questions]
    learned, hand = Searcher(snapshot, encoder), Searcher(snapshot, encoder, None)
    for question in questions[:20]:  # warm caches, as a serving process is
        learned.search(question, 5)
        hand.search(question, 5)

    rows: dict[str, tuple[float, float]] = {}
    rows["encoder alone"] = _percentiles(_timed(encoder.encode_query, questions))
    rows["search, hand-weighted"] = _percentiles(_timed(lambda q: hand.search(q, 5), questions))
    rows["search, learned"] = _percentiles(_timed(lambda q: learned.search(q, 5), questions))
    rows["search, learned, explained"] = _percentiles(
        _timed(lambda q: learned.search(q, 5, explain=True), questions)
    )
    session = encoder._session  # the one-thread session, as overlapping questions get

    def cross_pass(batch: list[str]) -> None:
        session.run(None, _feeds(encoder._tokenizer, batch))

    for n in (int(x) for x in args.rerank.split(",")):
        pairs = [[f"{q} {h.chunk.text}" for h in learned.search(q, n).hits] for q in questions[:40]]
        rows[f"cross-encoder pass, {n} passages"] = _percentiles(_timed(cross_pass, pairs))
    floor = rows["encoder alone"][0]
    print(
        f"{len(snapshot.store.chunks)} chunks; {len(questions)} questions; "
        f"{platform.processor() or platform.machine()}"
    )
    print(f"{'':38s} {'p50 ms':>8s} {'p95 ms':>8s} {'p50 / encoder':>14s}")
    for name, (p50, p95) in rows.items():
        print(f"{name:38s} {p50:8.2f} {p95:8.2f} {p50 / floor:14.2f}")
    out = ROOT / "bench" / "results-ranking.json"
    out.write_text(
        json.dumps({k: {"p50_ms": v[0], "p95_ms": v[1]} for k, v in rows.items()}, indent=2),
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
