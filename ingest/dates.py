"""The year a coding text speaks for, read from its own dates, with the words it was read from.

Coding references from different years disagree (CODING_FACTS.md §7, "dated advice"), so
ranking needs to know how old a text's advice is. A year counts when it appears as a date: a
month and year ("March 2015"), a numeric date ("03/01/2024", "2016-05-03"), or a year after a
word that dates a text ("posted 2014", "rev. 2021", "Effective January 1, 2020", "updated",
"published", "issued", "copyright", "for 2015 dates of service"). Bare numbers that could be
years ("2,019 claims", a code range) do not count. The newest such year is the one a text
speaks for: a thread's latest post, a policy's latest revision. Unknown (None) is a valid
answer.

A passage speaks for its own newest date when it states one, else for its document's
(`passage_date`); a question may name the date of service it is about (`service_year`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ingest.types import Chunk, Document

_YEAR = r"(19[89]\d|20[0-4]\d)"
_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_DATE_WORD = (
    r"(?:posted|updated|revised|rev\.?|revision|effective|issued|published|dated?|reviewed"
    r"|copyright|©|\(c\)|as\s+of|since|in\s+effect|DOS|dates?\s+of\s+service)"
)
_PATTERNS = (
    re.compile(rf"\b{_MONTH}\s+(?:\d{{1,2}}(?:st|nd|rd|th)?,?\s+)?{_YEAR}\b", re.IGNORECASE),
    re.compile(rf"\b\d{{1,2}}[/.-]\d{{1,2}}[/.-]{_YEAR}\b"),
    re.compile(rf"\b{_YEAR}-\d{{2}}-\d{{2}}\b"),
    re.compile(
        rf"{_DATE_WORD}\s*[:\-]?\s*(?:on\s+)?(?:{_MONTH}\s+)?(?:\d{{1,2}},?\s+)?{_YEAR}\b",
        re.IGNORECASE,
    ),
    re.compile(rf"\bfor\s+{_YEAR}\s+dates?\s+of\s+service\b", re.IGNORECASE),
)


@dataclass(frozen=True)
class DatedText:
    year: int | None
    words: str  # the words the year was read from ("" when unknown)


def text_year(text: str) -> DatedText:
    """The newest year `text` gives as a date, and the words that give it."""
    best: tuple[int, str] | None = None
    for pattern in _PATTERNS:
        for match in pattern.finditer(text):
            year = int(next(g for g in match.groups() if g))
            if best is None or year > best[0]:
                best = (year, match.group(0))
    return DatedText(best[0], best[1].strip()) if best else DatedText(None, "")


@dataclass(frozen=True)
class PassageDate:
    """The year a passage speaks for: its own newest date, else its document's."""

    year: int | None
    words: str  # the words it was read from ("" when unknown)
    source: str  # "passage", "document", or "" when unknown


def passage_date(text: str, document: DatedText) -> PassageDate:
    """The passage's own date when it states one ("Posted March 2009"), else its document's:
    a forum reply dated 2009 speaks for 2009 even in a thread bumped in 2015."""
    own = text_year(text)
    if own.year is not None:
        return PassageDate(own.year, own.words, "passage")
    if document.year is not None:
        return PassageDate(document.year, document.words, "document")
    return PassageDate(None, "", "")


def chunk_dates(chunks: Iterable[Chunk], documents: Iterable[Document]) -> list[PassageDate]:
    """`passage_date` of every chunk, in order (each document's text read once)."""
    years = {d.id: text_year(d.text) for d in documents}
    unknown = DatedText(None, "")
    return [passage_date(c.text, years.get(c.document_id, unknown)) for c in chunks]


_WHEN = rf"(?:(?:\d{{1,2}}/)?(?:\d{{1,2}}/)?{_YEAR}|{_MONTH}\s+(?:\d{{1,2}},?\s+)?{_YEAR})\b"
# How a question names the date of service it is about: "DOS 11/2010", "2019 claim",
# "correcting a 2019 claim", "for 2015 dates of service", "claim from 12/2017", "right for 2024".
_SERVICE = (
    re.compile(rf"\bDOS\s*(?:of|on|:|was|is)?\s*{_WHEN}", re.IGNORECASE),
    re.compile(rf"\b{_YEAR}\s+(?:DOS|dates?\s+of\s+service|claims?)\b", re.IGNORECASE),
    re.compile(rf"\bdates?\s+of\s+service\s*(?:of|on|in|:)?\s*{_WHEN}", re.IGNORECASE),
    re.compile(rf"\bclaims?\s+(?:(?:from|for|dated|of|in)\s+)?{_WHEN}", re.IGNORECASE),
    re.compile(
        rf"\b(?:rebill\w*|correct(?:ed|ing)|resubmit\w*)\b[^.?!]{{0,40}}?\b(?:from|for|of|in)\s+"
        rf"{_WHEN}",
        re.IGNORECASE,
    ),
    re.compile(rf"\b(?:right|valid|correct|ok|okay|good)\s+for\s+{_YEAR}\b", re.IGNORECASE),
)


def service_year(question: str) -> DatedText:
    """The date of service a question asks about, when it names one ("correcting a 2019
    claim", "DOS 11/2010"), with the words; the earliest when it names several. A year that
    dates something else ("our 2015 cheat sheet", "billed back in 2010, still ok?") is not
    one: the coder asks about today's claim."""
    found = [
        (int(next(g for g in m.groups() if g)), m.group(0).strip())
        for pattern in _SERVICE
        for m in pattern.finditer(question)
    ]
    if not found:
        return DatedText(None, "")
    year, words = min(found)
    return DatedText(year, words)
