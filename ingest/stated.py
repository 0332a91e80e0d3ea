"""Code changes the corpus states itself, read at ingest, each with the passage that says it.

A sentence states a change when it gives a year and says what happened to a code it cites:
- deleted or renumbered: the extractor already gives the code the role "deleted" ("62311 was
  deleted in 2017", "76005 became 77003", "62311 was replaced by 62322 or 62323"); codes
  written after the verb in the same sentence ("became 77003", "use 62322 or 62323") are the
  replacements; "became", "becomes" and "renumbered" make it a renumbering;
- added: "new for 2020", "new codes 62328 and 62329 (2020)", "created in 2007";
- revised: "revised in 2012", "descriptors were revised for 2011";
- replaced, said of the new code: "50435 Exchange nephrostomy catheter ... replaced 50398 +
  75984 (2016)": the codes after "replaced" were deleted that year, replaced by the code(s)
  before it;
- a crosswalk row, old codes and their last year, then new codes and the year they took effect
  ("62311 | 2016 | 62322 or 62323 | 2017", a table flattened to "62311 2016 62322 or 62323
  2017"): the old codes were deleted in the later year, replaced by the new ones.
The year is the one the sentence gives (a date or a bare year); a sentence without one states
no change here. These facts join the code history (`ingest/history.py`) beside the shipped
table; where the two disagree both are shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ingest.chunk import Span, split_sentences
from ingest.history import CORPUS_SOURCE, CodeChange
from ingest.types import Chunk, CodeMention

# Bump when what is read changes (here or in ingest/dates.py): `cptqa ingest` then rewrites
# the glossary's stated changes and the passages' dates from the chunks, embedding nothing.
STATED_VERSION = 2
MAX_STATED = 8  # facts kept per code
_WORDS = 240
_YEAR = re.compile(r"(?<![\w.,$-])(19[89]\d|20[0-4]\d)(?!\w|,\d)")
_RENUMBERED = re.compile(r"\b(?:became|becomes|renumbered|moved\s+to)\b", re.IGNORECASE)
# Words after which a code is the replacement, not the code replaced.
_REPLACING = re.compile(
    r"\b(?:became|becomes|renumbered(?:\s+(?:to|as))?|moved\s+to|replaced\s+(?:by|with)|use|now"
    r"|see|report(?:ed)?\s+(?:with|as)|in\s+favou?r\s+of|superseded\s+by)\s*:?\s*$|(?:→|->)\s*$",
    re.IGNORECASE,
)
_ADDED = re.compile(
    r"\bnew\s+(?:codes?\s+)?(?:for|in|as\s+of|effective|since|starting)\s+(?:\w+\s+){0,3}?"
    r"(?:19|20)\d\d|\b(?:created|introduced|established|added|took\s+effect)\s+(?:in|for|as\s+of"
    r"|effective)\b",
    re.IGNORECASE,
)
_REVISED = re.compile(
    r"\b(?:revised|redefined)\s+(?:in|for|on|as\s+of|effective)\b|\bdescriptors?\s+(?:was|were"
    r"|has\s+been|have\s+been)\s+(?:revised|changed|rewritten)\b",
    re.IGNORECASE,
)
# What may join the codes of one list: commas, slashes, "and", "or", a range's dash, a plus.
_LIST_GAP = re.compile(r"[\s,/&+–-]*(?:\b(?:and|or|through|thru)\b)?[\s,/&+–-]*")
# The code is the one changed: "76005 became 77003", "62311 was replaced by 62322".
_SUBJECT = re.compile(
    r"\W{0,3}(?:\([^()]{0,80}\)\s*)?(?:(?:was|were|is|are|has\s+been|have\s+been)\s+)?"
    r"(?:deleted|retired|became|becomes|renumbered|replaced\s+by)\b",
    re.IGNORECASE,
)
_NEAR = 80  # characters between a code and the words that say it was added or revised
_NOT_ADDED_ROLES = frozenset({"deleted", "excluded"})
_FROM = re.compile(r"\bfrom\s*$", re.IGNORECASE)
# "replaced 50398 + 75984 (2016)", said of the new code; "replaced by" is the passive reading.
_REPLACED_ACTIVE = re.compile(
    r"\b(?:replaced|replaces|supersedes|superseded)\b(?!\s+(?:by|with)\b)", re.IGNORECASE
)
# What may stand between the cells of a crosswalk row: separators, "or", "and", a plus.
_CELL_GAP = re.compile(r"[\s|,/&+;:–-]*(?:\b(?:or|and)\b)?[\s|,/&+;:–-]*", re.IGNORECASE)


def stated_changes(chunk: Chunk) -> list[CodeChange]:
    """The code changes `chunk`'s sentences state, with the sentence as their words."""
    found: list[CodeChange] = []
    for span in split_sentences(chunk.text, Span(0, len(chunk.text))):
        start, end = chunk.start + span.start, chunk.start + span.end
        mentions = [m for m in chunk.codes if start <= m.start < end and _alone(m)]
        if not mentions:
            continue
        sentence = chunk.text[span.start : span.end]
        years = [(m.start(), int(m.group(1))) for m in _YEAR.finditer(sentence)]
        if years:
            found.extend(_sentence_changes(chunk, sentence, start, mentions, years))
            found.extend(_replaced_active(chunk, sentence, start, mentions, years))
    found.extend(_crosswalk_rows(chunk))
    return found


