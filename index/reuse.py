"""Reuse the vectors of a previous snapshot: only text never embedded before is embedded.

Vectors are keyed by the exact text that was embedded (a chunk's context line and text, or one
sentence), so an unchanged document reuses all its vectors, a changed one reuses those of its
unchanged passages, and a renamed file reuses everything. Embedding is deterministic for a
given model and text, so a reused vector is the vector a rebuild would compute (up to the
last float bits that batching can move).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from index.snapshot import Snapshot, embedding_text

Encode = Callable[[list[str]], np.ndarray]


class VectorCache:
    """Text -> vector lookups over one snapshot's passage and sentence vectors."""

    def __init__(
        self, passages: dict[str, np.ndarray], sentences: dict[str, np.ndarray], dimension: int
    ) -> None:
        self.passages = passages
        self.sentences = sentences
        self.dimension = dimension

    @classmethod
    def empty(cls, dimension: int = 0) -> VectorCache:
        return cls({}, {}, dimension)

    @classmethod
    def of(cls, snapshot: Snapshot) -> VectorCache:
        store = snapshot.store
        passages = {
            embedding_text(chunk): snapshot.vectors[row] for row, chunk in enumerate(store.chunks)
        }
        sentences: dict[str, np.ndarray] = {}
        spans, offsets = snapshot.sentences.spans, snapshot.sentences.offsets
        for row, chunk in enumerate(store.chunks):
            text = store.documents[chunk.document_id].text
            for index in range(int(offsets[row]), int(offsets[row + 1])):
                start, end = int(spans[index][0]), int(spans[index][1])
                sentences[text[start:end]] = snapshot.sentences.vectors[index]
        return cls(passages, sentences, int(snapshot.manifest["dimension"]))

    def encode_passages(self, texts: Sequence[str], encode: Encode) -> tuple[np.ndarray, int, int]:
        """Vectors of chunk embedding texts; how many distinct texts had to be embedded, and
        how many texts took their vector from the previous snapshot."""
        return self._encode(texts, self.passages, encode)

    def encode_sentences(self, texts: Sequence[str], encode: Encode) -> tuple[np.ndarray, int, int]:
        """As `encode_passages`, for sentences."""
        return self._encode(texts, self.sentences, encode)

    def _encode(
        self, texts: Sequence[str], known: dict[str, np.ndarray], encode: Encode
    ) -> tuple[np.ndarray, int, int]:
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        fresh: dict[str, np.ndarray] = {}
        if missing:
            vectors = np.asarray(encode(missing), dtype=np.float32)
            fresh = dict(zip(missing, vectors, strict=True))
            self.dimension = int(vectors.shape[1])
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), 0, 0
        rows = [fresh[t] if t in fresh else known[t] for t in texts]
        reused = sum(1 for t in texts if t in known)
        return np.ascontiguousarray(np.stack(rows), dtype=np.float32), len(missing), reused
