"""The one CPT/HCPCS code extractor, used for the corpus, for questions and by the CLI.

A code is a whole alphanumeric token of one of these shapes (AMA CPT; CMS HCPCS):
  Category I   five digits inside a CPT section (62270, 00635)
  Category II  four digits + F (3008F); Category III four digits + T (0213T); PLA + U (0001U)
  HCPCS II     a letter in use + four digits (J3301, G0260)
and it is refused when its neighbours show it is something else. Each refusal is a small named
rule (`_REFUSALS`): money, percentages, decimals and grouped numbers, pieces of longer numbers
(phones, NDCs, accounts, ZIP+4), ZIP codes after a state, street and box numbers, labelled
identifiers (account, NPI, lot ...), X12 diagnosis qualifiers and labelled diagnoses.

Around a code: modifiers ("77003-26", "77003 59") are kept on the mention; ranges
("64490-64495", "62302 through 62305") expand by the policy in `code_facts`; a six-digit token
that starts a sentence and ends with a period ("760008.") is a code plus a footnote digit only
when its first five digits are a known code. Roles come from `ingest.roles`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ingest.code_facts import (
    CPT_SUFFIX_CATEGORIES,
    HCPCS_LETTERS,
    RANGE_EXPAND_MAX,
    SPACED_MODIFIERS,
    X12_DIAGNOSIS_QUALIFIERS,
    cpt_section,
    zip_fits_state,
)
from ingest.roles import assign_roles
from ingest.types import CodeMention

# Bumped whenever the extractor or its role reading (ingest/roles.py) finds something else in
# the same text: an ingest then rewrites the snapshot even if no file changed, so that stored
# mentions and roles never lag behind the code that reads them.
EXTRACTOR_VERSION = 2

_TOKEN = re.compile(r"[A-Za-z0-9]+")
_FIVE_DIGITS = re.compile(r"\d{5}")
_SUFFIXED = re.compile(r"\d{4}[FTUftu]")
_HCPCS = re.compile(r"[A-Za-z]\d{4}")
_SIX_DIGITS = re.compile(r"\d{6}")

_HYPHEN_MODIFIER = re.compile(r"[-–]([A-Za-z0-9]{2})(?![A-Za-z0-9]|[-–/]\d{3})")
_SPACED_MODIFIER = re.compile(r"[ \t]+([A-Z0-9]{2})(?![A-Za-z0-9%]|[.,]\d|:\d)")
_RANGE_JOIN = re.compile(r"[ \t]*(?:[-–—]|\bthrough\b|\bthru\b|\bto\b)[ \t]*", re.IGNORECASE)
_PAIR_JOIN = re.compile(r"[ \t]*/[ \t]*")

_STATE_BEFORE = re.compile(r"(?:^|[\s,])([A-Z]{2})\.?,?[ \t]*\n?[ \t]*$")
_BOX_BEFORE = re.compile(
    r"(?:\bP\.?\s*O\.?\s*)?\b(?:box|suite|ste\.?|apt\.?|unit|room|rm\.?|bldg\.?)\s*#?\s*$",
    re.IGNORECASE,
)
_STREET_AFTER = re.compile(
    r"\s+(?:[NSEW]\.?\s+)?(?:[A-Z][a-z]+\s+){1,3}(?:St|Street|Ave|Avenue|Rd|Road|Blvd|"
    r"Boulevard|Pkwy|Parkway|Dr|Drive|Ln|Lane|Way|Ct|Court|Hwy|Highway|Pl|Place|Cir|Circle|"
    r"Ter|Terrace|Trl|Trail|Pike|Loop|Fwy|Freeway|Sq|Square)\b"
)
_LABEL_BEFORE = re.compile(
    r"\b(?:account|acct|icn|dcn|tcn|trace|npi|tin|ein|lot|invoice|inv|check|chk|mrn|"
    r"member\s+id|policy|claim\s*(?:#|no\.?|number)|ref(?:erence)?\s*(?:#|no\.?|number)|"
    r"order\s*(?:#|no\.?|number)|phone|fax|tel|zip(?:\s*code)?)\s*[#:.]?\s*$",
    re.IGNORECASE,
)
_X12_QUALIFIER_BEFORE = re.compile(r"\b([A-Z]{2,3}):$")
_DIAGNOSIS_BEFORE = re.compile(
    r"\b(?:dx|diagnos[a-z]*|icd-?10(?:-?cm)?)\s*[#:]?\s*"
    r"(?:[A-Za-z]\d[0-9A-Za-z.]{1,6}\s*(?:,|;|\band\b|\bor\b)?\s*)*$",
    re.IGNORECASE,
)
_SENTENCE_START_BEFORE = re.compile(r"(?:^|\n|[.!?:][\"')\]]*)[ \t]*$")


@dataclass(frozen=True)
class _Candidate:
    code: str
    start: int
    end: int


def classify_code(code: str) -> tuple[str, str] | None:
    """(system, category) of a well-formed code, e.g. ("CPT", "I"); None if it is not one."""
    if _FIVE_DIGITS.fullmatch(code):
        return ("CPT", "I") if cpt_section(int(code)) else None
    if _SUFFIXED.fullmatch(code) and code[-1] in CPT_SUFFIX_CATEGORIES:
        return "CPT", CPT_SUFFIX_CATEGORIES[code[-1]]
    if _HCPCS.fullmatch(code) and code[0] in HCPCS_LETTERS:
        return "HCPCS", "Level II"
    return None


def normalize_code(text: str) -> str:
    """A code as users type it ("cpt 77003", "+64494", " j3301 ") in its canonical form."""
    value = text.strip().upper()
    value = re.sub(r"^(?:CPT|HCPCS)(?:®|\(R\))?(?:\s+CODE)?\s*", "", value)
    return value.lstrip("+").strip()


def is_well_formed_code(text: str) -> bool:
    """True when `text` (after `normalize_code`) has the shape of a CPT or HCPCS code."""
    return classify_code(normalize_code(text)) is not None


def code_section(code: str) -> str | None:
    """The CPT section of a Category I code ("Radiology" for 77002), else None."""
    return cpt_section(int(code)) if _FIVE_DIGITS.fullmatch(code) and classify_code(code) else None


def unique_codes(mentions: Iterable[CodeMention]) -> list[str]:
    """Distinct codes of some mentions, in order of first appearance."""
    return list(dict.fromkeys(m.code for m in mentions))


def extract_codes(text: str, known_codes: Iterable[str] | None = None) -> list[CodeMention]:
    """Every CPT/HCPCS code mention in `text`, in order, with offsets, modifiers and roles.

    `known_codes` are codes known from elsewhere (the indexed corpus); with the codes written in
    `text` itself they decide whether a footnote-fused six-digit token is read as a code.
    """
    tokens = list(_TOKEN.finditer(text))
    mentions: list[CodeMention] = []
    footnotes: list[re.Match[str]] = []
    last_code_end = -1
    i = 0
    while i < len(tokens):
        token = tokens[i]
        candidate = _candidate(text, token, last_code_end)
        if candidate is None:
            if _SIX_DIGITS.fullmatch(token.group()):
                footnotes.append(token)
            i += 1
            continue
        found, i = _read_around(text, tokens, i, candidate)
        mentions.extend(found)
        last_code_end = found[-1].end
    known = set(known_codes or ()) | {m.code for m in mentions if not m.from_range}
    mentions.extend(_footnote_codes(text, footnotes, known))
    mentions.sort(key=lambda m: (m.start, m.from_range, m.end))
    return assign_roles(text, mentions)


def _candidate(text: str, token: re.Match[str], last_code_end: int) -> _Candidate | None:
    code = token.group().upper()
    if classify_code(code) is None:
        return None
    start, end = token.span()
    if any(rule(text, start, end, last_code_end) for rule in _REFUSALS):
        return None
    return _Candidate(code, start, end)


def _read_around(
    text: str, tokens: list[re.Match[str]], i: int, first: _Candidate
) -> tuple[list[CodeMention], int]:
    """The mentions starting at token `i`: a code with its modifiers, or a range or pair."""
    modifiers, after = _modifiers(text, first.end)
    next_i = _skip_tokens(tokens, i + 1, after)
    join = None if modifiers else _RANGE_JOIN.match(text, after) or _PAIR_JOIN.match(text, after)
    if join is not None:
        j = _skip_tokens(tokens, next_i, join.end())
        joined = _joined_code(text, tokens[j], first) if j < len(tokens) else None
        if joined is not None:
            second, is_range = joined
            end_modifiers, end = _modifiers(text, second.end)
            mentions = _joined_mentions(first, second, is_range, end_modifiers)
            return mentions, _skip_tokens(tokens, j + 1, end)
    return [_mention(first, modifiers)], next_i


def _modifiers(text: str, end: int) -> tuple[tuple[str, ...], int]:
    """Modifiers written right after a code ("-26", "-RT-59", " 59"), and where they end."""
    found: list[str] = []
    while True:
        match = _HYPHEN_MODIFIER.match(text, end)
        if match is None:
            match = _SPACED_MODIFIER.match(text, end)
            if match is None or match.group(1) not in SPACED_MODIFIERS:
                return tuple(found), end
        found.append(match.group(1).upper())
        end = match.end()


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


def _mention(
    candidate: _Candidate, modifiers: tuple[str, ...], from_range: bool = False
) -> CodeMention:
    kind = classify_code(candidate.code)
    assert kind is not None
    return CodeMention(
        code=candidate.code,
        system=kind[0],
        category=kind[1],
        start=candidate.start,
        end=candidate.end,
        modifiers=modifiers,
        from_range=from_range,
    )


def _footnote_codes(text: str, tokens: list[re.Match[str]], known: set[str]) -> list[CodeMention]:
    """Six-digit tokens like "760008." at a sentence start whose first five digits are known."""
    found = []
    for token in tokens:
        start, end = token.span()
        head = token.group()[:5]
        if (
            text[end : end + 1] == "."
            and head in known
            and _SENTENCE_START_BEFORE.search(text, max(0, start - 8), start)
            and classify_code(head)
        ):
            found.append(_mention(_Candidate(head, start, start + 5), ()))
    return found


# --- refusal rules: each says why a code-shaped token is not a code here -----------------


def _is_money(text: str, start: int, end: int, last: int) -> bool:
    return text[max(0, start - 2) : start].rstrip().endswith("$")


def _is_percentage(text: str, start: int, end: int, last: int) -> bool:
    return bool(re.match(r"\s?(?:%|percent\b)", text[end : end + 9], re.IGNORECASE))


def _is_decimal_or_grouped(text: str, start: int, end: int, last: int) -> bool:
    """Part of 1,204.50 or 62.270: a digit group joined by a point or comma."""
    before, after = text[max(0, start - 2) : start], text[end : end + 2]
    return bool(re.fullmatch(r"\d[.,]", before) or re.fullmatch(r"[.,]\d", after))


def _in_longer_number(text: str, start: int, end: int, last: int) -> bool:
    """A piece of a hyphen- or slash-joined number (phone, NDC, account, ZIP+4, date)."""
    before = text[max(0, start - 2) : start]
    if re.fullmatch(r"[A-Za-z0-9][-–/]", before) and last != start - 1:
        return True
    after = re.match(r"[-–/]([A-Za-z0-9]+)", text[end : end + 12])
    return (
        bool(after) and len(after.group(1)) != 2 and classify_code(after.group(1).upper()) is None
    )


def _is_zip_after_state(text: str, start: int, end: int, last: int) -> bool:
    match = _STATE_BEFORE.search(text, max(0, start - 12), start)
    number = text[start:end]
    return bool(match) and number.isdigit() and zip_fits_state(match.group(1), number)


def _is_address_number(text: str, start: int, end: int, last: int) -> bool:
    return bool(
        _BOX_BEFORE.search(text, max(0, start - 16), start)
        or _STREET_AFTER.match(text, end, min(len(text), end + 60))
    )


def _after_identifier_label(text: str, start: int, end: int, last: int) -> bool:
    return bool(_LABEL_BEFORE.search(text, max(0, start - 24), start))


def _is_x12_diagnosis(text: str, start: int, end: int, last: int) -> bool:
    match = _X12_QUALIFIER_BEFORE.search(text, max(0, start - 4), start)
    return bool(match) and match.group(1) in X12_DIAGNOSIS_QUALIFIERS


def _is_labelled_diagnosis(text: str, start: int, end: int, last: int) -> bool:
    """A letter + 4 digits in a list after "Dx"/"diagnosis"/"ICD-10" is a dotless diagnosis."""
    if text[start].isdigit():
        return False
    return bool(_DIAGNOSIS_BEFORE.search(text, max(0, start - 80), start))


_REFUSALS: tuple[Callable[[str, int, int, int], bool], ...] = (
    _is_money,
    _is_percentage,
    _is_decimal_or_grouped,
    _in_longer_number,
    _is_zip_after_state,
    _is_address_number,
    _after_identifier_label,
    _is_x12_diagnosis,
    _is_labelled_diagnosis,
)
