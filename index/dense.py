"""The dense index: normalised vectors in FAISS, searched by inner product (= cosine).

The kind is chosen by size. Below IVF_THRESHOLD chunks the index is exact (IndexFlatIP): a
scan of 20,000 vectors takes ~1.3 ms on one core, and nothing beats exact. From there on it is
IVF-Flat (IndexIVFFlat over k-means cells), chosen over HNSW by measurement (bench/scale.py,
300,000 synthetic chunks, 2 cores): IVF built in 12 s and reached recall@10 0.976 at 0.65 ms
a query (nprobe 32); HNSW (M 32) took 145 s to build for 0.975 at 3.4 ms (efSearch 512), or
332 s with efConstruction 200 for 0.969 at 1 ms. Every ingest rebuilds the dense index from
all vectors, so build time is paid on each update: at a million chunks HNSW would cost many
minutes per ingest. IVF's inverted lists are also memory-mapped on load (IO_FLAG_MMAP), so a
cold start reads only the centroids and several server processes share one copy of the
vectors in the page cache.

The index is the snapshot's one copy of the chunk vectors, stored as float16 (FAISS's fp16
scalar quantizer: 768 bytes a vector for all-MiniLM-L6-v2, half of float32, decoded with AVX2
in the scan; a cosine moves by about 1e-4). `IndexRows` reads rows back from it, so no
separate array holds them again.

nprobe is calibrated at build time: the build samples stored vectors, perturbs them into
queries about as far from the data as real questions, and raises nprobe until recall@10
against an exact scan reaches TARGET_RECALL.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import faiss
import numpy as np

log = logging.getLogger(__name__)

FLAT = "flat-ip"
IVF = "ivf-flat-ip"
CODES = "fp16"  # how the index stores a vector (recorded in the manifest)
_FP16 = faiss.ScalarQuantizer.QT_fp16
IVF_THRESHOLD = 20_000
TRAINING_PER_CELL = 40  # k-means sample per cell (faiss asks for at least 39)
NPROBE_STEPS = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256)
TARGET_RECALL = 0.97
CALIBRATION_QUERIES = 200
# Per-dimension Gaussian noise added to sampled vectors. With 0.05 a sampled query's nearest
# chunk has cosine ~0.72 (the dev questions': ~0.60), and its recall@10 tracks the questions'
# within 0.01 over 100,000 chunks (bench/scale.py); 0.03 made queries too easy (0.98 sampled
# against 0.94 for real questions with the same index).
CALIBRATION_NOISE = 0.05


def choose_kind(count: int) -> str:
    return IVF if count >= IVF_THRESHOLD else FLAT


def cells_for(count: int) -> int:
    """k-means cells for `count` vectors: about 4 sqrt(N), the usual IVF rule of thumb."""
    return max(64, int(4 * math.sqrt(count)))


def build_dense_index(vectors: np.ndarray, kind: str | None = None) -> faiss.Index:
    """An inner-product index over `vectors` (rows L2-normalised); `kind` by size if None."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    kind = kind or choose_kind(len(vectors))
    dimension = vectors.shape[1]
    if kind == FLAT:
        flat = faiss.IndexScalarQuantizer(dimension, _FP16, faiss.METRIC_INNER_PRODUCT)
        if len(vectors):
            flat.add(vectors)
        return flat
    if kind != IVF:
        raise ValueError(f"unknown dense index kind {kind!r}")
    cells = cells_for(len(vectors))
    index = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(dimension), dimension, cells, _FP16, faiss.METRIC_INNER_PRODUCT
    )
    index.cp.seed = 1234  # the same corpus trains the same cells
    rng = np.random.default_rng(0)
    sample = min(len(vectors), TRAINING_PER_CELL * cells)
    index.train(vectors[np.sort(rng.choice(len(vectors), size=sample, replace=False))])
    index.add(vectors)
    index.nprobe = calibrate_nprobe(index, vectors)
    return index


