"""Peers side by side: cptqa beside the LangChain FAISS recipe, txtai's hybrid Embeddings and
plain BM25, on the same corpus, the same questions and the same threads, in one process.

    python bench/peers.py [--only langchain,txtai,bm25] [--threads 1] [--repeat 3]

Every system reads the documents through cptqa's loader (so a PDF or HTML file is the same
text for all). The peers index the chunks of LangChain's usual splitter
(RecursiveCharacterTextSplitter, 500 characters, 50 overlap); cptqa builds its own snapshot in a
temporary folder and is queried through `api.service.Service`, as the CLI and server do. All use
the packaged all-MiniLM-L6-v2 from a local folder, offline.

Quality: hit@1, hit@3 and MRR@10 with `cptqa eval`'s gold rule (a passage is gold when it
contains a gold substring, whitespace collapsed). Latency: wall time of one search call (k=10),
after one warm-up pass, over every question `--repeat` times; queries run with `--threads`
threads for torch, FAISS and cptqa alike. Builds use every core, as each tool does by default;
a build's time includes loading the model, reading the files and (for the peers) splitting.

Prints a table per corpus and cptqa's ratios to each peer (peer p50 / cptqa p50, and the hit@3
difference), and writes bench/results-peers.json. A peer whose package is missing is skipped.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Nothing may reach a model hub: every system loads the model from the packaged folder.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index import DEFAULT_MODEL, load_questions, resolve_model_path  # noqa: E402
from ingest import load_documents  # noqa: E402

try:  # the exact gold rule of `cptqa eval`
    from index.evaluate import _collapse as collapse_whitespace
    from index.evaluate import _is_gold as is_gold
except ImportError:  # pragma: no cover - only if evaluate.py renames them
    import re

    def collapse_whitespace(text: str) -> str:
        return re.sub(r"\s+", " ", text).strip()

    def is_gold(passage: str, gold: list[str]) -> bool:
        collapsed = collapse_whitespace(passage)
        return any(g and g in collapsed for g in gold)


DEPTH = 10  # results asked of every system; MRR is cut here, as in `cptqa eval`
CHUNK_SIZE, CHUNK_OVERLAP = 500, 50  # the LangChain recipe's splitter settings
# The bar (>= 3x faster at equal or better hit@3) is set against these two; plain BM25
# is a floor for quality, not a speed target (it runs no model).
TARGET_PEERS = ("langchain", "txtai")
INSTALL_HINT = "install the peers with `pip install -e '.[peers]'`"
DATA = ROOT / "tests" / "data"
CORPORA = {
    "seeds": ([ROOT / "corpus"], [DATA / "dev_questions.jsonl"]),
    "seeds+dev": (
        [ROOT / "corpus", DATA / "dev_corpus"],
        [DATA / "dev_questions.jsonl", DATA / "dev_questions_extra.jsonl"],
    ),
}
# Modules a peer needs; the splitter is shared by all peers, so all need it.
PEER_MODULES = {
    "langchain": ("langchain_text_splitters", "langchain_huggingface", "langchain_community"),
    "txtai": ("langchain_text_splitters", "txtai"),
    "bm25": ("langchain_text_splitters", "bm25s", "Stemmer"),
}
VERSIONED = (
    "langchain-community",
    "langchain-core",
    "langchain-huggingface",
    "langchain-text-splitters",
    "txtai",
    "bm25s",
    "faiss-cpu",
    "torch",
    "sentence-transformers",
    "transformers",
    "onnxruntime",
)

# A search function: (question, k) -> passage texts, best first.
SearchFn = Callable[[str, int], list[str]]
# What building a system gives: its search function and how many passages it indexed.
Built = tuple[SearchFn, int]


@dataclass
class Corpus:
    name: str
    paths: list[Path]
    questions: list  # index.Question
    texts: list[str]
    read_s: float
    chunks: list[str] = field(default_factory=list)  # the splitter's, for the peers
    split_s: float = 0.0


# ---------------------------------------------------------------- metrics and tables


def percentile(values: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile (the rule `cptqa eval` uses)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100.0 * len(ordered)) - 1)]


def gold_rank(passages: Sequence[str], gold: Sequence[str]) -> int | None:
    """1-based rank of the first gold passage within DEPTH, or None."""
    collapsed = [collapse_whitespace(g) for g in gold]
    for rank, passage in enumerate(passages[:DEPTH], start=1):
        if is_gold(passage, collapsed):
            return rank
    return None


def quality(ranks: Sequence[int | None]) -> dict[str, float]:
    """hit@1, hit@3 and MRR@10 over the gold ranks of every question."""
    n = len(ranks)
    return {
        "hit@1": sum(1 for r in ranks if r is not None and r <= 1) / n,
        "hit@3": sum(1 for r in ranks if r is not None and r <= 3) / n,
        "mrr@10": sum(1.0 / r for r in ranks if r) / n,
    }


def ratios(rows: Sequence[dict], baseline: str = "cptqa") -> list[dict]:
    """cptqa against each peer: how many times faster (peer p50 / cptqa p50) and the hit@3
    difference (cptqa minus peer); `target_met` is the issue's bar (>= 3x at >= hit@3), None
    for a peer the bar does not apply to."""
    base = next((r for r in rows if r["system"] == baseline and "p50_ms" in r), None)
    if base is None:
        return []
    out = []
    for row in rows:
        if row["system"] == baseline or "p50_ms" not in row:
            continue
        speedup = row["p50_ms"] / base["p50_ms"] if base["p50_ms"] > 0 else float("inf")
        hit3_diff = base["hit@3"] - row["hit@3"]
        out.append(
            {
                "peer": row["system"],
                "latency_ratio": round(speedup, 2),
                "hit@3_diff": round(hit3_diff, 3),
                "target_met": (
                    bool(speedup >= 3.0 and hit3_diff >= -1e-9)
                    if row["system"] in TARGET_PEERS
                    else None
                ),
            }
        )
    return out


def format_table(rows: Sequence[dict]) -> str:
    """Rows of dicts as aligned text columns (the union of keys, in first-seen order)."""
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    cells = [[_cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


# ---------------------------------------------------------------- threads and availability


def use_threads(threads: int) -> None:
    """Threads for torch and FAISS, process-wide (cptqa gets the same through its Settings)."""
    import torch

    torch.set_num_threads(max(1, threads))
    try:
        import faiss

        faiss.omp_set_num_threads(max(1, threads))
    except ImportError:  # pragma: no cover - faiss-cpu is a cptqa dependency
        pass


def missing_module(peer: str) -> str | None:
    """The first module `peer` needs that is not installed, or None."""
    for module in PEER_MODULES[peer]:
        if importlib.util.find_spec(module) is None:
            return module
    return None


def package_versions() -> dict[str, str]:
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


# ---------------------------------------------------------------- the systems


def split_chunks(texts: Sequence[str]) -> list[str]:
    """LangChain's usual splitter over each document's text."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    return [chunk for text in texts for chunk in splitter.split_text(text)]


