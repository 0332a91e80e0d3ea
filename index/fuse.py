"""Fusion of several signals about the same chunks into one ranking.

Two ways, both measured with `cptqa eval` on the public dev sets (README, "Retrieval quality"):
reciprocal-rank fusion of rankings, and a convex combination of scores scaled to [0, 1].
The convex combination keeps how far apart candidates are, which ranks alone lose; it won
(hit@1 0.87 -> 0.93 on the seeds, 0.66 -> 0.77 beside the dev corpus) and is the default.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# The constant of reciprocal-rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009): it damps
# the advantage of the very first ranks so that agreement between rankers counts most.
RRF_K = 60


def fuse_rankings(
    rankings: Sequence[tuple[Sequence[int], float]], rrf_k: int = RRF_K
) -> list[tuple[int, float]]:
    """Weighted reciprocal-rank fusion: [(row, score)] best first, ties by row id."""
    fused: dict[int, float] = {}
    for rows, weight in rankings:
        for rank, row in enumerate(rows):
            fused[row] = fused.get(row, 0.0) + weight / (rrf_k + rank + 1)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def rescale(values: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] over the candidates (all zeros when they are all equal)."""
    if not len(values):
        return values
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def fuse_scores(
    rows: Sequence[int], signals: Sequence[tuple[np.ndarray, float]]
) -> list[tuple[int, float]]:
    """Convex combination of per-candidate signals already scaled to [0, 1]: [(row, score)]."""
    total = np.zeros(len(rows), dtype=np.float64)
    for values, weight in signals:
        total += weight * np.asarray(values, dtype=np.float64)
    return list(zip((int(r) for r in rows), total.tolist(), strict=True))
