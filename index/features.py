"""The passage ranker's features: named, documented functions over (question, candidate).

Each feature maps a question's candidates to one number apiece; together they make the table
a scorer (index/scorer.py) ranks by, that `cptqa eval --features` logs beside the judgments and
that `cptqa train` fits on. Features read the parsed question (index/question.py), the raw
scores the candidates came with, the per-chunk signals stored at ingest (index/signals.py) and
the chunk's own codes and words. None is keyed to a question's wording or a text's sentences:
each is a property any coding text can have (the pattern of the OpenSearch and Solr
learning-to-rank plugins: a feature set, logged values, a model stored as data).

Bump FEATURE_VERSION when a feature's meaning changes: a model trained on other features is
refused (index/scorer.py) instead of silently ranking by the wrong columns.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

import numpy as np

from index.lexical import tokenize, tokenize_query
from index.lexicon import SITE_NON_SPINAL, SITE_SPINAL, expand_question
from index.question import ParsedQuestion, text_modalities
from index.sentences import SentenceVectors
from ingest import Chunk

FEATURE_VERSION = 1

# Roles by which a passage turns a code down, and those by which it gives it (ingest/roles.py).
_REJECTING = frozenset({"excluded", "bundled", "deleted"})
_GIVING = frozenset({"defined", "primary", "add-on"})
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


def _reciprocal_rank(ranks: np.ndarray) -> np.ndarray:
    return (np.where(ranks >= 0, 1.0, 0.0) / (1.0 + np.abs(ranks))).astype(np.float32)


def _gap(values: np.ndarray) -> np.ndarray:
    return (values - values.max()).astype(np.float32) if len(values) else values


def _relative(values: np.ndarray) -> np.ndarray:
    top = float(values.max()) if len(values) else 0.0
    return (values / top).astype(np.float32) if top > 0 else np.zeros_like(values)


def _coverage(query: frozenset[str], docs: list[frozenset[str]]) -> np.ndarray:
    if not query:
        return np.zeros(len(docs), dtype=np.float32)
    return np.asarray([len(query & d) / len(query) for d in docs], dtype=np.float32)


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


def _best_sentence(ctx: FeatureContext, part: int, citing: bool) -> np.ndarray:
    """The best sentence value (0: cosine, 1: weighted coverage) per candidate, over all its
    sentences or only those citing a code (0 when there is none)."""
    values = []
    for pieces in ctx.by_sentence:
        own = [p[part] for p in pieces if p[2] or not citing]
        values.append(max(own) if own else 0.0)
    return np.asarray(values, dtype=np.float32)


def _thread_reply(ctx: FeatureContext) -> np.ndarray:
    """The passage follows its document's first passage and that one asks: a reply in a
    thread, an answer after an FAQ's question."""
    first_asks = ctx.signal("first_asks")
    later = _position(ctx) < 1.0
    return ((first_asks > 0.3) & later).astype(np.float32)


def _named_share(ctx: FeatureContext) -> np.ndarray:
    wanted = ctx.question.wanted_codes
    if not wanted:
        return np.zeros(len(ctx), dtype=np.float32)
    return np.asarray([len(wanted & r.keys()) / len(wanted) for r in ctx.roles], np.float32)


def _verdict(ctx: FeatureContext, roles: frozenset[str]) -> np.ndarray:
    """1 when the passage cites a code the question names in one of `roles`."""
    named = set(ctx.question.codes)
    if not named:
        return np.zeros(len(ctx), dtype=np.float32)
    return np.asarray(
        [any(roles & r.get(code, frozenset()) for code in named) for r in ctx.roles], np.float32
    )


def _cites_excluded(ctx: FeatureContext) -> np.ndarray:
    excluded = ctx.question.excluded_codes
    return np.asarray([bool(excluded & r.keys()) for r in ctx.roles], dtype=np.float32)