def build_langchain(corpus: Corpus, model_path: str, work: Path, threads: int) -> Built:
    """The recipe as users write it: HuggingFaceEmbeddings + FAISS.from_texts."""
    from langchain_community.vectorstores import FAISS
    from langchain_huggingface import HuggingFaceEmbeddings

    embeddings = HuggingFaceEmbeddings(model_name=model_path)
    store = FAISS.from_texts(corpus.chunks, embeddings)

    def search(question: str, k: int) -> list[str]:
        return [doc.page_content for doc in store.similarity_search(question, k=k)]

    return search, len(corpus.chunks)


def build_txtai(corpus: Corpus, model_path: str, work: Path, threads: int) -> Built:
    """txtai's hybrid Embeddings (dense + its BM25, fused) over the same chunks."""
    import txtai

    embeddings = txtai.Embeddings(path=model_path, hybrid=True, content=True)
    embeddings.index(corpus.chunks)

    def search(question: str, k: int) -> list[str]:
        return [row["text"] for row in embeddings.search(question, k)]

    return search, len(corpus.chunks)


def build_bm25(corpus: Corpus, model_path: str, work: Path, threads: int) -> Built:
    """Plain bm25s with cptqa's stemmer and English stop words over the same chunks."""
    import bm25s
    import Stemmer

    try:
        from index.lexical import STEMMER
    except ImportError:  # pragma: no cover
        STEMMER = "english"
    stemmer = Stemmer.Stemmer(STEMMER)
    tokens = bm25s.tokenize(corpus.chunks, stopwords="en", stemmer=stemmer, show_progress=False)
    retriever = bm25s.BM25()
    retriever.index(tokens, show_progress=False)
    chunks = corpus.chunks

    def search(question: str, k: int) -> list[str]:
        query = bm25s.tokenize([question], stopwords="en", stemmer=stemmer, show_progress=False)
        ids, _ = retriever.retrieve(query, k=min(k, len(chunks)), show_progress=False)
        return [chunks[int(i)] for i in ids[0]]

    return search, len(chunks)


