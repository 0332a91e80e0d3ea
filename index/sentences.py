"""Sentence vectors: the second stage that reads candidates sentence by sentence.

A passage answers a question usually in one sentence ("Use 77002 ... for non-spinal
procedures"); the passage vector blurs it with its neighbours. At build time every chunk's
sentences are embedded, each on its own (index/passages.py); at query time a candidate scores
by its best sentence's similarity to the question. Stored as three .npy arrays (no pickle):
the vectors (S x d, float16: a cosine moves by about 1e-4), each sentence's (start, end)
document offsets, and CSR offsets (chunk row i owns sentences offsets[i]:offsets[i+1]); the
last two as int32 when their values fit (snapshot format 9), the same values in half the bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.arrays import load_mapped
from ingest import Chunk, Document
from ingest.chunk import Span, split_sentences

# Shorter pieces ("Top", "Answer:") say nothing on their own.
MIN_SENTENCE_CHARS = 20
FILES = ("sentence_vectors.npy", "sentence_spans.npy", "sentence_offsets.npy")


@dataclass(frozen=True)
class SentenceVectors:
    vectors: np.ndarray  # (S, d) L2-normalised: float32 when built, float16 once saved
    spans: np.ndarray  # (S, 2) document offsets: int64 when built, int32 once saved
    offsets: np.ndarray  # (N + 1,) likewise

    def save(self, directory: Path) -> None:
        arrays = (self.vectors.astype(np.float16), _narrow(self.spans), _narrow(self.offsets))
        for name, array in zip(FILES, arrays, strict=True):
            np.save(directory / name, array, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> SentenceVectors:
        vectors, spans, offsets = (load_mapped(directory / name) for name in FILES)
        # The offsets are read on every query (8 bytes a chunk): kept in memory.
        return cls(vectors, spans, np.array(offsets))

    @property
    def chunks(self) -> int:
        return int(self.offsets.shape[0]) - 1

    def rows_of(self, rows: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the sentence rows of the chunk `rows`, run after run in their order; how many each
        chunk has)."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, counts = self.offsets[rows], self.offsets[rows + 1] - self.offsets[rows]
        # Each run starts at its chunk's offset and counts up.
        index = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        return index + np.repeat(starts, counts), counts

    def best_similarity(self, rows: Sequence[int], query: np.ndarray) -> np.ndarray:
        """For each chunk row, the highest cosine between one of its sentences and `query`."""
        index, counts = self.rows_of(rows)
        if not len(index):
            return np.zeros(len(rows), dtype=np.float32)
        owner = np.repeat(np.arange(len(rows)), counts)
        similarity = np.asarray(self.vectors[index] @ query, dtype=np.float32)
        best = np.full(len(rows), -1.0, dtype=np.float32)
        np.maximum.at(best, owner, similarity)
        return best


def _narrow(array: np.ndarray) -> np.ndarray:
    """`array` as int32 when its values fit (document offsets and sentence rows do below 2**31,
    a 2 GB text or two billion sentences), else as it is: half the bytes, the same values."""
    info = np.iinfo(np.int32)
    if array.size and (array.min() < info.min or array.max() > info.max):
        return array
    return array.astype(np.int32)


def chunk_sentences(document: Document, chunk: Chunk) -> list[Span]:
    """The sentences of a chunk worth embedding on their own (at least one per chunk)."""
    spans = [
        s
        for s in split_sentences(document.text, Span(chunk.start, chunk.end))
        if len(document.text[s.start : s.end].strip()) >= MIN_SENTENCE_CHARS
    ]
    return spans or [Span(chunk.start, chunk.end)]
