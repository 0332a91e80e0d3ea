"""The year a coding text speaks for, read from its own dates, with the words it was read from.

Coding references from different years disagree (CODING_FACTS.md §7, "dated advice"), so
ranking needs to know how old a text's advice is. A year counts when it appears as a date: a
month and year ("March 2015"), a numeric date ("03/01/2024", "2016-05-03"), or a year after a
word that dates a text ("posted 2014", "rev. 2021", "Effective January 1, 2020", "updated",
"published", "issued", "copyright", "for 2015 dates of service"). Bare numbers that could be
years ("2,019 claims", a code range) do not count. The newest such year is the one a text
speaks for: a thread's latest post, a policy's latest revision. Unknown (None) is a valid
answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