def build_cptqa(corpus: Corpus, model_path: str, work: Path, threads: int) -> Built:
    """cptqa through its public service: build a snapshot, load it, search."""
    from api.service import Service
    from api.settings import Settings

    settings = Settings(  # the same packaged model as the peers, whatever `.env` says
        model=DEFAULT_MODEL,
        index_dir=work / "cptqa-index",
        corpus_dir=corpus.paths[0],
        query_threads=threads,
        solo_query_threads=threads,  # no more threads than the peers get
    )
    service = Service(settings)
    report = service.build(corpus.paths)
    service.load()

    def search(question: str, k: int) -> list[str]:
        return [hit.chunk.text for hit in service.search(question, k).hits]

    return search, report.chunks


BUILDERS: dict[str, Callable[[Corpus, str, Path, int], Built]] = {
    "cptqa": build_cptqa,
    "langchain": build_langchain,
    "txtai": build_txtai,
    "bm25": build_bm25,
}


# ---------------------------------------------------------------- running


def build_system(name: str, corpus: Corpus, model_path: str, threads: int, work: Path) -> dict:
    """Build one system with every core; the row holds its search function under "_search",
    or the error that stopped it (a peer that breaks is reported, the others still run)."""
    row: dict = {"system": name}
    use_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    try:
        search, chunks = BUILDERS[name](corpus, model_path, work, threads)
    except Exception as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"
        print(f"  {name} failed: {row['error']}", flush=True)
        return row
    build_s = time.perf_counter() - started
    if name != "cptqa":  # cptqa reads its files inside its build; the peers share one read
        build_s += corpus.read_s + corpus.split_s
    row.update(chunks=chunks, build_s=round(build_s, 3), _search=search)
    return row


def measure(rows: list[dict], questions: Sequence, repeat: int) -> None:
    """Score one warm-up pass per system, then time `repeat` passes, interleaving the systems
    pass by pass so that a busy neighbour slows them all alike."""
    for row in rows:
        if "_search" not in row:
            continue
        try:
            ranks = [gold_rank(row["_search"](q.question, DEPTH), q.gold) for q in questions]
        except Exception as exc:  # as in build_system: report it, keep the others
            del row["_search"]
            row["error"] = f"{type(exc).__name__}: {exc}"
            print(f"  {row['system']} failed: {row['error']}", flush=True)
            continue
        row["_quality"] = quality(ranks)
    live = [row for row in rows if "_search" in row]
    latencies: dict[str, list[float]] = {row["system"]: [] for row in live}
    for _ in range(repeat):
        for row in live:
            search = row["_search"]
            for question in questions:
                started = time.perf_counter()
                search(question.question, DEPTH)
                latencies[row["system"]].append((time.perf_counter() - started) * 1000)
    for row in live:
        times = latencies[row["system"]]
        del row["_search"]  # drops the model and index with it
        row["p50_ms"] = round(percentile(times, 50), 2)
        row["p95_ms"] = round(percentile(times, 95), 2)
        row.update({name: round(value, 3) for name, value in row.pop("_quality").items()})


def load_corpus(name: str) -> Corpus:
    paths, question_files = CORPORA[name]
    started = time.perf_counter()
    texts = [doc.text for doc in load_documents(paths).documents]
    read_s = time.perf_counter() - started
    questions = [q for path in question_files for q in load_questions(path)]
    return Corpus(name, paths, questions, texts, read_s)


