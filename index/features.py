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

What the features read (`FeatureContext`) is in index/feature_context.py; the features about
the needle site, the modality and dates are in index/feature_site_date.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from index.feature_context import (
    Candidates,
    Feature,
    FeatureContext,
    descriptor_words,
)
from index.feature_site_date import (
    _age,
    _modality,
    _newer_than_pool,
    _question_year_gap,
    _site,
    _years,
)
from index.lexical import tokenize_query
from index.lexicon import expand_question
from index.question import ParsedQuestion

# The context the features read lives in index/feature_context.py; its names stay importable
# from here.
__all__ = [
    "FEATURES",
    "FEATURE_NAMES",
    "FEATURE_VERSION",
    "Candidates",
    "Feature",
    "FeatureContext",
    "descriptor_words",
    "feature_table",
    "kind_groups",
]

FEATURE_VERSION = 1

# Roles by which a passage turns a code down, and those by which it gives it (ingest/roles.py).
_REJECTING = frozenset({"excluded", "bundled", "deleted"})
_GIVING = frozenset({"defined", "primary", "add-on"})


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


def _best_sentence(ctx: FeatureContext, part: int, citing: bool) -> np.ndarray:
    """The best sentence value (0: cosine, 1: weighted coverage) per candidate, over all its
    sentences or only those citing a code (0 when there is none)."""
    table = ctx.by_sentence
    values = table.cosine if part == 0 else table.share
    chosen = table.cites if citing else np.ones(len(values), dtype=bool)
    best = np.full(len(ctx), -np.inf)
    np.maximum.at(best, table.owner[chosen], values[chosen])
    best[best == -np.inf] = 0.0
    return best.astype(np.float32)


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


def _answers(ctx: FeatureContext) -> np.ndarray:
    """The passage holds a labelled answer ("A.", "Answer:") or answers a labelled question
    within itself."""
    return np.asarray([f[1] for f in ctx.facts], dtype=np.float32)


def _labelled_question(ctx: FeatureContext) -> np.ndarray:
    return np.asarray([f[2] for f in ctx.facts], dtype=np.float32)


def _position(ctx: FeatureContext) -> np.ndarray:
    """1 for a document's first passage, falling as 1/(1+n): in a thread the first passage is
    the asker's post; in a policy it is the heading and scope."""
    return np.asarray([1.0 / (1.0 + f[3]) for f in ctx.facts], dtype=np.float32)


def _length(ctx: FeatureContext) -> np.ndarray:
    return np.asarray([min(len(c.text), 2000) / 1000.0 for c in ctx.chunks], dtype=np.float32)


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
