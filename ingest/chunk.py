"""Cut a cleaned document into overlapping, sentence-aware passages.

How a document becomes chunks:
1. Lines that are page or forum furniture (user names, "Messages 312", "Best answers 0",
   "Top", "X said:" ... "Click to expand...", separator rules, "Page 2 of 4", newsletter
   mastheads with addresses, phones and issue stamps) are not content.
   They split the document into content regions; no chunk crosses them, so a ZIP code in a
   forum profile ("Houston, TX 77002") can never be part of a passage.
2. A region is split into sentences. A sentence that continues the previous one (it starts in
   lower case, or is a code followed by a lower-case qualifier such as "62328 with fluoroscopic
   guidance") and a very short fragment (a footnote mark such as "760008.") are glued to their
   neighbour, so a code stays with its descriptor.
3. Sentences are packed into windows of about `max_chars`. A window ends early at a paragraph
   break once it is long enough; a window that has to break inside a paragraph repeats its
   last sentence at the start of the next one (overlap).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from ingest.code_shapes import CODE_SHAPE

# Lines that label forum profile fields or page navigation (XenForo/vBulletin-style forums,
# as in the coding forums our users quote). A label is only furniture in a run of short lines.
_PROFILE_LABELS = frozenset(
    {
        "messages",
        "location",
        "best answers",
        "reaction score",
        "points",
        "joined",
        "posts",
        "likes",
        "trophy points",
        "solutions",
    }
)
_NUMBER_LINE = re.compile(r"^[\d,.\s]+$")
_SAID_LINE = re.compile(r"^\S.{0,60} said:$")
_EXPAND_LINE = re.compile(r"^click to (?:expand|shrink)\.{0,3}$", re.IGNORECASE)
_RULE_LINE = re.compile(r"^[\s_=\-*~#.]{3,}$")
_PAGE_LINE = re.compile(r"\bpage \d+ of \d+\b", re.IGNORECASE)
_NAV_LINES = frozenset({"top", "reply", "quote", "report", "like", "share", "back to top"})
# Masthead and contact lines of newsletters, tip sheets and policies: a street address with a
# state and ZIP, a phone number, an issue or revision stamp, or fields split by " | ". They
# name the publisher, not the coding rule, and would match questions by accident.
_PHONE = re.compile(r"\(\d{3}\)\s?\d{3}-\d{4}|\b\d{3}-\d{3}-\d{4}\b")
_STATE_ZIP = re.compile(r",\s[A-Z]{2}\s\d{5}(?:-\d{4})?\b")
_STAMP = re.compile(
    r"^(?:rev(?:ised)?\.?\s|issued\s|volume\s\d|vol\.\s?\d)|internal use only", re.IGNORECASE
)
_MASTHEAD_CHARS = 200

_SHORT_LINE_CHARS = 40
_SHORT_LINE_WORDS = 5

_ABBREVIATIONS = frozenset(
    [
        "e.g",
        "i.e",
        "eg",
        "ie",
        "vs",
        "etc",
        "dr",
        "mr",
        "mrs",
        "ms",
        "no",
        "nos",
        "vol",
        "fig",
        "approx",
        "st",
        "inc",
        "co",
        "jr",
        "sr",
        "dept",
        "p.o",
        "u.s",
        "pt",
        "pts",
        "min",
        "max",
        "ref",
        "cf",
        "al",
        "ca",
    ]
)
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s+[\"'(\[]?[A-Z0-9+])")
_CODE_CONTINUATION = re.compile(rf"^\+?{CODE_SHAPE}\s+(?:with|without|w/|w/o|and|or|each|per)\b")
_SHORT_FRAGMENT = 12


@dataclass(frozen=True)
class ChunkerOptions:
    """Settings that change the chunks (and so are recorded in the snapshot manifest)."""

    max_chars: int = 600
    min_chars: int = 200
    hard_max_chars: int = 1500
    version: int = 1

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    paragraph_start: bool = False


def content_regions(text: str) -> list[Span]:
    """Spans of `text` that are content, between lines of page or forum furniture."""
    lines = _lines(text)
    furniture = _furniture_lines(text, lines)
    regions: list[Span] = []
    start: int | None = None
    end = 0
    for index, (lo, hi) in enumerate(lines):
        if index in furniture or lo == hi:
            if index in furniture and start is not None:
                regions.append(Span(start, end))
                start = None
            continue
        if start is None:
            start = lo
        end = hi
    if start is not None:
        regions.append(Span(start, end))
    return regions


def _lines(text: str) -> list[tuple[int, int]]:
    spans = []
    pos = 0
    for line in text.split("\n"):
        spans.append((pos, pos + len(line)))
        pos += len(line) + 1
    return spans


def _is_short(line: str) -> bool:
    return len(line) <= _SHORT_LINE_CHARS and len(line.split()) <= _SHORT_LINE_WORDS


def _is_masthead(line: str) -> bool:
    if not line or len(line) > _MASTHEAD_CHARS or line.endswith((".", "?", "!", ":")):
        return False
    fields = [f for f in line.split(" | ") if f.strip()]
    return bool(
        _PHONE.search(line)
        or _STATE_ZIP.search(line)
        or any(_STAMP.search(f.strip()) for f in fields)
    )


def _furniture_lines(text: str, lines: list[tuple[int, int]]) -> set[int]:
    strings = [text[lo:hi].strip() for lo, hi in lines]
    marked: set[int] = set()
    seeds: set[int] = set()
    in_quote = False
    for i, line in enumerate(strings):
        lower = line.lower()
        if _SAID_LINE.match(line):
            in_quote = True
            marked.add(i)
        elif _EXPAND_LINE.match(line):
            in_quote = False
            marked.add(i)
        elif in_quote:
            marked.add(i)
        elif lower in _PROFILE_LABELS:
            marked.add(i)
            seeds.add(i)
        elif (
            lower in _NAV_LINES
            or _RULE_LINE.match(line)
            or line
            and _NUMBER_LINE.match(line)
            and len(line) <= 12
            or _PAGE_LINE.search(line)
            and len(line) <= 200
            or _is_masthead(line)
        ):
            marked.add(i)
    # Profile blocks: the short lines around a profile label (user name, rank, city) are
    # furniture too. Spread from labels through runs of short lines, skipping blank lines.
    frontier = list(seeds)
    while frontier:
        i = frontier.pop()
        for step in (-1, 1):
            j = i + step
            while 0 <= j < len(strings) and not strings[j]:
                j += step
            if 0 <= j < len(strings) and j not in marked and _is_short(strings[j]):
                if not strings[j].endswith((".", "?", "!")):
                    marked.add(j)
                    frontier.append(j)
            elif 0 <= j < len(strings) and j in marked and j not in seeds:
                seeds.add(j)
                frontier.append(j)
    return marked


def split_sentences(text: str, region: Span) -> list[Span]:
    """Sentence spans inside `region`; each line break also ends a sentence."""
    spans: list[Span] = []
    pos = region.start
    paragraph_start = True
    for line in text[region.start : region.end].split("\n"):
        line_start, line_end = pos, pos + len(line)
        pos = line_end + 1
        if not line.strip():
            paragraph_start = True
            continue
        cursor = line_start
        for match in _SENTENCE_END.finditer(text, line_start, line_end):
            if _ends_with_abbreviation(text, cursor, match.start()):
                continue
            spans.append(Span(cursor, match.end(), paragraph_start))
            paragraph_start = False
            cursor = _skip_spaces(text, match.end(), line_end)
        if cursor < line_end:
            spans.append(Span(cursor, line_end, paragraph_start))
        paragraph_start = True
    return spans


def _ends_with_abbreviation(text: str, start: int, dot: int) -> bool:
    word = text[start:dot].rsplit(None, 1)[-1].lower() if text[start:dot].strip() else ""
    return word.strip("(\"'") in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def _skip_spaces(text: str, pos: int, limit: int) -> int:
    while pos < limit and text[pos] == " ":
        pos += 1
    return pos


def sentence_units(text: str, sentences: list[Span]) -> list[Span]:
    """Glue continuations and tiny fragments to their neighbours (code + descriptor stay)."""
    units: list[Span] = []
    pending: Span | None = None  # a short fragment waiting for the next sentence
    for sentence in sentences:
        body = text[sentence.start : sentence.end]
        if pending is not None:
            sentence = Span(pending.start, sentence.end, pending.paragraph_start)
            pending = None
        elif units and _continues_previous(body):
            previous = units.pop()
            sentence = Span(previous.start, sentence.end, previous.paragraph_start)
        if len(text[sentence.start : sentence.end].strip()) <= _SHORT_FRAGMENT:
            pending = sentence
            continue
        units.append(sentence)
    if pending is not None:
        if units:
            last = units.pop()
            units.append(Span(last.start, pending.end, last.paragraph_start))
        else:
            units.append(pending)
    return units


def _continues_previous(body: str) -> bool:
    first = body.lstrip()[:1]
    return (first.isalpha() and first.islower()) or bool(_CODE_CONTINUATION.match(body))


def pack_windows(units: list[Span], options: ChunkerOptions) -> list[Span]:
    """Group units into windows; see the module docstring for the rules."""
    windows: list[Span] = []
    i = 0
    while i < len(units):
        start = units[i].start
        j = i
        while j + 1 < len(units):
            nxt = units[j + 1]
            length = units[j].end - start
            if nxt.paragraph_start and length >= options.min_chars:
                break
            if nxt.end - start > options.max_chars:
                break
            j += 1
        windows.append(Span(start, units[j].end))
        if j + 1 >= len(units):
            break
        overlap = not units[j + 1].paragraph_start and j > i
        i = j if overlap else j + 1
    return windows


def split_long(text: str, span: Span, hard_max: int) -> list[Span]:
    """Split a window longer than `hard_max` at clause or word boundaries."""
    if span.end - span.start <= hard_max:
        return [span]
    pieces: list[Span] = []
    start = span.start
    while span.end - start > hard_max:
        limit = start + hard_max
        cut = max(text.rfind("; ", start, limit), text.rfind(", ", start, limit))
        if cut <= start + hard_max // 2:
            cut = text.rfind(" ", start, limit)
        if cut <= start:
            cut = limit - 1
        pieces.append(Span(start, cut + 1))
        start = _skip_spaces(text, cut + 1, span.end)
    if start < span.end:
        pieces.append(Span(start, span.end))
    return [Span(p.start, _rstrip(text, p)) for p in pieces if _rstrip(text, p) > p.start]


def _rstrip(text: str, span: Span) -> int:
    end = span.end
    while end > span.start and text[end - 1].isspace():
        end -= 1
    return end


def chunk_spans(text: str, options: ChunkerOptions | None = None) -> list[tuple[Span, str]]:
    """Every chunk span of a cleaned document with its section heading, in document order."""
    options = options or ChunkerOptions()
    spans: list[tuple[Span, str]] = []
    heading = ""
    for region in content_regions(text):
        units = sentence_units(text, split_sentences(text, region))
        headings = [heading_of(text, unit) for unit in units]
        for window in pack_windows(units, options):
            for unit, unit_heading in zip(units, headings, strict=True):
                if unit.start >= window.start:
                    break
                heading = unit_heading or heading
            for piece in split_long(text, window, options.hard_max_chars):
                spans.append((piece, heading))
    return spans


def heading_of(text: str, unit: Span) -> str:
    """The unit's text when it reads as a section heading, else "".

    A heading is one short line of its own with no closing punctuation or comma, in capitals
    or with most words capitalised ("III. REIMBURSEMENT GUIDELINES", "Coding Tips").
    """
    line = text[unit.start : unit.end].strip()
    words = line.split()
    if not unit.paragraph_start or "\n" in line or not 2 <= len(line) <= 80:
        return ""
    if line.endswith((".", ",", ";", ":", "?", "!")) or "," in line or len(words) > 10:
        return ""
    capitalised = sum(1 for w in words if w[:1].isupper() or not w[:1].isalpha())
    return line if line.isupper() or capitalised / len(words) >= 0.6 else ""