def bench_corpus(name: str, systems: list[str], model_path: str, args) -> dict:
    corpus = load_corpus(name)
    if any(s != "cptqa" for s in systems):
        started = time.perf_counter()
        corpus.chunks = split_chunks(corpus.texts)
        corpus.split_s = time.perf_counter() - started
    print(
        f"\n== {name}: {len(corpus.texts)} documents, {len(corpus.questions)} questions, "
        f"{len(corpus.chunks)} splitter chunks ==",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="cptqa-peers-") as tmp:
        rows = [
            build_system(system, corpus, model_path, args.threads, Path(tmp) / system)
            for system in systems
        ]
        use_threads(args.threads)
        measure(rows, corpus.questions, args.repeat)
    gc.collect()  # free this corpus's models and indexes before the next corpus
    compared = ratios(rows)
    print(format_table(rows))
    if compared:
        print("\ncptqa vs peers (latency_ratio = peer p50 / cptqa p50; hit@3_diff = cptqa - peer)")
        print(format_table(compared))
    return {
        "corpus": name,
        "paths": [str(p.relative_to(ROOT)) for p in corpus.paths],
        "documents": len(corpus.texts),
        "questions": len(corpus.questions),
        "systems": rows,
        "ratios": compared,
    }


def cptqa_encoder() -> str:
    """Which question encoder cptqa's settings choose (recorded with the figures)."""
    from api.settings import Settings

    return str(getattr(Settings(model=DEFAULT_MODEL), "encoder", "torch"))


def preload(systems: Sequence[str]) -> None:
    """Import every system's libraries up front, so no build timer pays for imports (torch and
    transformers alone take seconds, and only the first system would pay them)."""
    modules = ["torch", "faiss", "sentence_transformers", "transformers", "api.service"]
    modules += ["langchain_community.vectorstores"] if "langchain" in systems else []
    modules += [m for s in systems if s != "cptqa" for m in PEER_MODULES[s]]
    for module in dict.fromkeys(modules):
        importlib.import_module(module)


def available_systems(only: list[str]) -> list[str]:
    """cptqa, then each asked-for peer whose packages are installed (the rest say why not)."""
    systems = ["cptqa"]
    for peer in only:
        missing = missing_module(peer)
        if missing:
            print(f"skipped {peer}: Python module {missing!r} is missing; {INSTALL_HINT}")
        else:
            systems.append(peer)
    return systems


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        default=",".join(PEER_MODULES),
        help="comma-separated peers to run beside cptqa (default: langchain,txtai,bm25)",
    )
    parser.add_argument("--threads", type=int, default=1, help="threads per query, all systems")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the questions")
    parser.add_argument(
        "--corpora", default=",".join(CORPORA), help="comma-separated: " + ", ".join(CORPORA)
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results-peers.json")
    args = parser.parse_args(argv)
    args.only = [p.strip() for p in args.only.split(",") if p.strip()]
    args.corpora = [c.strip() for c in args.corpora.split(",") if c.strip()]
    for value, known, flag in (
        (args.only, PEER_MODULES, "--only"),
        (args.corpora, CORPORA, "--corpora"),
    ):
        unknown = sorted(set(value) - set(known))
        if unknown:
            parser.error(f"{flag}: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    if args.threads < 1 or args.repeat < 1:
        parser.error("--threads and --repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = [round(x, 2) for x in os.getloadavg()]  # a busy neighbour shows here
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on its own logger
    systems = available_systems(args.only)
    preload(systems)
    model_path = str(resolve_model_path(DEFAULT_MODEL))
    encoder = cptqa_encoder()
    print(f"model {model_path}; cptqa question encoder: {encoder}; {args.threads} thread(s)")
    results = [bench_corpus(name, systems, model_path, args) for name in args.corpora]
    report = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "threads": args.threads,
        "repeat": args.repeat,
        "k": DEPTH,
        "splitter": {"chunk_size": CHUNK_SIZE, "chunk_overlap": CHUNK_OVERLAP},
        "cptqa_encoder": encoder,
        "versions": package_versions(),
        "corpora": results,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"load average before {load_before}, after {report['machine']['load_average_after']}")
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    failed = [r["system"] for c in results for r in c["systems"] if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