def _replaced_active(
    chunk: Chunk,
    sentence: str,
    offset: int,
    mentions: list[CodeMention],
    years: list[tuple[int, int]],
) -> Iterable[CodeChange]:
    """Said of the new code ("50435 ... replaced 50398 + 75984 (2016)"): the codes in the
    list right after the verb were deleted, the codes of the sentence before it replaced
    them."""
    for match in _REPLACED_ACTIVE.finditer(sentence):
        at = match.end()
        newer = [m for m in mentions if m.end - offset <= match.start()]
        older = []
        for m in mentions:
            if m.start - offset < at:
                continue
            if not _LIST_GAP.fullmatch(sentence[at : m.start - offset]):
                break
            older.append(m)
            at = m.end - offset
        replacements = tuple(dict.fromkeys(m.code for m in newer if m.role not in _NOT_ADDED_ROLES))
        if not older or not replacements:
            continue
        for m in older:
            year = _year_near(years, m.end - offset)
            yield _change(chunk, m.code, "deleted", year, replacements, _shorten(sentence))


def _crosswalk_rows(chunk: Chunk) -> Iterable[CodeChange]:
    """Rows of a crosswalk table: old codes, their last year, new codes, the year they took
    effect (the year after), and nothing else between them."""
    at = 0
    for line in chunk.text.split("\n"):
        start, end = chunk.start + at, chunk.start + at + len(line)
        at += len(line) + 1
        items = sorted(
            [(m.start - start, m.end - start, m) for m in chunk.codes if start <= m.start < end]
            + [(y.start(1), y.end(1), int(y.group(1))) for y in _YEAR.finditer(line)],
            key=lambda item: item[0],
        )
        cells = _cells(line, items)
        if cells is None:
            continue
        old, last, new, effective = cells
        if effective != last + 1 or any(not _alone(m) for m in (*old, *new)):
            continue
        replacements = tuple(dict.fromkeys(m.code for m in new))
        for m in old:
            yield _change(chunk, m.code, "deleted", effective, replacements, _shorten(line))


def _cells(
    line: str, items: list[tuple[int, int, CodeMention | int]]
) -> tuple[list[CodeMention], int, list[CodeMention], int] | None:
    """(old codes, last year, new codes, effective year) when the line opens with that
    sequence, else None."""
    groups: list[list[CodeMention] | int] = []
    previous = 0
    for begin, finish, item in items:
        if not _CELL_GAP.fullmatch(line[previous:begin]):
            break
        previous = finish
        if isinstance(item, int):
            groups.append(item)
            if len(groups) == 4:
                break
        elif groups and isinstance(groups[-1], list):
            groups[-1].append(item)
        else:
            groups.append([item])
    if len(groups) != 4:
        return None
    old, last, new, effective = groups
    if not (isinstance(old, list) and isinstance(last, int) and isinstance(new, list)):
        return None
    if not isinstance(effective, int):
        return None
    return old, last, new, effective


