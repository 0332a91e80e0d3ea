"""What a search returns: passages (hits), a code's lookup, and the explanations of a score."""

from __future__ import annotations

from dataclasses import dataclass

from index.answer import AnswerCode
from ingest import Chunk, Document
from ingest.dates import PassageDate
from ingest.glossary import CodeEntry
from ingest.history import CodeChange


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    document: Document
    score: float
    rank: int
    # The year the passage speaks for, and later changes to codes it cites (index/current.py).
    date: PassageDate | None = None
    dated: tuple[CodeChange, ...] = ()


@dataclass(frozen=True)
class CodeLookup:
    """What the corpus says about one code: its glossary entry and the passages citing it;
    its status as of the current year and its known changes (table and corpus)."""

    entry: CodeEntry
    passages: list[Hit]
    # A code the corpus mentions once beside a far more common code one edit away (a typo,
    # or a real but rare code): the likely intended codes, and a sentence saying so.
    suggestions: tuple[str, ...] = ()
    note: str = ""
    status: str = "current"
    history: tuple[CodeChange, ...] = ()


@dataclass(frozen=True)
class FeatureExplanation:
    name: str
    value: float
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """Why a passage ranks where it does: the scorer, its base value and every feature's
    value and contribution (they sum, with the base, to the passage's score)."""

    scorer: str
    base: float
    features: tuple[FeatureExplanation, ...]


@dataclass(frozen=True)
class SearchResult:
    question: str
    hits: list[Hit]
    codes: list[AnswerCode]
    took_ms: float
    explanations: list[Explanation] | None = None  # per hit, when asked
    # Per answer code, when asked (None for a code the current-rules step brought in).
    code_explanations: list[Explanation | None] | None = None