def _other_codes(ctx: FeatureContext) -> np.ndarray:
    """Codes the passage gives (defines, names as primary or add-on) beyond those the question
    names: a question naming a code is often answered by a passage giving another one."""
    named = set(ctx.question.codes)
    return np.asarray(
        [
            min(sum(1 for c, roles in r.items() if c not in named and roles & _GIVING), 5) / 5
            for r in ctx.roles
        ],
        dtype=np.float32,
    )


def _code_count(ctx: FeatureContext) -> np.ndarray:
    return np.asarray([math.log1p(len(r)) for r in ctx.roles], dtype=np.float32)


def kind_groups(question: ParsedQuestion) -> list[frozenset[str]]:
    if question.code_kind is None:
        return []
    groups = [
        frozenset(tokenize_query(expand_question(w).text)) for w in question.code_kind.split()
    ]
    return [g for g in groups if g]


def _kind_match(ctx: FeatureContext) -> np.ndarray:
    """The passage cites a code and has the words of the kind of code asked for ("which
    fluoro code": fluoroscopy words)."""
    groups = kind_groups(ctx.question)
    if not groups:
        return np.zeros(len(ctx), dtype=np.float32)
    return np.asarray(
        [
            bool(r) and all(g & t for g in groups)
            for r, t in zip(ctx.roles, ctx.tokens, strict=True)
        ],
        dtype=np.float32,
    )


def _site(ctx: FeatureContext, agree: bool) -> np.ndarray:
    """The passage assigns guidance to the question's kind of needle site (agree) or only to
    the other kind (CODING_FACTS.md §3); 0 when the question names no site."""
    site = ctx.question.site
    if site is None:
        return np.zeros(len(ctx), dtype=np.float32)
    flags = ctx.signal("site_flags").astype(np.int64)
    own = SITE_NON_SPINAL if site == "non-spinal" else SITE_SPINAL
    other = SITE_SPINAL if site == "non-spinal" else SITE_NON_SPINAL
    if agree:
        return ((flags & own) > 0).astype(np.float32)
    return (((flags & other) > 0) & ((flags & own) == 0)).astype(np.float32)


def _modality(ctx: FeatureContext, agree: bool) -> np.ndarray:
    """The passage names the question's imaging modality (agree), or names only others."""
    asked = ctx.question.modalities
    if not asked:
        return np.zeros(len(ctx), dtype=np.float32)
    found = [_modalities(c.text) for c in ctx.chunks]
    if agree:
        return np.asarray([bool(asked & f) for f in found], dtype=np.float32)
    return np.asarray([bool(f) and not (asked & f) for f in found], dtype=np.float32)


def _answers(ctx: FeatureContext) -> np.ndarray:
    """The passage holds a labelled answer ("A.", "Answer:") or answers a labelled question
    within itself."""
    return np.asarray([_chunk_facts(c)[1] for c in ctx.chunks], dtype=np.float32)


def _labelled_question(ctx: FeatureContext) -> np.ndarray:
    return np.asarray([_chunk_facts(c)[2] for c in ctx.chunks], dtype=np.float32)


def _position(ctx: FeatureContext) -> np.ndarray:
    """1 for a document's first passage, falling as 1/(1+n): in a thread the first passage is
    the asker's post; in a policy it is the heading and scope."""
    return np.asarray([1.0 / (1.0 + _chunk_facts(c)[3]) for c in ctx.chunks], dtype=np.float32)


def _length(ctx: FeatureContext) -> np.ndarray:
    return np.asarray([min(len(c.text), 2000) / 1000.0 for c in ctx.chunks], dtype=np.float32)


def _years(ctx: FeatureContext) -> np.ndarray:
    return ctx.signal("doc_year")


def _age(ctx: FeatureContext) -> np.ndarray:
    """Years between the passage's date and the corpus's newest, in decades, 0..2; 0 when
    unknown. Coding advice goes out of date (CODING_FACTS.md §4, §7)."""
    years = _years(ctx)
    if not ctx.current_year:
        return np.zeros(len(ctx), dtype=np.float32)
    age = np.clip((ctx.current_year - years) / 10.0, 0.0, 2.0)
    return np.where(years > 0, age, 0.0).astype(np.float32)


