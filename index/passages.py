"""Embedding chunks at ingest: one forward pass a chunk gives its vector and its sentences'.

The second stage reads a candidate sentence by sentence (index/sentences.py). Its sentences
used to go through the model again on their own: about 4 texts a chunk, as many tokens again
as the chunks. Here a chunk's pass also returns the token states (the export's second output,
index/encoder.py), and a sentence's vector is the mean of the states of the tokens inside its
character span, L2-normalised: the sentence as read in its chunk. A sentence that reaches past
the model's max tokens (the chunk was truncated) is encoded on its own.

Batches are cut by tokens, not by texts: texts sorted by token count, a batch grows while its
rows times its longest text stay within `TOKEN_BUDGET`, so little padding is computed and
short texts go many to a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from index.embed import Embedder
from index.encoder import OUTPUTS, OnnxEncoder
from index.reuse import VectorCache
from index.sentences import SentenceVectors, chunk_sentences
from index.snapshot import embedding_text
from ingest import Chunk, Document

# Rows x tokens of one batch. On 2 cores (AMD EPYC, AVX2) 2048 to 8192 ran within a few per
# cent of each other on the public texts; bench/ingest.py measures it.
TOKEN_BUDGET = 4096
MAX_ROWS = 128

Spans = Sequence[tuple[int, int]]


@dataclass
class Encoded:
    """Vectors of texts and of the sentences in them, and what it took."""

    vectors: np.ndarray  # (N, d) float32, L2-normalised
    sentences: list[np.ndarray]  # per text, (its sentences, d) float32, L2-normalised
    tokens: int  # real tokens run through the model (padding not counted)
    alone: int  # sentences encoded on their own (past the max tokens)


@dataclass
class EmbeddedChunks:
    """What an ingest stores for its chunks, and how many were embedded or reused."""

    vectors: np.ndarray  # (chunks, d) float32
    sentences: SentenceVectors
    embedded: int  # distinct embedding texts run through the model
    reused: int  # chunks whose vectors came from the previous snapshot


def embed_chunks(
    documents: Sequence[Document],
    chunks: Sequence[Chunk],
    cache: VectorCache,
    encoder: Callable[[], Embedder | OnnxEncoder],
    progress: bool = False,
) -> EmbeddedChunks:
    """Vectors of `chunks` and of their sentences: from `cache` where the chunk's embedding
    text was embedded before, else from the encoder (called only if something is new)."""
    by_id = {d.id: d for d in documents}
    texts = [embedding_text(c) for c in chunks]
    spans = [chunk_sentences(by_id[c.document_id], c) for c in chunks]
    rows = [cache.row(t, len(s)) for t, s in zip(texts, spans, strict=True)]
    first: dict[str, int] = {}
    for i, (text, row) in enumerate(zip(texts, rows, strict=True)):
        if row is None:
            first.setdefault(text, i)
    fresh_vectors = np.zeros((0, cache.dimension), dtype=np.float32)
    fresh_sentences: list[np.ndarray] = []
    if first:
        local = [_local_spans(chunks[i], spans[i]) for i in first.values()]
        fresh_vectors, fresh_sentences = _encode_new(encoder(), list(first), local, progress)
    old = [r for r in rows if r is not None]
    old_vectors, old_sentences = cache.vectors(old)
    position = {text: n for n, text in enumerate(first)}
    slot = {row: n for n, row in enumerate(old)}
    dimension = int(fresh_vectors.shape[1] if first else old_vectors.shape[1])
    vectors = np.empty((len(chunks), dimension), dtype=np.float32)
    parts: list[np.ndarray] = []
    for i, (text, row) in enumerate(zip(texts, rows, strict=True)):
        if row is None:
            vectors[i], sentences = fresh_vectors[position[text]], fresh_sentences[position[text]]
        else:
            vectors[i], sentences = old_vectors[slot[row]], old_sentences[slot[row]]
        parts.append(sentences)
    sentence_vectors = SentenceVectors(
        np.concatenate(parts) if parts else np.zeros((0, dimension), dtype=np.float32),
        np.asarray([(s.start, s.end) for ss in spans for s in ss], dtype=np.int64).reshape(-1, 2),
        np.concatenate([[0], np.cumsum([len(ss) for ss in spans])]).astype(np.int64),
    )
    return EmbeddedChunks(vectors, sentence_vectors, len(first), len(old))


def _local_spans(chunk: Chunk, spans: Sequence[Any]) -> list[tuple[int, int]]:
    """Sentence spans (document offsets) as offsets in the chunk's embedding text."""
    shift = (len(chunk.context) + 1 if chunk.context else 0) - chunk.start
    return [(s.start + shift, s.end + shift) for s in spans]


