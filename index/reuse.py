"""Reuse the vectors of a previous snapshot: only chunks never embedded before are embedded.

A chunk's vector and its sentences' vectors are reused together, keyed by the chunk's
embedding text (its context line and text: index/passages.py): an unchanged document reuses
all its vectors, a changed one reuses those of its unchanged passages, and a renamed file
reuses everything. Embedding is deterministic for a given model
and text, so a reused vector is the vector a rebuild would compute, up to the last float bits
that batching can move and the float16 rounding of the snapshot (a rebuild rounds the same).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from index.snapshot import Snapshot, embedding_text


class VectorCache:
    """Embedding text -> its row in one snapshot; vectors read only for rows reused."""

    def __init__(self, snapshot: Snapshot | None = None) -> None:
        self.snapshot = snapshot
        self.rows: dict[str, int] = {}
        if snapshot is not None:
            offsets = snapshot.sentences.offsets
            for row, chunk in enumerate(snapshot.store.chunks):
                self.rows[embedding_text(chunk)] = row
            self._counts = np.diff(offsets)

    @property
    def dimension(self) -> int:
        return int(self.snapshot.manifest["dimension"]) if self.snapshot is not None else 0

    def row(self, text: str, sentences: int) -> int | None:
        """The previous row of a chunk with this embedding text and this many sentences."""
        row = self.rows.get(text)
        if row is None or int(self._counts[row]) != sentences:
            return None
        return row

    def vectors(self, rows: Sequence[int]) -> tuple[np.ndarray, list[np.ndarray]]:
        """The chunk vectors of `rows` (float32), and each row's sentence vectors."""
        if self.snapshot is None or not rows:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        vectors = np.asarray(self.snapshot.vectors[list(rows)], dtype=np.float32)
        offsets = self.snapshot.sentences.offsets
        stored = self.snapshot.sentences.vectors
        sentences = [
            np.asarray(stored[offsets[r] : offsets[r + 1]], dtype=np.float32) for r in rows
        ]
        return vectors, sentences
