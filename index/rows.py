"""Picking the best rows of a score array fast, without sorting all of them."""

from __future__ import annotations

import numpy as np

_SAMPLE_STRIDE = 16


def best_code_rows(rows: np.ndarray, matched: np.ndarray, bm25: np.ndarray, k: int) -> list[int]:
    """The `k` rows that cite most of the question's codes, then score best in BM25, then come
    first. A common code of a large corpus has thousands of rows: only those that can make the
    cut (the k-th best (matched, bm25) and every row that ties or beats it) are sorted."""
    if len(rows) > 4 * k:
        key = matched * (float(bm25.max()) + 1.0) + bm25  # orders as (matched, bm25)
        floor = np.partition(key, len(key) - k)[len(key) - k]
        keep = key >= floor
        rows, matched, bm25 = rows[keep], matched[keep], bm25[keep]
    # lexsort: the last key sorts first; ties keep ascending row order.
    order = np.lexsort((rows, -bm25, -matched))[:k]
    return [int(row) for row in rows[order]]


def top_rows(scores: np.ndarray, k: int) -> list[int]:
    """The best `k` rows with a positive score, best first (ties by row).

    Large arrays are not partitioned whole (2 ms at a million chunks). The k-th best score of
    every 16th row is no higher than the k-th best of all rows, so the best k all score at
    least that much: only the rows that do (about 16 k of them) are sorted (0.7 ms).
    """
    if k <= 0:
        return []
    if len(scores) >= 4 * _SAMPLE_STRIDE * k:
        sample = scores[::_SAMPLE_STRIDE]
        floor = np.partition(sample, len(sample) - k)[len(sample) - k]
        rows = np.flatnonzero(scores >= floor) if floor > 0 else np.flatnonzero(scores > 0)
    else:
        rows = np.flatnonzero(scores > 0)
    order = np.lexsort((rows, -scores[rows]))[:k]
    return [int(row) for row in rows[order]]
