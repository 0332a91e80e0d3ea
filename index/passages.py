"""Embedding chunks at ingest: a chunk's vector and its sentences' vectors, reused together.

Each chunk and each of its sentences goes through the model (about 3 sentences a chunk on
the public texts, as many tokens again as the chunks). Pooling the sentences from the chunk's
own pass (the mean token states of each sentence's span) would halve the tokens, but it cost
0.047 hit@1 in the leave-one-topic-out evaluation (README, "Ingest throughput"), so sentences
are still read on their own.

Batches are cut by tokens, not by texts: texts sorted by token count, a batch grows while its
rows times its longest text stay within `TOKEN_BUDGET`, so little padding is computed and
short texts (sentences) go many to a batch. A text is tokenized once, here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from index.embed import Embedder
from index.encoder import OnnxEncoder
from index.onnx_export import padded_feeds
from index.reuse import VectorCache
from index.sentences import SentenceVectors, chunk_sentences
from index.snapshot import embedding_text
from ingest import Chunk, Document

# Rows x tokens of one batch; bench/ingest.py measures it against batches of 8 texts.
TOKEN_BUDGET = 2048
MAX_ROWS = 128


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
        pieces = [
            [by_id[chunks[i].document_id].text[s.start : s.end] for s in spans[i]]
            for i in first.values()
        ]
        fresh_vectors, fresh_sentences = _encode_new(encoder(), list(first), pieces, progress)
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


def _encode_new(
    encoder: Embedder | OnnxEncoder, texts: list[str], sentences: list[list[str]], progress: bool
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Vectors of chunk texts and of their sentences, in one run of batches; a sentence met
    twice (a boilerplate line) is embedded once."""
    unique = list(dict.fromkeys(s for ss in sentences for s in ss))
    everything = texts + unique
    if isinstance(encoder, OnnxEncoder):
        vectors, _ = encode_texts(encoder, everything, progress=progress)
    else:
        vectors = encoder.encode_passages(everything, progress=progress)
    where = {s: len(texts) + n for n, s in enumerate(unique)}
    return vectors[: len(texts)], [vectors[[where[s] for s in ss]] for ss in sentences]


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


def encode_texts(
    encoder: OnnxEncoder, texts: Sequence[str], budget: int = TOKEN_BUDGET, progress: bool = False
) -> tuple[np.ndarray, int]:
    """Vectors of `texts` (L2-normalised float32) in token-bucketed batches, and the tokens
    run through the model (padding not counted)."""
    vectors = np.zeros((len(texts), encoder.dimension), dtype=np.float32)
    if not texts:
        return vectors, 0
    encodings = encoder.tokenizer.encode_batch(list(texts))
    batches: Any = token_batches([len(e.ids) for e in encodings], budget)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc="Batches", unit="batch")
    for batch in batches:
        (vectors[batch],) = encoder.session.run(None, padded_feeds([encodings[i] for i in batch]))
    return vectors, sum(len(e.ids) for e in encodings)
