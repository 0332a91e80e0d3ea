"""What the passage ranker's features read: a question's candidates and the context around them.

`Candidates` holds the chunks a question's first stages found with their raw scores and ranks;
`FeatureContext` adds the parsed question, the chunks, their stored signals and sentence
vectors, and reads each chunk's words, codes and sentences once (cached per passage);
`Feature` names one feature of the registry in index/features.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

import numpy as np

from index.lexical import tokenize
from index.question import ParsedQuestion, text_modalities
from index.sentences import SentenceVectors
from ingest import Chunk

_ANSWER_LABEL = re.compile(r"(?:^|\n)\s*(?:A|Answer|Response|Reply)\s*[:.)-]\s", re.IGNORECASE)
_QUESTION_LABEL = re.compile(r"(?:^|\n)\s*(?:Q|Question)\s*[:.)-]\s", re.IGNORECASE)
_CHUNK_ORDINAL = re.compile(r"#(\d+)$")


@dataclass
class Candidates:
    """A question's candidate chunks with the raw scores they were found by.

    Ranks are 0-based positions in each first-stage list, -1 when the chunk is not in it."""

    rows: np.ndarray
    dense: np.ndarray
    lexical: np.ndarray
    sentence: np.ndarray
    dense_rank: np.ndarray
    lexical_rank: np.ndarray
    code_rank: np.ndarray


@dataclass
class FeatureContext:
    question: ParsedQuestion
    candidates: Candidates
    chunks: Sequence[Chunk]
    signals: dict[str, np.ndarray] = field(default_factory=dict)
    current_year: int = 0  # the newest year the corpus speaks for (0: unknown)
    # Sentence vectors of the snapshot, the question's vector, and the question's indexed
    # words with their BM25 idf: for the features that read candidates sentence by sentence.
    sentences: SentenceVectors | None = None
    query: np.ndarray | None = None
    weights: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.candidates.rows)

    @cached_property
    def tokens(self) -> list[frozenset[str]]:
        return [_tokens(c.text) for c in self.chunks]

    @cached_property
    def context_tokens(self) -> list[frozenset[str]]:
        return [_tokens(c.context) for c in self.chunks]

    @cached_property
    def query_tokens(self) -> frozenset[str]:
        return frozenset(self.question.tokens)

    @cached_property
    def roles(self) -> list[dict[str, frozenset[str]]]:
        """Per candidate, each code it cites with the roles it cites it in."""
        return [_chunk_facts(c)[0] for c in self.chunks]

    @cached_property
    def weighted_coverage(self) -> np.ndarray:
        return _weighted(self.weights, self.tokens)

    @cached_property
    def by_sentence(self) -> list[list[tuple[float, float, bool]]]:
        """Per candidate, each sentence's (cosine with the question, idf-weighted share of the
        question's words in it, cites a code)."""
        if self.sentences is None or self.query is None:
            return [[] for _ in self.chunks]
        offsets = self.sentences.offsets
        rows = self.candidates.rows
        starts, ends = offsets[rows], offsets[rows + 1]
        counts = ends - starts
        if not counts.sum():
            return [[] for _ in self.chunks]
        index = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)])
        cosines = np.asarray(self.sentences.vectors[index] @ self.query).tolist()
        spans = self.sentences.spans[index].tolist()
        found, at = [], 0
        for chunk, count in zip(self.chunks, counts.tolist(), strict=True):
            own = tuple(tuple(span) for span in spans[at : at + count])
            words = _sentence_words(chunk, own)
            found.append(
                [
                    (cosines[at + i], _share(self.weights, w, self.weight_total), cites)
                    for i, (w, cites) in enumerate(words)
                ]
            )
            at += count
        return found

    @cached_property
    def weight_total(self) -> float:
        return sum(self.weights.values())

    def signal(self, name: str) -> np.ndarray:
        values = self.signals.get(name)
        if values is None:
            return np.zeros(len(self), dtype=np.float32)
        return np.asarray(values[self.candidates.rows], dtype=np.float32)


@dataclass(frozen=True)
class Feature:
    name: str
    description: str  # what it measures and why it matters, with its range
    compute: Callable[[FeatureContext], np.ndarray]


@lru_cache(maxsize=16384)
def _tokens(text: str) -> frozenset[str]:
    return frozenset(tokenize(text))


@lru_cache(maxsize=16384)
def _modalities(text: str) -> frozenset[str]:
    return text_modalities(text)


def _share(weights: dict[str, float], words: frozenset[str], total: float | None = None) -> float:
    total = sum(weights.values()) if total is None else total
    if total <= 0:
        return 0.0
    return sum(weights[t] for t in words.intersection(weights)) / total


@lru_cache(maxsize=16384)
def descriptor_words(descriptors: tuple[str, ...]) -> frozenset[str]:
    """The words of a code's descriptors in the corpus, stemmed as BM25 reads them."""
    return frozenset(t for text in descriptors for t in tokenize(text))


def _weighted(weights: dict[str, float], docs: list[frozenset[str]]) -> np.ndarray:
    total = sum(weights.values())
    return np.asarray([_share(weights, d, total) for d in docs], dtype=np.float32)


def _cached(cache: dict, key: object, make: Callable[[], object]) -> Any:
    """`cache[key]`, made on first use; the cache is emptied when it grows past its bound.
    Keyed by a passage's id and offsets, not the passage itself: hashing a frozen dataclass
    hashes every field and mention on every call."""
    found = cache.get(key)
    if found is None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        found = cache[key] = make()
    return found


_CACHE_LIMIT = 16384
_SENTENCE_WORDS: dict = {}
_CHUNK_FACTS: dict = {}


def _chunk_key(chunk: Chunk) -> tuple[str, int, int, int]:
    return (chunk.id, chunk.start, chunk.end, len(chunk.codes))


def _sentence_words(
    chunk: Chunk, spans: tuple[tuple[int, ...], ...]
) -> tuple[tuple[frozenset[str], bool], ...]:
    """Each sentence's words and whether it cites a code (cached: a passage's sentences do
    not change while its snapshot serves)."""
    return _cached(
        _SENTENCE_WORDS, (_chunk_key(chunk), spans), lambda: _read_sentences(chunk, spans)
    )


def _read_sentences(
    chunk: Chunk, spans: tuple[tuple[int, ...], ...]
) -> tuple[tuple[frozenset[str], bool], ...]:
    return tuple(
        (
            _tokens(chunk.text[max(0, start - chunk.start) : end - chunk.start]),
            any(start <= m.start < end for m in chunk.codes),
        )
        for start, end in spans
    )


def _chunk_facts(chunk: Chunk) -> tuple[dict[str, frozenset[str]], bool, bool, int]:
    """(codes with their roles, holds a labelled answer, holds a labelled question left open,
    its ordinal in its document), read once per passage."""
    return _cached(_CHUNK_FACTS, _chunk_key(chunk), lambda: _read_facts(chunk))


def _read_facts(chunk: Chunk) -> tuple[dict[str, frozenset[str]], bool, bool, int]:
    by_code: dict[str, set[str]] = {}
    for m in chunk.codes:
        by_code.setdefault(m.code, set()).add(m.role)
    answers = bool(_ANSWER_LABEL.search(chunk.text))
    asks = bool(_QUESTION_LABEL.search(chunk.text)) and not answers
    found = _CHUNK_ORDINAL.search(chunk.id)
    return (
        {code: frozenset(roles) for code, roles in by_code.items()},
        answers,
        asks,
        int(found.group(1)) if found else 0,
    )
