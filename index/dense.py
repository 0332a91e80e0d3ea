"""The dense index: normalised vectors in FAISS, searched by inner product (= cosine).

The kind is chosen by size. Below HNSW_THRESHOLD chunks the index is exact (IndexFlatIP): a
scan of 20,000 vectors takes ~1.3 ms on one core, and nothing beats exact. From there on it is
HNSW (IndexHNSWFlat): no training, so an incremental ingest never has to re-cluster; the best
latency for a given recall of the graph and partition indexes we measured (bench/scale.py:
recall@10 0.97 at ~0.2 ms per query over 100,000 vectors, against 6.5 ms for the exact scan;
IVF-Flat needed k-means training and a probe count that depends on how the corpus clusters).
Its storage (the vectors) is memory-mapped on load (IO_FLAG_MMAP_IFC), so a cold start does
not read the whole file and several server processes share one copy in the page cache; only
the graph's links (8 bytes x HNSW_M per vector on average) are read into memory.

efSearch is calibrated at build time: the build samples stored vectors, perturbs them into
queries about as far from the data as real questions, and raises efSearch until recall@10
against an exact scan reaches TARGET_RECALL.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import faiss
import numpy as np

log = logging.getLogger(__name__)

FLAT = "flat-ip"
HNSW = "hnsw-ip"
HNSW_THRESHOLD = 20_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
EF_SEARCH_STEPS = (64, 96, 128, 192, 256, 384, 512)
TARGET_RECALL = 0.97
CALIBRATION_QUERIES = 200
# Per-dimension Gaussian noise added to sampled vectors. With 0.05 a sampled query's nearest
# chunk has cosine ~0.72 (the dev questions': ~0.60), and its recall@10 tracks the questions'
# within 0.01 over 100,000 chunks (bench/scale.py); 0.03 made queries too easy (0.98 sampled
# against 0.94 for real questions at the same efSearch).
CALIBRATION_NOISE = 0.05


def choose_kind(count: int) -> str:
    return HNSW if count >= HNSW_THRESHOLD else FLAT


def build_dense_index(vectors: np.ndarray, kind: str | None = None) -> faiss.Index:
    """An inner-product index over `vectors` (rows L2-normalised); `kind` by size if None."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    kind = kind or choose_kind(len(vectors))
    if kind == FLAT:
        index = faiss.IndexFlatIP(vectors.shape[1])
    elif kind == HNSW:
        index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    else:
        raise ValueError(f"unknown dense index kind {kind!r}")
    if len(vectors):
        index.add(vectors)
    if kind == HNSW:
        index.hnsw.efSearch = calibrate_ef_search(index, vectors)
    return index


def index_kind(index: faiss.Index) -> str:
    return HNSW if isinstance(index, faiss.IndexHNSW) else FLAT


def index_params(index: faiss.Index) -> dict[str, Any]:
    """What the manifest records about the dense index."""
    if isinstance(index, faiss.IndexHNSW):
        return {
            "kind": HNSW,
            "m": HNSW_M,
            "ef_construction": int(index.hnsw.efConstruction),
            "ef_search": int(index.hnsw.efSearch),
        }
    return {"kind": FLAT}


def sample_queries(vectors: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """`count` stored vectors with Gaussian noise, re-normalised: queries near the data."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(vectors), size=min(count, len(vectors)), replace=False)
    noisy = vectors[np.sort(rows)] + rng.normal(0, CALIBRATION_NOISE, (len(rows), vectors.shape[1]))
    noisy = noisy.astype(np.float32)
    return noisy / np.linalg.norm(noisy, axis=1, keepdims=True)


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's true top-k found in its approximate top-k."""
    k = truth.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, truth, strict=True)]))


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    return exact.search(queries, k)[1]


def calibrate_ef_search(index: faiss.Index, vectors: np.ndarray, k: int = 10) -> int:
    """The smallest efSearch step whose recall@k on sampled queries reaches TARGET_RECALL."""
    if len(vectors) <= k:
        return EF_SEARCH_STEPS[0]
    queries = sample_queries(vectors, CALIBRATION_QUERIES)
    truth = exact_neighbours(vectors, queries, k)
    for ef in EF_SEARCH_STEPS:
        index.hnsw.efSearch = ef
        recall = recall_at(index.search(queries, k)[1], truth)
        if recall >= TARGET_RECALL:
            log.info(
                "HNSW efSearch %d: recall@%d %.3f on %d sampled queries",
                ef,
                k,
                recall,
                len(queries),
            )
            return ef
    log.warning("HNSW recall@%d stays below %.2f; using efSearch %d", k, TARGET_RECALL, ef)
    return EF_SEARCH_STEPS[-1]


def save_dense_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load_dense_index(path: Path, params: dict[str, Any] | None = None) -> faiss.Index:
    """Read the index with its vectors memory-mapped, and set efSearch from the manifest."""
    index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
    if isinstance(index, faiss.IndexHNSW) and params and "ef_search" in params:
        index.hnsw.efSearch = int(params["ef_search"])
    return index


def dense_scores(index: faiss.Index, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-`k` (row ids, cosine scores) for one normalised query vector."""
    k = min(k, index.ntotal)
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    scores, ids = index.search(query.reshape(1, -1).astype(np.float32, copy=False), k)
    keep = ids[0] >= 0
    return ids[0][keep], scores[0][keep]
