"""A coder's question, parsed once: everything ranking needs to know about it.

`parse_question` runs the coder lexicon, the tokenizer and the code extractor once per question;
the candidate generator, the feature registry (index/features.py) and the answer's codes all
read the same `ParsedQuestion`. Every rule here is general coding language (CODING_FACTS.md §3
and §6), never a particular question's wording.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import lru_cache

from index.lexical import tokenize_query
from index.lexicon import asked_kind, expand_question, question_site
from ingest import extract_codes, unique_codes
from ingest.dates import service_year

# Imaging modalities a question can name (CODING_FACTS.md §3, §6): the guidance codes differ by
# modality (77002/77003 fluoroscopy, 77012 CT, 76942 ultrasound, 77021 MR).
MODALITY_PATTERNS: dict[str, re.Pattern[str]] = {
    "fluoroscopy": re.compile(
        r"\b(?:fluoro\w*|flouro\w*|fluro\w*|floro\w*|c-?\s?arm)\b", re.IGNORECASE
    ),
    "ct": re.compile(r"\b(?:CT|computed\s+tomograph\w*|cat\s+scan)\b", re.IGNORECASE),
    "ultrasound": re.compile(
        r"(?:\bUS\b(?=[\s-]+guid)|\bU/S\b|\bultrasound\w*|\bultrasonic\w*|\bsono\w*|\bUSG\b)",
    ),
    "mri": re.compile(r"\b(?:MRI?|magnetic\s+resonance)\b"),
}
MODALITIES = tuple(MODALITY_PATTERNS)

# What the question says of a code it names.
_EXCLUDED = re.compile(r"\b(?:not|instead\s+of|rather\s+than|other\s+than|except|besides)\s*$")
_ASKS_RIGHT = re.compile(
    r"\b(?:is|are|can|could|should|may|do|does|would|ok|okay|correct|right|bill|report|use|add)"
    r"\b[^.?!]*$",
    re.IGNORECASE,
)
_LATERALITY = re.compile(
    r"\b(?:bilateral|bilat|both\s+sides|b/l|left|right|unilateral|-?50\b|RT\b|LT\b)",
    re.IGNORECASE,
)
_LEVEL = re.compile(r"\b[CTLS]\d{1,2}(?:\s*-\s*[CTLS]?\d{1,2})?\b")
_LEVEL_COUNT = re.compile(
    r"\b(?:one|two|three|four|five|single|multiple|\d+)\s+(?:levels?|segments?|regions?)\b",
    re.IGNORECASE,
)

# The kind of answer asked for, by the words coders use (CODING_FACTS.md §2 for modifiers,
# units and bundling).
ANSWER_KINDS = ("code", "modifier", "units", "bundling", "definition", "yes_no")
_ANSWER_KIND_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("modifier", re.compile(r"\bmod(?:ifier)?s?\b|-(?:59|XS|XU|25|26|TC|50|RT|LT)\b", re.I)),
    ("units", re.compile(r"\bunits?\b|\bhow\s+many\b|\bper\s+(?:level|side|day|mg)\b", re.I)),
    (
        "bundling",
        re.compile(
            r"\bbundl\w*|\bseparately\b|\binclusive\b|\bincluded\b|\bNCCI\b|\bCCI\b|\bPTP\b", re.I
        ),
    ),
    (
        "definition",
        re.compile(r"\bwhat\s+(?:is|does|are)\b|\bdifference\b|\bmean(?:s|ing)?\b|\bdefin", re.I),
    ),
    ("code", re.compile(r"\bcodes?\b|\bcpt\b|\bhcpcs\b|\bbill\b|\breport\b", re.I)),
)
_YES_NO = re.compile(r"^\s*(?:is|are|can|could|should|may|do|does|would|will)\b", re.I)


@dataclass(frozen=True)
class NamedCode:
    """A code the question names, and what it says of it."""

    code: str
    excluded: bool = False  # "not 64493", "instead of 77003"
    asks_right: bool = False  # "can I bill 20610 + 76942?", "is 77003 right?"


@dataclass(frozen=True)
class ParsedQuestion:
    text: str
    lexical_text: str  # the question with the coder lexicon's reference wording appended
    tokens: tuple[str, ...]  # the lexical side's query tokens (stemmed, frame words dropped)
    named: tuple[NamedCode, ...] = ()
    modalities: frozenset[str] = field(default_factory=frozenset)
    site: str | None = None  # "spinal" / "non-spinal" needle site (CODING_FACTS.md §3)
    laterality: bool = False
    levels: int = 0  # spinal levels or level counts named
    answer_kind: str = "code"
    yes_no: bool = False
    code_kind: str | None = None  # the kind of code asked for ("fluoro" in "which fluoro code")
    years: tuple[int, ...] = ()  # years the question names ("a 2019 claim")
    service_year: int | None = None  # the date of service it asks about (ingest/dates.py)

    @property
    def codes(self) -> tuple[str, ...]:
        """Every code the question names, in order."""
        return tuple(n.code for n in self.named)

    @property
    def wanted_codes(self) -> frozenset[str]:
        """Codes the question names and does not exclude."""
        return frozenset(n.code for n in self.named if not n.excluded)

    @property
    def excluded_codes(self) -> frozenset[str]:
        return frozenset(n.code for n in self.named if n.excluded)


def parse_question(text: str, known_codes: Collection[str] = frozenset()) -> ParsedQuestion:
    """Parse `text` once (cached by text and corpus: the same question asked again is free)."""
    return _parse(text, frozenset(known_codes))


_YEAR = re.compile(r"\b(19[89]\d|20[0-4]\d)\b")


@lru_cache(maxsize=2048)
def _parse(text: str, known_codes: frozenset[str]) -> ParsedQuestion:
    expanded = expand_question(text)
    mentions = extract_codes(text, known_codes=known_codes)
    named = []
    for code in unique_codes(mentions):
        first = next(m for m in mentions if m.code == code)
        before = text[max(0, first.start - 24) : first.start]
        named.append(
            NamedCode(
                code,
                excluded=bool(_EXCLUDED.search(before)),
                asks_right=bool(_ASKS_RIGHT.search(text[: first.start])) or "?" in text,
            )
        )
    modalities = frozenset(m for m, p in MODALITY_PATTERNS.items() if p.search(text))
    kind = next((k for k, p in _ANSWER_KIND_PATTERNS if p.search(text)), "code")
    return ParsedQuestion(
        text=text,
        lexical_text=expanded.text,
        tokens=tuple(tokenize_query(expanded.text)),
        named=tuple(named),
        modalities=modalities,
        site=question_site(text) or question_site(expanded.text),
        laterality=bool(_LATERALITY.search(text)),
        levels=len(_LEVEL.findall(text)) + len(_LEVEL_COUNT.findall(text)),
        answer_kind=kind,
        yes_no=bool(_YES_NO.search(text)),
        code_kind=asked_kind(text),
        years=tuple(int(y) for y in _YEAR.findall(text)),
        service_year=service_year(text).year,
    )


def text_modalities(text: str) -> frozenset[str]:
    """The imaging modalities a piece of reference text names."""
    return frozenset(m for m, p in MODALITY_PATTERNS.items() if p.search(text))