def _sentence_changes(
    chunk: Chunk,
    sentence: str,
    offset: int,
    mentions: list[CodeMention],
    years: list[tuple[int, int]],
) -> Iterable[CodeChange]:
    words = _shorten(sentence)
    replacing = {i for i, m in enumerate(mentions) if _replaces(sentence, offset, mentions, i)}
    subjects = [i for i, m in enumerate(mentions) if m.role == "deleted" and i not in replacing]
    for group in _groups(sentence, offset, mentions, subjects):
        later = [i for i in subjects if i > group[-1]]
        stop = later[0] if later else len(mentions)
        replacements = tuple(
            dict.fromkeys(mentions[j].code for j in range(group[-1] + 1, stop) if j in replacing)
        )
        for i in group:
            mention = mentions[i]
            after = sentence[mentions[group[-1]].end - offset :]
            verb = re.match(r"\W{0,3}(?:\([^()]{0,80}\)\s*)?(\w+)", after)
            renumbered = bool(verb and _RENUMBERED.match(verb.group(1)))
            yield _change(
                chunk,
                mention.code,
                "renumbered" if renumbered else "deleted",
                _year_near(years, mention.end - offset),
                replacements,
                words,
            )
    for pattern, kind in ((_ADDED, "added"), (_REVISED, "revised")):
        for match in pattern.finditer(sentence):
            for mention in _said_of(sentence, offset, mentions, match.start()):
                year = _year_near(years, mention.end - offset)
                yield _change(chunk, mention.code, kind, year, (), words)


def _groups(
    sentence: str, offset: int, mentions: list[CodeMention], subjects: list[int]
) -> list[list[int]]:
    """Subjects written as one list ("71023 and 71034 (chest) were deleted") share a verb and
    its replacements."""
    groups: list[list[int]] = []
    for i in subjects:
        if groups and groups[-1][-1] == i - 1:
            gap = sentence[mentions[i - 1].end - offset : mentions[i].start - offset]
            if _LIST_GAP.fullmatch(re.sub(r"\([^()]{0,80}\)", "", gap)):
                groups[-1].append(i)
                continue
        groups.append([i])
    return groups


def _replaces(sentence: str, offset: int, mentions: list[CodeMention], index: int) -> bool:
    """The code is written as a replacement ("became 77003", "use 62322 or 62323"), alone
    or in a list after such words."""
    while True:
        mention = mentions[index]
        if _SUBJECT.match(sentence[mention.end - offset :]):
            return False
        before = sentence[: mention.start - offset]
        if _REPLACING.search(before[-40:]):
            return True
        if index == 0:
            return False
        gap = sentence[mentions[index - 1].end - offset : mention.start - offset]
        if not _LIST_GAP.fullmatch(gap):
            return False
        index -= 1


def _said_of(sentence: str, offset: int, mentions: list[CodeMention], at: int) -> list[CodeMention]:
    """The codes the words at `at` speak of: the list of codes just before them in the same
    clause ("64633-64636 (created in 2012)"), else the list just after ("new for 2020: 62328
    and 62329"); never one the sentence deletes, excludes, or names as an origin ("from")."""
    before = [
        i
        for i, m in enumerate(mentions)
        if m.end - offset <= at
        and at - (m.end - offset) <= _NEAR
        and not re.search(r"[;.]\s", sentence[m.end - offset : at])
    ]
    if before:
        chain = [before[-1]]
    else:
        after = [i for i, m in enumerate(mentions) if m.start - offset > at]
        if not after or mentions[after[0]].start - offset - at > _NEAR:
            return []
        chain = [after[0]]
    step = -1 if before else 1
    while 0 <= chain[-1] + step < len(mentions):
        a, b = sorted((chain[-1], chain[-1] + step))
        gap = sentence[mentions[a].end - offset : mentions[b].start - offset]
        if not _LIST_GAP.fullmatch(gap):
            break
        chain.append(chain[-1] + step)
    return [
        mentions[i]
        for i in sorted(chain)
        if mentions[i].role not in _NOT_ADDED_ROLES
        and not _FROM.search(sentence[: mentions[i].start - offset])
    ]


def _change(
    chunk: Chunk, code: str, kind: str, year: int, replacements: tuple[str, ...], words: str
) -> CodeChange:
    return CodeChange(
        code,
        kind,
        year,
        tuple(r for r in replacements if r != code),
        source=CORPUS_SOURCE,
        chunk_id=chunk.id,
        document_id=chunk.document_id,
        text=words,
    )


def _year_near(years: list[tuple[int, int]], position: int) -> int:
    """The first year after the code in its sentence, else the last one before it."""
    after = [year for at, year in years if at >= position]
    return after[0] if after else years[-1][1]


def _alone(mention: CodeMention) -> bool:
    return not (mention.from_range or mention.names_section)


def _shorten(sentence: str) -> str:
    words = " ".join(sentence.split())
    return words if len(words) <= _WORDS else words[:_WORDS].rsplit(" ", 1)[0] + " ..."
