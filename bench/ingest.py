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
- the snapshot's bytes a chunk, by file (the ONNX encoder it carries left out);
- the same ingest on a Ray cluster (`cptqa ingest --ray`, index/ray_build.py) of 1 and 2
  nodes of one CPU each, started here on loopback (tests/ray_cluster.py; needs root for its
  network namespace and the `ray` extra): seconds, chunks a second in all and a node, each
  stage's wall seconds (load, chunk, embed; the driver's snapshot write, with its lexical index
  and dense index, where IVF training happens above 50,000 chunks) and the driver's CPU
  seconds; then a projection of 1,000,000 chunks on N workers from the measured rate a worker.
  On a 2-core machine the nodes share its cores with each other and the driver: the 2-node
  figures say what a second node costs and brings here, not what a second machine would.

With `--copies N` every run takes N copies of the public texts, each made distinct by a mark
on every "the" ("the2 ") so that no chunk or sentence of one copy is reused for another: N
times the embedding work, with the fixed costs of a run (Ray Data starting its tasks and
actors) spread over it.

    python bench/ingest.py [--budget 2048] [--keep] [--no-ray] [--write-1m-s 297] [--copies N]
                           [--whole-node-only]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import index.build  # noqa: E402
import index.passages  # noqa: E402
import index.snapshot  # noqa: E402
from index import DEFAULT_MODEL, build_index  # noqa: E402
from index.build import IngestStages  # noqa: E402
from index.encoder import OnnxEncoder, ensure_export  # noqa: E402
from index.passages import TOKEN_BUDGET, encode_texts  # noqa: E402
from index.sentences import chunk_sentences  # noqa: E402
from index.snapshot import embedding_text  # noqa: E402
from index.train import load_public_sets  # noqa: E402
from ingest import chunk_corpus, update_corpus  # noqa: E402

SETS = ROOT / "tests" / "data" / "public_sets.json"
# The driver's snapshot write at 1,000,000 synthetic chunks (SQLite, IVF training, bm25s,
# signals), from bench/scale.py on this machine, quiet (README, "Speed and scale").
WRITE_1M_S = 297.0


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def distinct_copies(corpora: list[Path], copies: int, into: Path) -> list[Path]:
    """`copies` copies of the corpus folders, copy k with "the" marked "the{k}" in every file
    (copy 1 is the texts as they are)."""
    made = []
    for k in range(1, copies + 1):
        for n, corpus in enumerate(corpora):
            target = into / f"copy{k}" / f"{n}-{corpus.name}"
            for source in sorted(p for p in corpus.rglob("*") if p.is_file()):
                out = target / source.relative_to(corpus)
                out.parent.mkdir(parents=True, exist_ok=True)
                text = source.read_text(encoding="utf-8")
                out.write_text(text if k == 1 else text.replace("the ", f"the{k} "), "utf-8")
            made.append(target)
    return made


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


