"""What a CPT/HCPCS code looks like in text: the code shapes, modifiers and joins.

The code shapes and the modifier pattern (`CODE_SHAPE`, `MODIFIER_AFTER`, ...) are the one
definition that every module looking for codes in text imports (ingest/codes.py, roles, chunk,
pdf and glossary); `classify_code` says which system and category a well-formed code belongs to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ingest.code_facts import CPT_SUFFIX_CATEGORIES, HCPCS_LETTERS, cpt_section
from ingest.types import CodeMention

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
