"""Code candidates and what joins them: ranges, pairs and ranges over a whole section.

A candidate is a code-shaped token no refusal rule (ingest/code_refusals.py) turned down;
"A-B" and "A through B" are ranges, expanded by the policy in `code_facts`, "A/B" a pair, and
a range over a whole section ("70000-79999") names the section.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.code_facts import (
    CPT_CATEGORY_I_SPAN,
    RANGE_EXPAND_MAX,
    spans_a_hcpcs_section,
    spans_a_section,
)
from ingest.code_refusals import _REFUSALS, _ZIP_RULES, _in_longer_number
from ingest.code_shapes import _FIVE_DIGITS, _GLUED, _PAIR_JOIN, _RANGE_JOIN, classify_code
from ingest.types import CodeMention


@dataclass(frozen=True)
class _Candidate:
    code: str
    start: int
    end: int


def _candidate(
    text: str, token: re.Match[str], last_code_end: int, zips: set[str] | None = None
) -> _Candidate | None:
    """The code a token is or begins ("J1100x2", "20610Arthrocentesis"), unless a rule refuses
    it; a value refused as a ZIP code is added to `zips`."""
    code = token.group().upper()
    start, end = token.span()
    if classify_code(code) is None:
        glued = _GLUED.fullmatch(token.group())
        if glued is None or classify_code(glued.group(1).upper()) is None:
            return None
        code, end = glued.group(1).upper(), start + len(glued.group(1))
    rule = next((r for r in _REFUSALS if r(text, start, end, last_code_end)), None)
    if rule is None:
        return _Candidate(code, start, end)
    if zips is not None and rule in _ZIP_RULES:
        zips.add(code)
    return None


def _skip_tokens(tokens: list[re.Match[str]], i: int, position: int) -> int:
    while i < len(tokens) and tokens[i].start() < position:
        i += 1
    return i


def _joined_code(
    text: str, token: re.Match[str], first: _Candidate
) -> tuple[_Candidate, bool] | None:
    """The second code of "A-B", "A through B" (a range) or "A/B" (a pair), if `token` is one."""
    between = text[first.end : token.start()]
    is_range = bool(_RANGE_JOIN.fullmatch(between))
    if not (is_range or _PAIR_JOIN.fullmatch(between)):
        return None
    second = _candidate(text, token, first.end)
    if second is None or classify_code(second.code) != classify_code(first.code):
        return None
    return second, is_range


def _joined_mentions(
    first: _Candidate, second: _Candidate, is_range: bool, end_modifiers: tuple[str, ...]
) -> list[CodeMention]:
    if is_range and first.code[:1].isalpha() and spans_a_hcpcs_section(first.code, second.code):
        return [_mention(c, (), names_section=True) for c in (first, second)]
    mentions = [_mention(first, ())]
    if is_range:
        span = (first.start, second.end)
        for code in _inside_range(first.code, second.code):
            mentions.append(_mention(_Candidate(code, *span), (), from_range=True))
    mentions.append(_mention(second, end_modifiers))
    return mentions


def _inside_range(low: str, high: str) -> list[str]:
    """The codes strictly between the ends of a range that the policy expands, else none."""
    digits_low, digits_high = re.sub(r"\D", "", low), re.sub(r"\D", "", high)
    prefix, suffix = re.sub(r"\d.*", "", low), re.sub(r".*\d", "", low)
    same_family = low[:3] == high[:3] and low[-1:].isdigit() == high[-1:].isdigit()
    count = int(digits_high) - int(digits_low) + 1
    if not same_family or not 2 < count <= RANGE_EXPAND_MAX:
        return []
    width = len(digits_low)
    codes = [
        f"{prefix}{number:0{width}d}{suffix}"
        for number in range(int(digits_low) + 1, int(digits_high))
    ]
    return [c for c in codes if classify_code(c) is not None]


def _section_range(
    text: str, tokens: list[re.Match[str]], i: int, last_code_end: int
) -> tuple[list[CodeMention], int] | None:
    """A range over a whole section of the code set at token `i` ("CPT codes 70000 - 79999",
    "Anesthesia 00100-01999"): it names the section (CODING_FACTS.md §2), so both ends are
    reported as written, even a round end that is no code (70000), marked `names_section`."""
    if i + 1 >= len(tokens) or not _FIVE_DIGITS.fullmatch(tokens[i].group()):
        return None
    join = _RANGE_JOIN.match(text, tokens[i].end())
    j = _skip_tokens(tokens, i + 1, join.end()) if join else len(tokens)
    if join is None or j >= len(tokens) or join.end() != tokens[j].start():
        return None
    low, high = tokens[i], tokens[j]
    if not (_in_category_i_span(low.group()) and _in_category_i_span(high.group())):
        return None
    if not spans_a_section(int(low.group()), int(high.group())):
        return None
    start, end = low.span()
    # The low end's own hyphen joins the range, so only the rules other than the longer-number
    # one apply to it; the high end gets them all.
    before = text[max(0, start - 2) : start]
    if re.fullmatch(r"[A-Za-z0-9][-–/]", before) and last_code_end != start - 1:
        return None
    if any(r(text, start, end, last_code_end) for r in _REFUSALS if r is not _in_longer_number):
        return None
    if any(r(text, *high.span(), end) for r in _REFUSALS):
        return None
    ends = [_Candidate(t.group(), *t.span()) for t in (low, high)]
    return [_mention(c, (), names_section=True) for c in ends], j + 1


def _in_category_i_span(number: str) -> bool:
    return bool(_FIVE_DIGITS.fullmatch(number)) and (
        CPT_CATEGORY_I_SPAN[0] <= int(number) <= CPT_CATEGORY_I_SPAN[1]
    )


def _mention(
    candidate: _Candidate,
    modifiers: tuple[str, ...],
    from_range: bool = False,
    names_section: bool = False,
) -> CodeMention:
    kind = classify_code(candidate.code) or (("CPT", "I") if names_section else None)
    assert kind is not None
    return CodeMention(
        code=candidate.code,
        system=kind[0],
        category=kind[1],
        start=candidate.start,
        end=candidate.end,
        modifiers=modifiers,
        from_range=from_range,
        names_section=names_section,
    )
