"""The one CPT/HCPCS code extractor, used for the corpus, for questions and by the CLI.

A code is a whole alphanumeric token of one of these shapes (AMA CPT; CMS HCPCS):
  Category I   five digits inside a CPT section (62270, 00635)
  Category II  four digits + F (3008F); Category III four digits + T (0213T); PLA + U (0001U)
  HCPCS II     a letter in use + four digits (J3301, G0260)
and it is refused when its neighbours show it is something else. Each refusal is a small named
rule (`_REFUSALS`, in ingest/code_refusals.py): money, percentages, decimals and grouped
numbers, pieces of longer numbers (phones, NDCs, accounts, ZIP+4), ZIP codes after a state
(abbreviated or in full) or a ZIP key, street and box numbers, labelled identifiers (account,
NPI, lot, contractor, CR, section, page ...), X12 segments outside their procedure positions,
URLs and DOIs, X12 diagnosis qualifiers and labelled diagnoses. A value refused as a ZIP code
is a ZIP code again when the same text writes it bare, with nothing saying it is a code.

Around a code: modifiers ("77003-26", "77003 59", "64493 -RT", "HC:62270:26") are kept on the
mention; ranges ("64490-64495", "62302 through 62305", "64490--64492") expand by the policy in
`code_facts`, and a range over a whole section ("70000-79999") names the section; a six-digit
token that starts a sentence and ends with a period ("760008.") is a code plus a footnote digit
only when its first five digits are a known code. A code may touch a unit count ("J1100x2") or,
in table text flattened by a copy, its descriptor ("20610Arthrocentesis"). Roles come from
`ingest.roles`.

The code shapes and the modifier pattern (`CODE_SHAPE`, `MODIFIER_AFTER`, ...) are defined once,
in ingest/code_shapes.py; candidates and the ranges and pairs they join are in
ingest/code_ranges.py.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable

from ingest.code_facts import SPACED_MODIFIERS
from ingest.code_ranges import (
    _Candidate,
    _candidate,
    _joined_code,
    _joined_mentions,
    _mention,
    _section_range,
    _skip_tokens,
)
from ingest.code_refusals import _after_procedure_qualifier
from ingest.code_shapes import (
    _PAIR_JOIN,
    _RANGE_JOIN,
    _SIX_DIGITS,
    _SPACED_MODIFIER,
    _TOKEN,
    _X12_MODIFIER,
    CODE_SHAPE,
    HYPHEN_MODIFIER,
    MODIFIER_AFTER,
    MODIFIERS_AFTER,
    classify_code,
    code_section,
    is_well_formed_code,
    normalize_code,
    unique_codes,
)
from ingest.roles import assign_roles
from ingest.types import CodeMention

# The code shapes and the rules that read them live beside this module; their public names stay
# importable from here.
__all__ = [
    "CODE_SHAPE",
    "EXTRACTOR_VERSION",
    "HYPHEN_MODIFIER",
    "MODIFIERS_AFTER",
    "MODIFIER_AFTER",
    "classify_code",
    "code_section",
    "extract_codes",
    "is_well_formed_code",
    "normalize_code",
    "unique_codes",
]

# Bumped whenever the extractor or its role reading (ingest/roles.py) finds something else in
# the same text: an ingest then rewrites the snapshot even if no file changed, so that stored
# mentions and roles never lag behind the code that reads them.
# 3: issue 16 (ZIPs after state names and keys, X12 positions, labelled identifiers, URLs,
# glued codes, lists without spaces, section ranges, 99201; `names_section` on mentions).
EXTRACTOR_VERSION = 3


_SENTENCE_START_BEFORE = re.compile(r"(?:^|\n|[.!?:][\"')\]]*)[ \t]*$")
# Words that make a number a code when the text also gives it as a ZIP code.
_CODE_WORDS_BEFORE = re.compile(
    r"(?:\b(?:cpt|hcpcs|codes?|bill(?:ed|s)?|report(?:ed|s)?|coded|use[ds]?|add(?:ed|s)?|"
    r"append(?:ed)?|submit(?:ted)?)®?\s*(?:(?:the|a|an)\s+)?[:#-]?\s*|\+)$",
    re.IGNORECASE,
)
_LINE_BREAK = re.compile(r"[\n|]")
_LINE_REACH = 200
_PROSE_WORD = re.compile(r"\b[a-z]{2,}\b")


def extract_codes(text: str, known_codes: Iterable[str] | None = None) -> list[CodeMention]:
    """Every CPT/HCPCS code mention in `text`, in order, with offsets, modifiers and roles.

    `known_codes` are codes known from elsewhere (the indexed corpus); with the codes written in
    `text` itself they decide whether a footnote-fused six-digit token is read as a code.
    """
    return _extract(text, known_codes)[0]


def extract_codes_open(text: str) -> tuple[list[CodeMention], frozenset[str]]:
    """`extract_codes(text)` with no codes known from elsewhere, and what codes known from
    elsewhere could still change: the first five digits of each footnote-fused six-digit token
    that `text`'s own codes do not make a code. `extract_codes(text, known)` gives the same
    mentions for any `known` that holds none of those."""
    return _extract(text, None)


def _extract(
    text: str, known_codes: Iterable[str] | None
) -> tuple[list[CodeMention], frozenset[str]]:
    tokens = list(_TOKEN.finditer(text))
    mentions: list[CodeMention] = []
    footnotes: list[re.Match[str]] = []
    zips: set[str] = set()
    last_code_end = -1
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.end() - token.start() < 5:  # no code is shorter: most words end here
            i += 1
            continue
        section = _section_range(text, tokens, i, last_code_end)
        if section is not None:
            found, i = section
        else:
            candidate = _candidate(text, token, last_code_end, zips)
            if candidate is None:
                if _SIX_DIGITS.fullmatch(token.group()):
                    footnotes.append(token)
                i += 1
                continue
            found, i = _read_around(text, tokens, i, candidate)
        mentions.extend(found)
        last_code_end = found[-1].end
    known = set(known_codes or ()) | {m.code for m in mentions if not m.from_range}
    fused = _footnote_candidates(text, footnotes)
    mentions.extend(mention for head, mention in fused if head in known)
    mentions.sort(key=lambda m: (m.start, m.from_range, m.end))
    open_heads = frozenset(head for head, _ in fused if head not in known)
    return _without_zip_repeats(text, assign_roles(text, mentions), zips), open_heads


def _read_around(
    text: str, tokens: list[re.Match[str]], i: int, first: _Candidate
) -> tuple[list[CodeMention], int]:
    """The mentions starting at token `i`: a code with its modifiers, or a range or pair."""
    modifiers, after = _modifiers(text, first.start, first.end)
    next_i = _skip_tokens(tokens, i + 1, after)
    join = None if modifiers else _RANGE_JOIN.match(text, after) or _PAIR_JOIN.match(text, after)
    if join is not None:
        j = _skip_tokens(tokens, next_i, join.end())
        joined = _joined_code(text, tokens[j], first) if j < len(tokens) else None
        if joined is not None:
            second, is_range = joined
            end_modifiers, end = _modifiers(text, second.start, second.end)
            mentions = _joined_mentions(first, second, is_range, end_modifiers)
            return mentions, _skip_tokens(tokens, j + 1, end)
    return [_mention(first, modifiers)], next_i


def _modifiers(text: str, start: int, end: int) -> tuple[tuple[str, ...], int]:
    """Modifiers written right after a code ("-26", "-RT-59", " 59", " -RT", and in an X12
    composite "HC:62270:26"), and where they end."""
    found: list[str] = []
    composite = _after_procedure_qualifier(text, start)
    while True:
        match = _X12_MODIFIER.match(text, end) if composite else HYPHEN_MODIFIER.match(text, end)
        if match is None and not composite:
            match = _SPACED_MODIFIER.match(text, end)
            if match is not None and match.group(1) not in SPACED_MODIFIERS:
                match = None
        if match is None:
            return tuple(found), end
        found.append(match.group(1).upper())
        end = match.end()


def _footnote_candidates(text: str, tokens: list[re.Match[str]]) -> list[tuple[str, CodeMention]]:
    """Six-digit tokens like "760008." at a sentence start whose first five digits make a
    code: each with the mention it is when those five digits are a known code."""
    found = []
    for token in tokens:
        start, end = token.span()
        head = token.group()[:5]
        if (
            text[end : end + 1] == "."
            and _SENTENCE_START_BEFORE.search(text, max(0, start - 8), start)
            and classify_code(head)
        ):
            found.append((head, _mention(_Candidate(head, start, start + 5), ())))
    return found


def _without_zip_repeats(
    text: str, mentions: list[CodeMention], zips: set[str]
) -> list[CodeMention]:
    """The mentions without bare repeats of a value the text gives as a ZIP code ("Omaha,
    Nebraska 68154 ... Omaha 68154"). Bare means with nothing that makes it a code: no modifier,
    range or role, no code label or billing verb before it, no words of a sentence on its line
    and no other code on its line or the lines beside it. ZIP codes equal real codes (77002 and
    77003 are Houston ZIPs, CODING_FACTS.md §7), so a thread whose poster lives there still
    discusses 77003 in its sentences and claim lines."""
    if not zips:
        return mentions
    others = [m.start for m in mentions if m.code not in zips]

    def reads_as_code(m: CodeMention) -> bool:
        if m.modifiers or m.role != "mentioned" or m.from_range or m.names_section:
            return True
        if _CODE_WORDS_BEFORE.search(text, max(0, m.start - 24), m.start):
            return True
        start, end = _line_bounds(text, m.start, m.end)
        if _PROSE_WORD.search(text, start, m.start) or _PROSE_WORD.search(text, m.end, end):
            return True
        low, high = _line_bounds(text, start - 1, end + 1)
        first = bisect.bisect_left(others, low)
        return first < len(others) and others[first] < high

    return [m for m in mentions if m.code not in zips or reads_as_code(m)]


def _line_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The line (or table cell) around [start, end), within a bounded reach."""
    low = max(0, start - _LINE_REACH)
    for match in _LINE_BREAK.finditer(text, low, max(low, start)):
        low = match.end()
    following = _LINE_BREAK.search(text, max(end, 0), min(len(text), end + _LINE_REACH))
    return low, following.start() if following else min(len(text), end + _LINE_REACH)
