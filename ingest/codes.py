"""The one CPT/HCPCS code extractor, used for the corpus, for questions and by the CLI.

A code is a whole alphanumeric token of one of these shapes (AMA CPT; CMS HCPCS):
  Category I   five digits inside a CPT section (62270, 00635)
  Category II  four digits + F (3008F); Category III four digits + T (0213T); PLA + U (0001U)
  HCPCS II     a letter in use + four digits (J3301, G0260)
and it is refused when its neighbours show it is something else. Each refusal is a small named
rule (`_REFUSALS`): money, percentages, decimals and grouped numbers, pieces of longer numbers
(phones, NDCs, accounts, ZIP+4), ZIP codes after a state (abbreviated or in full) or a ZIP key,
street and box numbers, labelled identifiers (account, NPI, lot, contractor, CR, section, page
...), X12 segments outside their procedure positions, URLs and DOIs, X12 diagnosis qualifiers
and labelled diagnoses. A value refused as a ZIP code is a ZIP code again when the same text
writes it bare, with nothing saying it is a code.

Around a code: modifiers ("77003-26", "77003 59", "64493 -RT", "HC:62270:26") are kept on the
mention; ranges ("64490-64495", "62302 through 62305", "64490--64492") expand by the policy in
`code_facts`, and a range over a whole section ("70000-79999") names the section; a six-digit
token that starts a sentence and ends with a period ("760008.") is a code plus a footnote digit
only when its first five digits are a known code. A code may touch a unit count ("J1100x2") or,
in table text flattened by a copy, its descriptor ("20610Arthrocentesis"). Roles come from
`ingest.roles`.

The code shapes and the modifier pattern below (`CODE_SHAPE`, `MODIFIER_AFTER`, ...) are the
one definition that every other module looking for codes in text imports.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ingest.code_facts import (
    CPT_CATEGORY_I_SPAN,
    CPT_SUFFIX_CATEGORIES,
    HCPCS_LETTERS,
    RANGE_EXPAND_MAX,
    SPACED_MODIFIERS,
    STATE_NAMES,
    X12_ADDRESS_SEGMENT,
    X12_DIAGNOSIS_QUALIFIERS,
    X12_PROCEDURE_QUALIFIER,
    cpt_section,
    spans_a_hcpcs_section,
    spans_a_section,
    zip_fits_state,
)
from ingest.types import CodeMention

# Bumped whenever the extractor or its role reading (ingest/roles.py) finds something else in
# the same text: an ingest then rewrites the snapshot even if no file changed, so that stored
# mentions and roles never lag behind the code that reads them.
# 3: issue 16 (ZIPs after state names and keys, X12 positions, labelled identifiers, URLs,
# glued codes, lists without spaces, section ranges, 99201; `names_section` on mentions).
EXTRACTOR_VERSION = 3

# --- code shapes: the one definition, imported by roles, chunk, pdf and glossary ---------
# A code as written (AMA CPT; CMS HCPCS): five digits (Category I), four digits and F, T or U
# (Category II, III, PLA), or a letter and four digits (HCPCS Level II); letters in either case.
# Whether a token of this shape is a code is `classify_code`'s and the refusals' business.
CODE_SHAPE = r"(?:\d{5}|\d{4}[FTUftu]|[A-Za-z]\d{4})"
# A modifier written after a code: a hyphen (after at most one space, "64493 -RT") and exactly
# two characters (CODING_FACTS.md §2), not followed by more of a word or a longer number ("-26",
# not "-Injection" or "-12-345"); a unit count may touch it ("-50x2").
MODIFIER_AFTER = r"[ \t]?[-–]([A-Za-z0-9]{2})(?!(?![xX]\d)[A-Za-z0-9]|[-–/]\d{3})"
HYPHEN_MODIFIER = re.compile(MODIFIER_AFTER)
# Every modifier right after a code, to skip them: "-26-59", " -RT".
MODIFIERS_AFTER = re.compile(rf"(?:{MODIFIER_AFTER})*")

_TOKEN = re.compile(r"[A-Za-z0-9]+")
_FIVE_DIGITS = re.compile(r"\d{5}")
_SUFFIXED = re.compile(r"\d{4}[FTUftu]")
_HCPCS = re.compile(r"[A-Za-z]\d{4}")
_SIX_DIGITS = re.compile(r"\d{6}")
# A code touching what follows it in one token: a unit count ("J1100x2", "64490x3"), or a
# capitalised word where a table's cells were flattened together ("J0585Injection,
# onabotulinumtoxinA", "20610Arthrocentesis"): a descriptor begins with a capital and goes on
# in lower case, which no identifier suffix (all capitals or digits) does.
_GLUED = re.compile(rf"({CODE_SHAPE})(?:[xX]\d{{1,4}}|[A-Z][a-z]{{2,}}[A-Za-z]*)")

_SPACED_MODIFIER = re.compile(r"[ \t]+([A-Z0-9]{2})(?![A-Za-z0-9%]|[.,]\d|:\d)")
# An X12 composite's modifiers: "HC:62270:26:59".
_X12_MODIFIER = re.compile(r"[:>]([A-Za-z0-9]{2})(?=[:>*~\s]|$)")
_RANGE_JOIN = re.compile(r"[ \t]*(?:--|[-–—]|\bthrough\b|\bthru\b|\bto\b)[ \t]*", re.IGNORECASE)
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
# A label that says what the number after it is (CODING_FACTS.md §5, §7): accounts, claims and
# trace numbers; who issued a rule (contractor and jurisdiction numbers, change requests,
# transmittals); where it is written (sections, statutes, pages, versions and revisions).
_LABEL_BEFORE = re.compile(
    r"\b(?:account|acct|icn|dcn|tcn|trace|npi|tin|ein|lot|invoice|inv|check|chk|mrn|policy|"
    r"phone|fax|tel)(?:\s*(?:#|no\.?|number|id))?\s*[#:.]?\s*$"
    # A word that ends a sentence ("... the single-day version. 62263") labels nothing.
    # These also label a list of numbers: "contractor numbers 12501, 12502 and 12302".
    r"|(?:\b(?:contractors?|jurisdictions?|carriers?|localit(?:y|ies)|change\s+requests?|"
    r"transmittals?|sections?|sec\.|statutes?|pages?|pg\.|pp?\.|versions?|ver\.|rev\.|"
    r"revisions?)|§+)(?:\s*(?:#|no\.?|nos\.?|numbers?|num\.?|ids?))?\s*[#:]?\s*"
    r"(?:\d{5}\s*(?:,|;|/|\band\b|\bor\b)\s*){0,6}$"
    r"|\b(?:member|claim|ref(?:erence)?|order|mac|contract)\s*(?:#|no\.?|number|num\.?|id)"
    r"\s*[#:.]?\s*$",
    re.IGNORECASE,
)
# Labels whose number may start a range of codes: "Anesthesia section 00100-01999" is a section
# of the code set, "Section 20610 of the manual" a section of a manual.
_SECTION_LABEL = re.compile(r"(?:\bsec(?:tions?|\.)|§+)\s*$", re.IGNORECASE)
# CMS change requests: "CR 12345", "CR# 12345", "(CR) 12345" (capitals only; "cr" is no label).
_CHANGE_REQUEST_BEFORE = re.compile(r"(?:\bCR|\(CR\))\s*#?\s*$")
_ZIP_LABEL_BEFORE = re.compile(r"\b(?:zip(?:\s*code)?|postal\s+code)\s*[#:.]?\s*$", re.IGNORECASE)
# A ZIP as the value of a key in data or code: "zip": "64105", postal_code='76001', ZIP=68154.
_ZIP_KEY_BEFORE = re.compile(
    r"(?:zip|postal)[A-Za-z0-9_]*[\"']?\s*(?:=>|[:=>])\s*[\"']?$", re.IGNORECASE
)
_X12_QUALIFIER_BEFORE = re.compile(r"\b([A-Z]{2,3}):$")
_X12_SEGMENT_START = re.compile(r"[ \t]*([A-Z][A-Z0-9]{1,2})\*")
_X12_REACH = 400  # the longest segments (ISA is 106 characters) end well within this
_DIAGNOSIS_BEFORE = re.compile(
    r"\b(?:dx|diagnos[a-z]*|icd-?10(?:-?cm)?)\s*[#:]?\s*"
    r"(?:[A-Za-z]\d[0-9A-Za-z.]{1,6}\s*(?:,|;|\band\b|\bor\b)?\s*)*$",
    re.IGNORECASE,
)
_SENTENCE_START_BEFORE = re.compile(r"(?:^|\n|[.!?:][\"')\]]*)[ \t]*$")
_URL_WORD = re.compile(r"://|\bwww\.|\bdoi\b|\b10\.\d{4,9}/", re.IGNORECASE)
_CITATION_BEFORE = re.compile(r"\d(?:\([A-Za-z0-9-]{1,6}\))?:$")
_FILE_AFTER = re.compile(r"\.(?:pdf|html?|aspx?|php|docx?|xlsx?|txt|csv)\b", re.IGNORECASE)
# "CPT-64483", "HCPCS-J1040": a hyphen after a code label joins the label, not a longer number.
_CODE_LABEL_HYPHEN = re.compile(r"\b(?:cpt|hcpcs|codes?)®?[-–]$", re.IGNORECASE)
# "64405-Injection, anesthetic agent", "77012-Computed tomography guidance": a hyphen and a word
# introduce the code's descriptor.
_DESCRIPTOR_HYPHEN = re.compile(r"[-–][A-Za-z][a-z]{2,}(?![A-Za-z0-9])")
_CODE_AT = re.compile(CODE_SHAPE)
_LIST_JOIN_BEFORE = re.compile(r"(?:[,;/]|\band|\bor)\s*$", re.IGNORECASE)
_LISTED_NEXT = re.compile(rf",{CODE_SHAPE}(?![A-Za-z0-9])")
# Words that make a number a code when the text also gives it as a ZIP code.
_CODE_WORDS_BEFORE = re.compile(
    r"(?:\b(?:cpt|hcpcs|codes?|bill(?:ed|s)?|report(?:ed|s)?|coded|use[ds]?|add(?:ed|s)?|"
    r"append(?:ed)?|submit(?:ted)?)®?\s*(?:(?:the|a|an)\s+)?[:#-]?\s*|\+)$",
    re.IGNORECASE,
)
_LINE_BREAK = re.compile(r"[\n|]")
_LINE_REACH = 200
_PROSE_WORD = re.compile(r"\b[a-z]{2,}\b")


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
    # Imported here: ingest.roles imports this module's code shapes.
    from ingest.roles import assign_roles

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
    mentions.extend(_footnote_codes(text, footnotes, known))
    mentions.sort(key=lambda m: (m.start, m.from_range, m.end))
    return _without_zip_repeats(text, assign_roles(text, mentions), zips)


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


# --- refusal rules: each says why a code-shaped token is not a code here -----------------


def _is_money(text: str, start: int, end: int, last: int) -> bool:
    return text[max(0, start - 2) : start].rstrip().endswith("$")


def _is_percentage(text: str, start: int, end: int, last: int) -> bool:
    return bool(re.match(r"\s?(?:%|percent\b)", text[end : end + 9], re.IGNORECASE))


def _is_decimal_or_grouped(text: str, start: int, end: int, last: int) -> bool:
    """Part of 1,204.50 or 62.270: a digit group joined by a point or comma. A comma between
    code-shaped tokens ("64490,64491,64492") is a list written without spaces: the groups after
    a thousands comma have exactly three digits."""
    before, after = text[max(0, start - 2) : start], text[end : end + 2]
    if re.fullmatch(r"\d\.", before) or re.fullmatch(r"\.\d", after):
        return True
    if re.fullmatch(r"\d,", before) and last != start - 1:
        return True
    return bool(re.fullmatch(r",\d", after)) and not _LISTED_NEXT.match(text, end)


def _in_longer_number(text: str, start: int, end: int, last: int) -> bool:
    """A piece of a hyphen- or slash-joined number (phone, NDC, account, ZIP+4, date)."""
    before = text[max(0, start - 2) : start]
    if (
        re.fullmatch(r"[A-Za-z0-9][-–/]", before)
        and last != start - 1
        and not _CODE_LABEL_HYPHEN.search(text, max(0, start - 8), start)
    ):
        return True
    if _DESCRIPTOR_HYPHEN.match(text, end) or HYPHEN_MODIFIER.match(text, end):
        return False
    after = re.match(r"[-–/]([A-Za-z0-9]+)", text[end : end + 12])
    return (
        bool(after) and len(after.group(1)) != 2 and classify_code(after.group(1).upper()) is None
    )


def _is_zip_after_state(text: str, start: int, end: int, last: int) -> bool:
    match = _STATE_BEFORE.search(text, max(0, start - 12), start)
    number = text[start:end]
    return bool(match) and number.isdigit() and zip_fits_state(match.group(1), number)


def _is_zip_after_state_name(text: str, start: int, end: int, last: int) -> bool:
    """ "Boise, Idaho 83702", "Omaha, Nebraska\n68154": a ZIP code after a city and a state
    written in full (USPS Publication 28), when its first digit fits the state."""
    if text[start - 1 : start] not in (" ", "\t", "\n", ",") or not text[start:end].isdigit():
        return False
    head = text[max(0, start - 40) : start].rstrip(" \t\n").rstrip(",.")
    # The state is all that stands after the city's comma or at a line start.
    state = STATE_NAMES.get(" ".join(re.split(r"[,\n]", head)[-1].split()))
    return state is not None and zip_fits_state(state, text[start:end])


def _is_zip_value_of_a_key(text: str, start: int, end: int, last: int) -> bool:
    window = text[max(0, start - 40) : start]
    lowered = window.lower()
    if "zip" not in lowered and "postal" not in lowered:
        return False
    return bool(_ZIP_KEY_BEFORE.search(window) or _ZIP_LABEL_BEFORE.search(window))


def _x12_segment(text: str, start: int) -> str | None:
    """The id of the X12 segment ("SV1", "N4", "ISA") that offset `start` is in, or None."""
    low = max(0, start - _X12_REACH)
    cut = max(text.rfind("~", low, start), text.rfind("\n", low, start))
    if cut < 0 and low > 0:
        return None
    match = _X12_SEGMENT_START.match(text, cut + 1, start)
    return match.group(1) if match else None


def _after_procedure_qualifier(text: str, start: int) -> bool:
    return text[max(0, start - 3) : start - 1] == X12_PROCEDURE_QUALIFIER and text[
        start - 1 : start
    ] in (":", ">")


def _is_x12_address(text: str, start: int, end: int, last: int) -> bool:
    return _x12_segment(text, start) == X12_ADDRESS_SEGMENT


def _in_x12_segment(text: str, start: int, end: int, last: int) -> bool:
    """Inside an X12 segment only the procedure composites ("SV1*HC:62270") hold codes."""
    return _x12_segment(text, start) is not None and not _after_procedure_qualifier(text, start)


def _in_url_or_doi(text: str, start: int, end: int, last: int) -> bool:
    """Part of a web address, a DOI or a file name ("https://doi.org/10.1016/j.jpain.A4550",
    "L35936.pdf"): an identifier, not a code the text states."""
    if re.fullmatch(r"[A-Za-z]\.", text[max(0, start - 2) : start]) or _FILE_AFTER.match(text, end):
        return True
    if start == 0 or text[start - 1].isspace():
        return False
    low = max(0, start - 200)
    word_start = max(text.rfind(c, low, start) for c in " \t\n") + 1
    ends = [i for i in (text.find(c, end, end + 200) for c in " \t\n") if i >= 0]
    word = text[max(word_start, low) : min(ends, default=min(len(text), end + 200))]
    return bool(_URL_WORD.search(word))


def _is_citation_page(text: str, start: int, end: int, last: int) -> bool:
    """Pages of a journal citation, glued to its volume and issue ("Pain Med. 2019;20(4):
    64405-64410" written "20(4):64405-64410"), or any number glued to a digit and a colon."""
    return bool(_CITATION_BEFORE.search(text, max(0, start - 12), start))


def _is_address_number(text: str, start: int, end: int, last: int) -> bool:
    return bool(
        _BOX_BEFORE.search(text, max(0, start - 16), start)
        or _STREET_AFTER.match(text, end, min(len(text), end + 60))
    )


def _after_identifier_label(text: str, start: int, end: int, last: int) -> bool:
    low = max(0, start - 32)
    if _CHANGE_REQUEST_BEFORE.search(text, low, start):
        return True
    # A number that follows a list joiner may end a labelled list: look further back then.
    if _LIST_JOIN_BEFORE.search(text, max(0, start - 6), start):
        low = max(0, start - 80)
    if not _LABEL_BEFORE.search(text, low, start):
        return False
    # "Anesthesia section 00100-01999" names a section of the code set by its codes.
    join = _RANGE_JOIN.match(text, end)
    starts_range = join is not None and _CODE_AT.match(text, join.end())
    return not (starts_range and _SECTION_LABEL.search(text, low, start))


def _is_x12_diagnosis(text: str, start: int, end: int, last: int) -> bool:
    match = _X12_QUALIFIER_BEFORE.search(text, max(0, start - 4), start)
    return bool(match) and match.group(1) in X12_DIAGNOSIS_QUALIFIERS


def _is_labelled_diagnosis(text: str, start: int, end: int, last: int) -> bool:
    """A letter + 4 digits in a list after "Dx"/"diagnosis"/"ICD-10" is a dotless diagnosis."""
    if text[start].isdigit():
        return False
    return bool(_DIAGNOSIS_BEFORE.search(text, max(0, start - 80), start))


_Rule = Callable[[str, int, int, int], bool]
# The ZIP code rules come first: a value they refuse is remembered as a ZIP code of the text.
_ZIP_RULES: frozenset[_Rule] = frozenset(
    {_is_zip_after_state, _is_zip_after_state_name, _is_zip_value_of_a_key, _is_x12_address}
)
_REFUSALS: tuple[_Rule, ...] = (
    _is_zip_after_state,
    _is_zip_after_state_name,
    _is_zip_value_of_a_key,
    _is_x12_address,
    _is_money,
    _is_percentage,
    _is_decimal_or_grouped,
    _in_longer_number,
    _in_x12_segment,
    _in_url_or_doi,
    _is_citation_page,
    _is_address_number,
    _after_identifier_label,
    _is_x12_diagnosis,
    _is_labelled_diagnosis,
)
