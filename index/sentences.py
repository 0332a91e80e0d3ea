"""Sentence vectors: the second stage that reads candidates sentence by sentence.

A passage answers a question usually in one sentence ("Use 77002 ... for non-spinal
procedures"); the passage vector blurs it with its neighbours. At build time every chunk's
sentences are embedded, each on its own (index/passages.py); at query time a candidate scores
by its best sentence's similarity to the question. Stored as four .npy arrays (no pickle):
the vectors as int8 (S x d) with a float32 scale each (a vector is its int8 row times its
scale: 388 bytes a sentence against 768 in float16, and a cosine moves by about 1e-3), each
sentence's (start, end) document offsets, and CSR offsets (chunk row i owns sentences
offsets[i]:offsets[i+1]). Loaded, the vectors read as float32 rows (`Int8Rows`), dequantized
only where indexed, so callers index them as they would an array.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.arrays import load_mapped
from ingest import Chunk, Document
from ingest.chunk import Span, split_sentences

# Shorter pieces ("Top", "Answer:") say nothing on their own.
MIN_SENTENCE_CHARS = 20
FILES = (
    "sentence_vectors.npy",
    "sentence_scales.npy",
    "sentence_spans.npy",
    "sentence_offsets.npy",
)


class Int8Rows:
    """int8 rows with a float32 scale each, read as float32 rows: `rows[i]`, `rows[a:b]` and
    `rows[[i, j]]` give the dequantized rows asked for, `np.asarray(rows)` all of them."""

    dtype = np.dtype(np.float32)

    def __init__(self, codes: np.ndarray, scales: np.ndarray) -> None:
        self.codes = codes
        self.scales = scales

    @classmethod
    def quantize(cls, vectors: np.ndarray) -> Int8Rows:
        """Each row scaled so that its largest component is +-127, then rounded."""
        vectors = np.asarray(vectors, dtype=np.float32)
        scales = np.abs(vectors).max(axis=1, initial=0.0) / 127.0
        scales[scales == 0] = 1.0
        codes = np.rint(vectors / scales[:, None]).astype(np.int8)
        return cls(codes, scales.astype(np.float32))

    def __getitem__(self, index: Any) -> np.ndarray:
        return self.codes[index].astype(np.float32) * self.scales[index][..., None]

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        rows = self[:]
        return rows if dtype is None else rows.astype(dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.codes.shape)


@dataclass(frozen=True)
class SentenceVectors:
    vectors: np.ndarray | Int8Rows  # (S, d) L2-normalised: float32 built, Int8Rows loaded
    spans: np.ndarray  # (S, 2) int64 document offsets
    offsets: np.ndarray  # (N + 1,) int64

    def save(self, directory: Path) -> None:
        rows = self.vectors if isinstance(self.vectors, Int8Rows) else None
        rows = rows or Int8Rows.quantize(np.asarray(self.vectors, dtype=np.float32))
        arrays = (rows.codes, rows.scales, self.spans, self.offsets)
        for name, array in zip(FILES, arrays, strict=True):
            np.save(directory / name, array, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> SentenceVectors:
        codes, scales, spans, offsets = (load_mapped(directory / name) for name in FILES)
        # The offsets are read on every query (8 bytes a chunk): kept in memory.
        return cls(Int8Rows(codes, scales), spans, np.array(offsets))

    @property
    def chunks(self) -> int:
        return int(self.offsets.shape[0]) - 1

    def best_similarity(self, rows: Sequence[int], query: np.ndarray) -> np.ndarray:
        """For each chunk row, the highest cosine between one of its sentences and `query`."""
        starts = self.offsets[np.asarray(rows, dtype=np.int64)]
        ends = self.offsets[np.asarray(rows, dtype=np.int64) + 1]
        counts = ends - starts
        if not len(rows) or not counts.sum():
            return np.zeros(len(rows), dtype=np.float32)
        owner = np.repeat(np.arange(len(rows)), counts)
        # Sentence rows of every candidate, in order: each run starts at its chunk's offset.
        index = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        index += np.repeat(starts, counts)
        similarity = np.asarray(self.vectors[index] @ query, dtype=np.float32)
        best = np.full(len(rows), -1.0, dtype=np.float32)
        np.maximum.at(best, owner, similarity)
        return best


def chunk_sentences(document: Document, chunk: Chunk) -> list[Span]:
    """The sentences of a chunk worth embedding on their own (at least one per chunk)."""
    spans = [
        s
        for s in split_sentences(document.text, Span(chunk.start, chunk.end))
        if len(document.text[s.start : s.end].strip()) >= MIN_SENTENCE_CHARS
    ]
    return spans or [Span(chunk.start, chunk.end)]
