"""The dense index: normalised vectors in FAISS, searched by inner product (= cosine)."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

# Exact search is fast enough (and exact) for the corpora a coding department keeps by hand;
# approximate indexes come with the scale work, chosen by size.
INDEX_KIND = "flat-ip"


def build_dense_index(vectors: np.ndarray) -> faiss.Index:
    """An exact inner-product index over `vectors` (rows must be L2-normalised)."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def save_dense_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load_dense_index(path: Path) -> faiss.Index:
    return faiss.read_index(str(path))


def dense_scores(index: faiss.Index, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-`k` (row ids, cosine scores) for one normalised query vector."""
    k = min(k, index.ntotal)
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    scores, ids = index.search(query.reshape(1, -1).astype(np.float32, copy=False), k)
    keep = ids[0] >= 0
    return ids[0][keep], scores[0][keep]