def _newer_than_pool(ctx: FeatureContext) -> np.ndarray:
    """The passage's year minus the median dated candidate's, in decades, -2..2; 0 when
    unknown: among texts on the same subject, the newer one states the current rule."""
    years = _years(ctx)
    known = years[years > 0]
    if not len(known):
        return np.zeros(len(ctx), dtype=np.float32)
    delta = np.clip((years - float(np.median(known))) / 10.0, -2.0, 2.0)
    return np.where(years > 0, delta, 0.0).astype(np.float32)


def _question_year_gap(ctx: FeatureContext) -> np.ndarray:
    """For a question about a past date of service ("a 2019 claim"), how far the passage's
    year is from it, in decades, 0..2 (0 when either is unknown)."""
    asked = ctx.question.years
    years = _years(ctx)
    if not asked:
        return np.zeros(len(ctx), dtype=np.float32)
    gap = np.clip(np.abs(years - max(asked)) / 10.0, 0.0, 2.0)
    return np.where(years > 0, gap, 0.0).astype(np.float32)


def _question_flag(value: bool) -> Callable[[FeatureContext], np.ndarray]:
    return lambda ctx: np.full(len(ctx), float(value), dtype=np.float32)


FEATURES: tuple[Feature, ...] = (
    Feature(
        "dense",
        "cosine of the passage vector with the question's (all-MiniLM-L6-v2), -1..1",
        lambda ctx: ctx.candidates.dense.astype(np.float32),
    ),
    Feature(
        "dense_gap",
        "dense cosine minus the best candidate's, <= 0: how far behind the best match",
        lambda ctx: _gap(ctx.candidates.dense),
    ),
    Feature(
        "sentence",
        "cosine of the passage's best sentence with the question, -1..1",
        lambda ctx: ctx.candidates.sentence.astype(np.float32),
    ),
    Feature(
        "sentence_gap",
        "best-sentence cosine minus the best candidate's, <= 0",
        lambda ctx: _gap(ctx.candidates.sentence),
    ),
    Feature(
        "bm25",
        "BM25 score (stemmed, coder lexicon applied to the question), log(1+x)",
        lambda ctx: np.log1p(np.maximum(ctx.candidates.lexical, 0)).astype(np.float32),
    ),
    Feature(
        "bm25_relative",
        "BM25 score divided by the best candidate's, 0..1",
        lambda ctx: _relative(ctx.candidates.lexical),
    ),
    Feature(
        "dense_rr",
        "1/(1+rank) in the dense top list, 0 when not in it",
        lambda ctx: _reciprocal_rank(ctx.candidates.dense_rank),
    ),
    Feature(
        "lexical_rr",
        "1/(1+rank) in the BM25 top list, 0 when not in it",
        lambda ctx: _reciprocal_rank(ctx.candidates.lexical_rank),
    ),
    Feature(
        "term_coverage",
        "share of the question's words (stemmed, lexicon applied) found in the passage, 0..1",
        lambda ctx: _coverage(ctx.query_tokens, ctx.tokens),
    ),
    Feature(
        "idf_coverage",
        "share of the question's words in the passage, each weighted by its BM25 idf, 0..1",
        lambda ctx: ctx.weighted_coverage,
    ),
    Feature(
        "sentence_coverage",
        "idf-weighted share of the question's words in the passage's best sentence, 0..1",
        lambda ctx: _best_sentence(ctx, 1, False),
    ),
    Feature(
        "code_sentence_coverage",
        "idf-weighted share of the question's words in the best sentence that cites a code",
        lambda ctx: _best_sentence(ctx, 1, True),
    ),
    Feature(
        "code_sentence",
        "cosine with the question of the best sentence that cites a code (0 when none)",
        lambda ctx: _best_sentence(ctx, 0, True),
    ),
    Feature(
        "thread_reply",
        "the passage comes after its document's first passage, which asks (a reply), 0/1",
        _thread_reply,
    ),
    Feature(
        "context_coverage",
        "share of the question's words in the passage's title, thread subject or heading, 0..1",
        lambda ctx: _coverage(ctx.query_tokens, ctx.context_tokens),
    ),
    Feature(
        "named_code_share",
        "share of the codes the question names (and does not exclude) that the passage cites",
        _named_share,
    ),
    Feature(
        "named_code_rejected",
        "the passage turns down a code the question names (bundled, excluded, deleted), 0/1",
        lambda ctx: _verdict(ctx, _REJECTING),
    ),
    Feature(
        "named_code_given",
        "the passage defines a code the question names or gives it as primary or add-on, 0/1",
        lambda ctx: _verdict(ctx, _GIVING),
    ),
    Feature(
        "cites_excluded_code",
        'the passage cites a code the question excludes ("not 64493"), 0/1',
        _cites_excluded,
    ),
    Feature(
        "other_codes_given",
        "codes the passage gives beyond those the question names, up to 5, scaled 0..1",
        _other_codes,
    ),
    Feature("code_count", "log(1 + distinct codes the passage cites)", _code_count),
    Feature(
        "kind_match",
        'the passage cites a code and has the words of the kind of code asked ("which fluoro '
        'code"), 0/1',
        _kind_match,
    ),
    Feature(
        "site_agrees",
        "the passage assigns guidance to the question's needle-site kind (spinal/non-spinal)",
        lambda ctx: _site(ctx, True),
    ),
    Feature(
        "site_conflicts",
        "the passage assigns guidance only to the other needle-site kind than the question's",
        lambda ctx: _site(ctx, False),
    ),
    Feature(
        "modality_agrees",
        "the passage names the imaging modality the question names (fluoroscopy, CT, US, MR)",
        lambda ctx: _modality(ctx, True),
    ),
    Feature(
        "modality_other",
        "the passage names imaging modalities, none of them the question's",
        lambda ctx: _modality(ctx, False),
    ),
    Feature(
        "asks",
        "share of the passage's text that asks (questions, labelled questions left open), 0..1",
        lambda ctx: ctx.signal("question_share"),
    ),
    Feature("answers", 'the passage holds a labelled answer ("A.", "Answer:"), 0/1', _answers),
    Feature(
        "labelled_question",
        'the passage holds a labelled question ("Q.") without its answer, 0/1',
        _labelled_question,
    ),
    Feature("position", "1/(1+n) for the document's n-th passage (0-based)", _position),
    Feature(
        "year_known",
        "the passage or its document gives a date (posted, rev., effective ...), 0/1",
        lambda ctx: (_years(ctx) > 0).astype(np.float32),
    ),
    Feature("age", "decades between the passage's date and the corpus's newest, 0..2", _age),
    Feature(
        "newer_than_pool",
        "the passage's year minus the median dated candidate's, in decades, -2..2",
        _newer_than_pool,
    ),
    Feature(
        "question_year_gap",
        "decades between the year a question names (a past date of service) and the "
        "passage's, 0..2",
        _question_year_gap,
    ),
    Feature("length", "passage length in thousands of characters, capped at 2", _length),
    Feature(
        "question_names_code",
        "the question names a code (a question-level context for the other features), 0/1",
        lambda ctx: _question_flag(bool(ctx.question.named))(ctx),
    ),
    Feature(
        "question_yes_no",
        'the question asks yes or no ("is", "can", "should" ...), 0/1',
        lambda ctx: _question_flag(ctx.question.yes_no)(ctx),
    ),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)


def feature_table(ctx: FeatureContext) -> np.ndarray:
    """The (candidates x features) float32 table, columns in FEATURE_NAMES order."""
    if not len(ctx):
        return np.zeros((0, len(FEATURES)), dtype=np.float32)
    return np.stack([f.compute(ctx) for f in FEATURES], axis=1).astype(np.float32)