@contextlib.contextmanager
def stage_clock() -> Iterator[dict[str, float]]:
    """Wall seconds spent in each part of `build_index` while inside (module attributes
    wrapped with a timer, put back on exit): load (reading files and what changed), embed,
    write (the driver's snapshot write), lexical and dense (inside write)."""
    clock: dict[str, float] = {}
    targets = [
        ("load", index.build, "update_corpus"),
        ("embed", index.passages, "_encode_new"),
        ("write", index.build, "write_snapshot"),
        ("dense", index.snapshot, "build_dense_index"),
        ("lexical", index.snapshot.LexicalIndex, "build"),
    ]
    saved = [(owner, name, owner.__dict__[name]) for _, owner, name in targets]
    for (part, owner, name), (_, _, original) in zip(targets, saved, strict=True):
        function = getattr(owner, name)
        timer = clocked(function, clock, part)
        setattr(owner, name, staticmethod(timer) if isinstance(original, classmethod) else timer)
    try:
        yield clock
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def clocked(function, clock: dict[str, float], part: str):  # type: ignore[no-untyped-def]
    def timed_call(*args, **kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            clock[part] = clock.get(part, 0.0) + time.perf_counter() - started

    return timed_call


def clocked_build(corpora, index_dir: Path, embedder, stages: IngestStages) -> dict:  # type: ignore[no-untyped-def]
    """A from-scratch `build_index`, with its stages' wall seconds and this process's CPU."""
    with stage_clock() as clock:
        chunk = clocked(stages.chunk, clock, "chunk")
        staged = IngestStages(read=stages.read, chunk=chunk)
        reports = []
        seconds = timed(
            lambda: reports.append(
                build_index(corpora, index_dir, embedder, model=DEFAULT_MODEL, stages=staged)
            )
        )
    return {
        "chunks": reports[0].chunks,
        "seconds": round(seconds[0], 1),
        "driver_cpu_s": round(seconds[1], 1),
        "stages_s": {k: round(v, 2) for k, v in clock.items()},
    }


def ray_driver(address: str, out: Path, corpora: list[Path]) -> None:
    """The Ray run's driver (run inside the cluster's namespace by `ray_runs`)."""
    from index.ray_build import RayIngest

    ray = RayIngest.join(address)
    work = Path(tempfile.mkdtemp(prefix="cptqa-ingest-ray-"))
    try:
        made = []
        factory = ray.encoder(DEFAULT_MODEL)
        embedder = lambda: made.append(factory()) or made[-1]  # noqa: E731 - keeps its plan_s
        result = clocked_build(corpora, work / "index", embedder, ray.stages())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    plan = round(sum(e.plan_s for e in made), 2)
    start = round(sum(e.start_s for e in made), 2)
    out.write_text(json.dumps({**result, "workers": ray.pool(), "plan_s": plan, "start_s": start}))


def ray_runs(tokens: int, corpora: list[Path], whole_node_only: bool = False) -> list[dict]:
    """Ray ingests on clusters started here: 1 and 2 one-CPU nodes, and 1 node with every CPU
    of the machine (the same cores as the local ingest: a node against a local ingest)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from ray_cluster import ray_cluster

    runs = []
    cpus = os.cpu_count() or 1
    shapes = ((1, cpus),) if whole_node_only else ((1, 1), (2, 1), (1, cpus))
    for nodes, node_cpus in shapes:
        folder = Path(tempfile.mkdtemp(prefix="cptqa-bench-ray-"))
        try:
            with ray_cluster(folder, workers=nodes - 1, head_cpus=node_cpus) as cluster:
                out = folder / "run.json"
                driver = [sys.executable, __file__, "--driver", cluster.address, "--out", str(out)]
                driver += [f"--corpus={c}" for c in corpora]
                subprocess.run(cluster.command(*driver), check=True)
                run = json.loads(out.read_text())
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        run.update(nodes=nodes, cpus_a_node=node_cpus, **throughput(run, tokens, nodes))
        runs.append(run)
        print(f"ray, {nodes} node(s) of {node_cpus} CPU(s):", json.dumps(run), flush=True)
    return runs


def throughput(run: dict, tokens: int, nodes: int) -> dict:
    stages = run["stages_s"]
    driver_s = (
        stages.get("write", 0.0)
        + run.get("plan_s", 0.0)
        + max(
            0.0,
            run["seconds"] - sum(stages.get(k, 0.0) for k in ("load", "chunk", "embed", "write")),
        )
    )
    return {
        "chunks_per_s": round(run["chunks"] / run["seconds"], 1),
        "tokens_per_s": round(tokens / run["seconds"]),
        "chunks_per_s_a_node": round(run["chunks"] / run["seconds"] / nodes, 1),
        "embed_chunks_per_s_a_worker": round(run["chunks"] / stages["embed"] / run["workers"], 2),
        "driver_only_s": round(driver_s, 1),
        "driver_share": round(driver_s / run["seconds"], 3),
    }


def projection(rate: float, per_chunk_driver_s: float, write_1m_s: float) -> list[dict]:
    """1,000,000 chunks on N workers (one core each) at `rate` chunks/s a worker, plus the
    driver's own work: its snapshot write at 1M and its per-chunk share (planning, gathering)."""
    rows = []
    for workers in (1, 2, 8, 32, 128, 512):
        embed = 1_000_000 / (rate * workers)
        driver = write_1m_s + 1_000_000 * per_chunk_driver_s
        rows.append(
            {
                "workers": workers,
                "embed_h": round(embed / 3600, 2),
                "driver_h": round(driver / 3600, 2),
                "total_h": round((embed + driver) / 3600, 2),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=TOKEN_BUDGET, help="tokens a batch")
    parser.add_argument("--keep", action="store_true", help="keep the snapshot folder")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray runs")
    parser.add_argument("--write-1m-s", type=float, default=WRITE_1M_S)
    parser.add_argument("--copies", type=int, default=1, help="copies of the public texts")
    parser.add_argument(
        "--whole-node-only", action="store_true", help="on Ray, only the node with every CPU"
    )
    parser.add_argument("--driver", metavar="ADDRESS", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, action="append", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        ray_driver(args.driver, args.out, args.corpus)
        return
    if args.copies < 1:
        parser.error("--copies takes a whole number of 1 or more")
    corpora = load_public_sets(SETS).corpora
    copied = tempfile.TemporaryDirectory(prefix="cptqa-ingest-copies-")  # removed on exit
    if args.copies > 1:
        corpora = distinct_copies(corpora, args.copies, Path(copied.name))
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
        local = clocked_build(corpora, work / "clocked", factory, IngestStages())
        local.update(workers=1, **throughput({**local, "workers": 1}, total, 1))
        print("local, clocked:", json.dumps(local), flush=True)
        report = reports[0]
        floor.append(timed(bucketed))  # again after: the machine may have changed meanwhile
        floor_s = (sum(f[0] for f in floor) / 2, sum(f[1] for f in floor) / 2)
        results = {
            "machine": {"cpu": cpu_name(), "cpus": threads, "python": platform.python_version()},
            "texts": {
                "copies": args.copies,
                "chunks": chunks,
                "chunk_texts": len(texts),
                "sentences": len(sentences),
            },
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
            "local_stages": local,
        }
        if not args.no_ray:
            runs = ray_runs(total, corpora, args.whole_node_only)
            best = max(runs, key=lambda r: r["embed_chunks_per_s_a_worker"])
            others = best["driver_only_s"] - best["stages_s"].get("write", 0.0)
            results["ray"] = runs
            # A node with every CPU of this machine against the local ingest on the same cores.
            whole = [r for r in runs if r["nodes"] == 1 and r["cpus_a_node"] > 1]
            if whole:
                node, embed = whole[0], local["stages_s"]["embed"]
                results["ray_node_to_local"] = round(
                    node["chunks_per_s"] / local["chunks_per_s"], 2
                )
                # The same, embed stage against embed stage, and without the stage's start-up
                # (its actors starting and opening the encoder: the time to its first vectors),
                # which a large corpus spreads over far more batches.
                results["ray_node_embed_to_local"] = round(embed / node["stages_s"]["embed"], 2)
                results["ray_node_embed_after_start_to_local"] = round(
                    embed / (node["stages_s"]["embed"] - node["start_s"]), 2
                )
            results["projection_1m"] = {
                "rate_a_worker": best["embed_chunks_per_s_a_worker"],
                "from_nodes": best["nodes"],
                "driver_write_1m_s": args.write_1m_s,
                "driver_s_a_chunk": round(others / best["chunks"], 5),
                "rows": projection(
                    best["embed_chunks_per_s_a_worker"], others / best["chunks"], args.write_1m_s
                ),
            }
    finally:
        copied.cleanup()
        if args.keep:
            print(f"snapshot kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=1))
    (ROOT / "bench" / "results-ingest.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
