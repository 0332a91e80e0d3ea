"""What the passage ranker's features read: a question's candidates and the context around them.

`Candidates` holds the chunks a question's first stages found with their raw scores and ranks;
`FeatureContext` adds the parsed question, the chunks, their stored signals and sentence
vectors, and reads each chunk's words, codes and sentences once (cached per passage);
`Feature` names one feature of the registry in index/features.py.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from index.lexical import tokenize
from index.passage_cache import cached, passage_key
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
        return [facts[0] for facts in self.facts]

    @cached_property
    def facts(self) -> list[tuple[dict[str, frozenset[str]], bool, bool, int]]:
        """Per candidate, `_chunk_facts`: its codes with their roles, whether it holds a
        labelled answer, a labelled question left open, and its ordinal in its document."""
        return [_chunk_facts(c) for c in self.chunks]

    @cached_property
    def weighted_coverage(self) -> np.ndarray:
        return _weighted(self.weights, self.tokens)

    @cached_property
    def by_sentence(self) -> SentenceTable:
        """Every candidate's sentences: their cosine with the question, the idf-weighted share
        of the question's words in them, and whether they cite a code (one array each, in
        candidate order)."""
        if self.sentences is None or self.query is None:
            return SentenceTable.empty()
        index, counts = self.sentences.rows_of(self.candidates.rows)
        if not len(index):
            return SentenceTable.empty()
        cosines = np.asarray(self.sentences.vectors[index] @ self.query)
        spans = np.ascontiguousarray(self.sentences.spans[index], dtype=np.int64)
        words, lengths, cites, at = [], [], [], 0
        for chunk, count in zip(self.chunks, counts.tolist(), strict=True):
            ids, sizes, citing = _sentence_words(chunk, spans[at : at + count])
            words.append(ids)
            lengths.append(sizes)
            cites.append(citing)
            at += count
        return SentenceTable(
            owner=np.repeat(np.arange(len(self.chunks)), counts),
            cosine=cosines,
            share=_shares(self.weights, self.weight_total, words, lengths),
            cites=np.concatenate(cites),
        )

    @cached_property
    def weight_total(self) -> float:
        return sum(self.weights.values())

    def signal(self, name: str) -> np.ndarray:
        values = self.signals.get(name)
        if values is None:
            return np.zeros(len(self), dtype=np.float32)
        return np.asarray(values[self.candidates.rows], dtype=np.float32)


@dataclass(frozen=True)
class SentenceTable:
    """The candidates' sentences, one entry each: `owner` is the candidate's position."""

    owner: np.ndarray
    cosine: np.ndarray
    share: np.ndarray
    cites: np.ndarray

    @classmethod
    def empty(cls) -> SentenceTable:
        nothing = np.zeros(0)
        return cls(nothing.astype(np.int64), nothing, nothing, nothing.astype(bool))


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


_SENTENCE_WORDS: dict = {}
_CHUNK_FACTS: dict = {}


def _sentence_words(chunk: Chunk, spans: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each sentence's distinct words (as word ids, run after run), how many each has, and
    whether it cites a code, for the (start, end) rows of `spans` (cached: a passage's
    sentences do not change while its snapshot serves)."""
    return cached(
        _SENTENCE_WORDS,
        (passage_key(chunk), spans.tobytes()),
        lambda: _read_sentences(chunk, spans.tolist()),
    )


def _read_sentences(
    chunk: Chunk, spans: list[list[int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    words = [
        _tokens(chunk.text[max(0, start - chunk.start) : end - chunk.start]) for start, end in spans
    ]
    cites = [any(start <= m.start < end for m in chunk.codes) for start, end in spans]
    return (
        np.asarray([_word_id(w) for ws in words for w in sorted(ws)], dtype=np.int32),
        np.asarray([len(ws) for ws in words], dtype=np.int64),
        np.asarray(cites, dtype=bool),
    )


# Words of the sentences read so far, numbered in the order first met (any snapshot: a word's
# number means nothing beyond this process). A lock keeps two threads from giving one number
# to two words.
_WORD_IDS: dict[str, int] = {}
_WORD_IDS_LOCK = threading.Lock()


def _word_id(word: str) -> int:
    found = _WORD_IDS.get(word)
    if found is None:
        with _WORD_IDS_LOCK:
            found = _WORD_IDS.setdefault(word, len(_WORD_IDS))
    return found


def _shares(
    weights: dict[str, float],
    total: float,
    words: list[np.ndarray],
    lengths: list[np.ndarray],
) -> np.ndarray:
    """Per sentence, the summed weight of the question's words in it over `total` (0 when the
    question has no weighted word)."""
    sizes = np.concatenate(lengths)
    if total <= 0 or not len(sizes):
        return np.zeros(len(sizes))
    ids = np.concatenate(words)
    table = np.zeros(len(_WORD_IDS) + 1)
    for word, weight in weights.items():
        found = _WORD_IDS.get(word)
        if found is not None and found < len(table):
            table[found] = weight
    # One trailing zero, so that every sentence's start is a valid index, even an empty one's.
    values = np.append(table[ids], 0.0)
    starts = np.cumsum(sizes) - sizes
    sums = np.add.reduceat(values, starts)
    sums[sizes == 0] = 0.0
    return sums / total


def _chunk_facts(chunk: Chunk) -> tuple[dict[str, frozenset[str]], bool, bool, int]:
    """(codes with their roles, holds a labelled answer, holds a labelled question left open,
    its ordinal in its document), read once per passage."""
    return cached(_CHUNK_FACTS, passage_key(chunk), lambda: _read_facts(chunk))


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
