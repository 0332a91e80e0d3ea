"""The refusal rules of the code extractor: each says why a code-shaped token is not a code.

Money, percentages, decimals and grouped numbers, pieces of longer numbers (phones, NDCs,
accounts, ZIP+4), ZIP codes after a state (abbreviated or in full) or a ZIP key, street and box
numbers, labelled identifiers (account, NPI, lot, contractor, CR, section, page ...), X12
segments outside their procedure positions, URLs and DOIs, X12 diagnosis qualifiers and
labelled diagnoses. Every rule takes (text, start, end, end of the last code) and returns True
to refuse; `_REFUSALS` lists them in the order ingest/codes.py tries them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ingest.code_facts import (
    STATE_NAMES,
    X12_ADDRESS_SEGMENT,
    X12_DIAGNOSIS_QUALIFIERS,
    X12_PROCEDURE_QUALIFIER,
    zip_fits_state,
)
from ingest.code_shapes import _RANGE_JOIN, CODE_SHAPE, HYPHEN_MODIFIER, classify_code

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
