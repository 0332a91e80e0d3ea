"""The answer-code ranker's features: named functions over (question, candidate code).

A candidate code is any code the top passages cite; `index/answer.py` gathers what they say of
it (`CodeStats`: roles, the relevance of the sentences citing it, ranges, site and kind
agreement). Like the passage features (index/features.py) each is a property any coding text
can have, documented with its range; `cptqa train` fits a scorer on them and explanations list
each one's part in a code's score.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from index.answer import CodeStats
from index.question import ParsedQuestion

CODE_FEATURE_VERSION = 3
_GIVING = frozenset({"defined", "primary", "add-on"})
_REJECTING = frozenset({"excluded", "bundled", "deleted"})


@dataclass(frozen=True)
class CodeCandidate:
    code: str
    stats: CodeStats
    passage_gap: float  # the model score of the first passage citing it minus the top one's
    corpus_mentions: int = 0  # mentions in the whole corpus (its glossary entry)
    corpus_deleted: float = 0.0  # share of those that say it was deleted
    corpus_rejected: float = 0.0  # share that turn it down (bundled, excluded, deleted)
    described: bool = False  # the corpus gives a descriptor for it
    descriptor_kind: bool = False  # its descriptors have the words of the kind asked
    # From the code history (ingest/history.py), as of the year the question is about:
    valid_in_year: bool = True  # neither deleted nor not yet in use that year
    succeeds_named: bool = False  # it took over a code the question names (62311 → 62323)
    named_changed: bool = False  # the question names it and it changed by that year


@dataclass(frozen=True)
class CodeFeature:
    name: str
    description: str
    compute: Callable[[ParsedQuestion, CodeCandidate], float]


CODE_FEATURES: tuple[CodeFeature, ...] = (
    CodeFeature(
        "hand_total",
        "log(1 + the hand-weighted answer score summed over passages): the old ranking",
        lambda q, c: math.log1p(max(c.stats.hand_total, 0.0)),
    ),
    CodeFeature(
        "relevance",
        "best relevance to the question of a sentence citing the code (cosine + word overlap)",
        lambda q, c: c.stats.relevance,
    ),
    CodeFeature(
        "similarity",
        "best cosine with the question of a sentence citing the code, 0..1",
        lambda q, c: c.stats.similarity,
    ),
    CodeFeature(
        "clause_overlap",
        "best share of the question's words in the clause citing the code, 0..1",
        lambda q, c: c.stats.clause_overlap,
    ),
    CodeFeature(
        "local_overlap",
        "best share of the question's words among the words nearest to the code, 0..1",
        lambda q, c: c.stats.local_overlap,
    ),
    CodeFeature(
        "mentions",
        "log(1 + mentions of the code in the top passages)",
        lambda q, c: math.log1p(c.stats.mentions),
    ),
    CodeFeature(
        "corpus_mentions",
        "log(1 + mentions of the code in the whole corpus)",
        lambda q, c: math.log1p(c.corpus_mentions),
    ),
    CodeFeature(
        "corpus_deleted",
        "share of the corpus's mentions of the code that say it was deleted, 0..1",
        lambda q, c: c.corpus_deleted,
    ),
    CodeFeature(
        "corpus_rejected",
        "share of the corpus's mentions of the code that turn it down, 0..1",
        lambda q, c: c.corpus_rejected,
    ),
    CodeFeature(
        "described",
        "the corpus gives a descriptor for the code, 0/1",
        lambda q, c: float(c.described),
    ),
    CodeFeature(
        "descriptor_kind",
        'the corpus describes the code with the words of the kind of code asked ("which '
        'fluoro code": a fluoroscopic guidance code), 0/1',
        lambda q, c: float(c.descriptor_kind),
    ),
    CodeFeature(
        "first_passage_rr",
        "1/(1+rank) of the first passage citing the code",
        lambda q, c: 1.0 / (1.0 + c.stats.first_rank),
    ),
    CodeFeature(
        "passage_gap",
        "the ranking model's score of the first passage citing the code minus the top "
        "passage's, <= 0",
        lambda q, c: c.passage_gap,
    ),
    CodeFeature(
        "passages",
        "share of the top passages citing the code, 0..1",
        lambda q, c: min(c.stats.passages, 5) / 5.0,
    ),
    CodeFeature(
        "role_giving",
        "the best mention defines the code or gives it as primary or add-on, 0/1",
        lambda q, c: float(c.stats.best_role in _GIVING),
    ),
    CodeFeature(
        "role_rejecting",
        "the best mention turns the code down (bundled, excluded, deleted), 0/1",
        lambda q, c: float(c.stats.best_role in _REJECTING),
    ),
    CodeFeature(
        "ever_rejected",
        "some mention in the top passages turns the code down, 0/1",
        lambda q, c: float(bool(c.stats.roles & _REJECTING)),
    ),
    CodeFeature(
        "asked_only",
        "every sentence citing the code asks (ends with '?'), 0/1",
        lambda q, c: float(c.stats.asked_only),
    ),
    CodeFeature(
        "of_kind",
        'the words next to the code give the kind of code asked ("which fluoro code"), 0/1',
        lambda q, c: float(c.stats.of_kind),
    ),
    CodeFeature(
        "kind_asked",
        "the question asks for a kind of code that some code's words give, 0/1",
        lambda q, c: float(c.stats.kind_asked),
    ),
    CodeFeature(
        "site_conflict",
        "every mention ties the code to the other needle-site kind than the question's, 0/1",
        lambda q, c: float(c.stats.site_conflict and q.site is not None),
    ),
    CodeFeature(
        "range_only",
        "the code appears only as a range's member or end (CODING_FACTS.md §2), 0/1",
        lambda q, c: float(c.stats.in_range_only),
    ),
    CodeFeature("named", "the question names the code, 0/1", lambda q, c: float(c.stats.named)),
    CodeFeature(
        "named_rejected",
        "the question names the code and the best passage citing it turns it down, 0/1",
        lambda q, c: float(c.stats.rejected),
    ),
    CodeFeature(
        "pointed_sentence",
        "a sentence that turns down a code the question names cites this one without turning "
        'it down ("0230T for a TFESI under fluoro: use 64483"), 0/1',
        lambda q, c: float(c.stats.pointed_sentence),
    ),
    CodeFeature(
        "pointed_passage",
        "a top passage that turns down a code the question names cites this one without "
        "turning it down, 0/1",
        lambda q, c: float(c.stats.pointed_passage),
    ),
    CodeFeature(
        "excluded_by_question",
        'the question excludes the code ("not 64493"), 0/1',
        lambda q, c: float(c.code in q.excluded_codes),
    ),
    CodeFeature(
        "question_checks_code",
        "the question names a code and asks whether it is right (a context feature), 0/1",
        lambda q, c: float(any(n.asks_right for n in q.named)),
    ),
    CodeFeature(
        "hcpcs",
        "the code is HCPCS Level II (a drug, supply or temporary code), 0/1",
        lambda q, c: float(c.stats.system == "HCPCS"),
    ),
    CodeFeature(
        "category_iii",
        "the code is CPT Category III (emerging technology), 0/1",
        lambda q, c: float(c.stats.category == "III"),
    ),
    CodeFeature(
        "invalid_unasked",
        "the code history has the code deleted or not yet in use in the year the question is "
        "about (its date of service, else the current year) and the question does not name "
        "it: an answer to avoid (a deleted code the question names is its subject), 0/1",
        lambda q, c: float(not c.valid_in_year and not c.stats.named),
    ),
    CodeFeature(
        "succeeds_named",
        "the code took over all or part of a code the question names (its replacement, or "
        "where a revised code's old meaning moved), 0/1",
        lambda q, c: float(c.succeeds_named),
    ),
    CodeFeature(
        "named_changed",
        "the question names the code and the code history records a change to it by the "
        "question's year, 0/1",
        lambda q, c: float(c.named_changed),
    ),
)
CODE_FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in CODE_FEATURES)


def code_table(question: ParsedQuestion, candidates: Sequence[CodeCandidate]) -> np.ndarray:
    """The (codes x features) float32 table, columns in CODE_FEATURE_NAMES order."""
    if not candidates:
        return np.zeros((0, len(CODE_FEATURES)), dtype=np.float32)
    return np.asarray(
        [[f.compute(question, c) for f in CODE_FEATURES] for c in candidates], dtype=np.float32
    )