def _encode_new(
    encoder: Embedder | OnnxEncoder,
    texts: list[str],
    spans: list[list[tuple[int, int]]],
    progress: bool,
) -> tuple[np.ndarray, list[np.ndarray]]:
    if isinstance(encoder, OnnxEncoder):
        encoded = encode_with_sentences(encoder, texts, spans, progress=progress)
        return encoded.vectors, encoded.sentences
    # The torch model gives no token states here: its sentences are encoded on their own.
    vectors = encoder.encode_passages(texts, progress=progress)
    pieces = [t[s:e] for t, ss in zip(texts, spans, strict=True) for s, e in ss]
    alone = encoder.encode_passages(pieces)
    ends = np.cumsum([len(ss) for ss in spans])
    return vectors, np.split(alone, ends[:-1]) if len(ends) else []


def token_batches(lengths: Sequence[int], budget: int = TOKEN_BUDGET) -> list[list[int]]:
    """Indexes of texts in batches of similar length, each within `budget` rows x tokens."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:  # ascending: the text added is the batch's longest
        if current and ((len(current) + 1) * lengths[i] > budget or len(current) >= MAX_ROWS):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def _padded(encodings: Sequence[Any]) -> dict[str, np.ndarray]:
    width = max(len(e.ids) for e in encodings)
    feeds = {
        name: np.zeros((len(encodings), width), dtype=np.int64)
        for name in ("input_ids", "attention_mask", "token_type_ids")
    }
    for row, encoding in enumerate(encodings):
        n = len(encoding.ids)
        feeds["input_ids"][row, :n] = encoding.ids
        feeds["attention_mask"][row, :n] = encoding.attention_mask
        feeds["token_type_ids"][row, :n] = encoding.type_ids
    return feeds


def encode_texts(
    encoder: OnnxEncoder, texts: Sequence[str], budget: int = TOKEN_BUDGET
) -> tuple[np.ndarray, int]:
    """Vectors of `texts` in token-bucketed batches, and the tokens they took."""
    vectors, _, tokens, _ = _encode(encoder, texts, [() for _ in texts], budget, sentences=False)
    return vectors, tokens


def encode_with_sentences(
    encoder: OnnxEncoder,
    texts: Sequence[str],
    spans: Sequence[Spans],
    budget: int = TOKEN_BUDGET,
    progress: bool = False,
) -> Encoded:
    """Vectors of `texts` and of the sentences at `spans` (character offsets in each text)."""
    vectors, pooled, tokens, alone = _encode(
        encoder, texts, spans, budget, sentences=True, progress=progress
    )
    if alone:
        fresh, more = encode_texts(encoder, [texts[i][s:e] for i, _, s, e in alone], budget)
        tokens += more
        for (i, j, _, _), vector in zip(alone, fresh, strict=True):
            pooled[i][j] = vector
    return Encoded(vectors, pooled, tokens, len(alone))


def _encode(
    encoder: OnnxEncoder,
    texts: Sequence[str],
    spans: Sequence[Spans],
    budget: int,
    sentences: bool,
    progress: bool = False,
) -> tuple[np.ndarray, list[np.ndarray], int, list[tuple[int, int, int, int]]]:
    dimension = encoder.dimension
    vectors = np.zeros((len(texts), dimension), dtype=np.float32)
    pooled = [np.zeros((len(s), dimension), dtype=np.float32) for s in spans]
    alone: list[tuple[int, int, int, int]] = []
    if not texts:
        return vectors, pooled, 0, alone
    encodings = encoder.tokenizer.encode_batch(list(texts))
    outputs = list(OUTPUTS) if sentences else [OUTPUTS[0]]
    batches: Any = token_batches([len(e.ids) for e in encodings], budget)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc="Batches", unit="batch")
    for batch in batches:
        result = encoder.session.run(outputs, _padded([encodings[i] for i in batch]))
        vectors[batch] = result[0]
        if not sentences:
            continue
        for row, i in enumerate(batch):
            states = result[1][row, : len(encodings[i].ids)]
            alone += _pool(states, encodings[i], spans[i], pooled[i], i)
    return vectors, pooled, sum(len(e.ids) for e in encodings), alone


def _pool(
    states: np.ndarray, encoding: Any, spans: Spans, out: np.ndarray, text: int
) -> list[tuple[int, int, int, int]]:
    """Mean token states of each span into `out`; the spans left to encode alone."""
    offsets = np.asarray(encoding.offsets, dtype=np.int64).reshape(-1, 2)
    content = ~np.asarray(encoding.special_tokens_mask, dtype=bool)
    covered = int(offsets[content, 1].max()) if content.any() else 0
    if not spans:
        return []
    bounds = np.asarray(spans, dtype=np.int64)
    # Tokens wholly inside each span ((spans, tokens) booleans): word pieces never straddle a
    # sentence boundary, which falls on a space or after punctuation.
    inside = (
        (offsets[None, :, 0] >= bounds[:, :1]) & (offsets[None, :, 1] <= bounds[:, 1:]) & content
    )
    counts = inside.sum(axis=1)
    sums = inside.astype(np.float32) @ states
    keep = (counts > 0) & (bounds[:, 1] <= covered)
    means = sums[keep] / counts[keep, None]
    out[keep] = means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    return [(text, j, int(s), int(e)) for j, (s, e) in enumerate(spans) if not keep[j]]