def index_params(index: faiss.Index) -> dict[str, Any]:
    """What the manifest records about the dense index."""
    if isinstance(index, faiss.IndexIVF):
        return {"kind": IVF, "codes": CODES, "cells": int(index.nlist), "nprobe": int(index.nprobe)}
    return {"kind": FLAT, "codes": CODES}


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
    exact.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return exact.search(queries, k)[1]


def calibrate_nprobe(index: faiss.Index, vectors: np.ndarray, k: int = 10) -> int:
    """The smallest nprobe step whose recall@k on sampled queries reaches TARGET_RECALL."""
    queries = sample_queries(vectors, CALIBRATION_QUERIES)
    truth = exact_neighbours(vectors, queries, k)
    for nprobe in NPROBE_STEPS:
        index.nprobe = min(nprobe, index.nlist)
        recall = recall_at(index.search(queries, k)[1], truth)
        if recall >= TARGET_RECALL or nprobe >= index.nlist:
            log.info("IVF nprobe %d: recall@%d %.3f (sampled queries)", index.nprobe, k, recall)
            return int(index.nprobe)
    log.warning("IVF recall@%d stays below %.2f; using nprobe %d", k, TARGET_RECALL, nprobe)
    return int(index.nprobe)


def save_dense_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load_dense_index(path: Path, params: dict[str, Any] | None = None) -> faiss.Index:
    """Read the index with its vectors memory-mapped, and set nprobe from the manifest.

    IVF maps its inverted lists with IO_FLAG_MMAP; the flat index maps its codes with
    IO_FLAG_MMAP_IFC (the two flags do not combine: FAISS then refuses the IVF file).

    Mapped IVF lists come back as OnDiskInvertedLists, which by default start 32 threads per
    search to prefetch the probed lists from disk. The snapshot lives in the page cache, so
    that only costs: at 100k chunks and nprobe 32 a search took 2.2 ms with prefetching and
    0.32 ms without (the same as lists read into memory: 0.34 ms).
    """
    kind = (params or {}).get("kind", FLAT)
    flag = faiss.IO_FLAG_MMAP if kind == IVF else faiss.IO_FLAG_MMAP_IFC
    index = faiss.read_index(str(path), flag | faiss.IO_FLAG_READ_ONLY)
    if isinstance(index, faiss.IndexIVF):
        lists = faiss.downcast_InvertedLists(index.invlists)
        if isinstance(lists, faiss.OnDiskInvertedLists):
            lists.prefetch_nthread = 0
        if params and "nprobe" in params:
            index.nprobe = int(params["nprobe"])
    return index


def dense_scores(index: faiss.Index, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-`k` (row ids, cosine scores) for one normalised query vector."""
    k = min(k, index.ntotal)
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    scores, ids = index.search(query.reshape(1, -1).astype(np.float32, copy=False), k)
    keep = ids[0] >= 0
    return ids[0][keep], scores[0][keep]


class IndexRows:
    """The chunk vectors held by a dense index, read back by row as float32.

    Indexing takes a row, a slice or an array of rows, as an ndarray would; `np.asarray` reads
    them all. An IVF index keeps a map from row to (cell, offset) for this, 8 bytes a row in
    memory (FAISS's direct map)."""

    def __init__(self, index: faiss.Index) -> None:
        self.index = index
        if isinstance(index, faiss.IndexIVF):
            index.make_direct_map()
        self.shape = (int(index.ntotal), int(index.d))
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: Any) -> np.ndarray:
        if isinstance(rows, (int, np.integer)):
            return self.index.reconstruct(int(rows) % len(self) if rows < 0 else int(rows))
        if isinstance(rows, slice):
            ids = np.arange(*rows.indices(len(self)), dtype=np.int64)
        else:
            ids = np.asarray(rows, dtype=np.int64).reshape(-1)
        if not len(ids):
            return np.zeros((0, self.shape[1]), dtype=np.float32)
        return self.index.reconstruct_batch(ids)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        rows = self[:]
        return rows if dtype is None else rows.astype(dtype, copy=False)
