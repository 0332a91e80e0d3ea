"""Fusion of several rankings of the same chunks into one."""

from __future__ import annotations

from collections.abc import Sequence

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
