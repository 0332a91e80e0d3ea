"""What a code mention is doing where the text says so: defined, excluded, bundled (the text
says it is part of another service, not reported separately), add-on, primary, deleted, or just
mentioned.

Each role is a small pattern over the words right around the mention, read across a list of
codes ("other than 71023 or 71034" excludes both). When nothing says more, a mention is
"mentioned". The answer ranking (index/answer.py) weighs codes by these roles.
"""

from __future__ import annotations

import re
from dataclasses import replace

from ingest.code_shapes import CODE_SHAPE, MODIFIERS_AFTER
from ingest.types import CodeMention

# A run of codes joined by commas, slashes, "or", "and": the list a mention sits in.
_CODE = rf"\+?{CODE_SHAPE}{MODIFIERS_AFTER.pattern}"
_JOINER = r"(?:\s*(?:,|/|\bor\b|\band\b|\bnor\b|&)\s*|\s+)"
_LIST_BEFORE = re.compile(rf"(?:{_CODE}{_JOINER})+$")
_LIST_AFTER = re.compile(rf"^(?:{_JOINER}{_CODE})+")
# A clause ends at ; or a line break, or a sentence end (. ! ? then a capital, "(" or a digit).
_CLAUSE_BREAK = re.compile(r"[;\n]|[.!?](?=\s+[A-Z(\d\"“])")

# "76003 became 77002", "62311 (lumbar, single) was replaced by 62322": the old code of a
# renumbering is a deleted one (CODING_FACTS.md §4), whatever replaced it.
_DELETED_AFTER = re.compile(
    r"^\W{0,3}(?:\([^()]{0,80}\)\s*)?(?:(?:was|were|is|are|has been|have been|now|since|code)"
    r"\s+)?(?:deleted|retired|became|replaced\s+by)\b",
    re.IGNORECASE,
)
_DELETED_BEFORE = re.compile(r"\bdeleted\s+(?:cpt®?\s+)?(?:codes?\s+)?$", re.IGNORECASE)
_EXCLUDED_BEFORE = re.compile(
    r"\b(?:other\s+than|except(?:\s+for)?|excluding|exclusive\s+of|instead\s+of|rather\s+than|"
    r"not|never|nor|(?:do|does)\s+not\s+(?:report|use|bill|code|add|append|recognize|accept)|"
    r"(?:don't|doesn't)\s+(?:report|use|bill|code|add|append|recognize|accept)|in\s+place\s+of)"
    r"\s+(?:the\s+)?(?:(?:spinal|separate|cpt®?)\s+)?(?:codes?\s+)?$",
    re.IGNORECASE,
)
# The text judges the code wrong for the case: "the answer was that 64505 is not appropriate",
# "77003 is the wrong code", "62328 should not be used".
_EXCLUDED_AFTER = re.compile(
    r"^\W{0,3}(?:(?:is|are)\s+(?:not\s+(?:appropriate|correct|right|valid|applicable|"
    r"the\s+(?:right|correct|proper|appropriate)\s+code)|(?:the\s+)?(?:wrong|incorrect|"
    r"inappropriate|invalid)\b)|(?:should|must)\s+not\s+be\s+used)",
    re.IGNORECASE,
)
# The code is the subject of a clause saying it is not billed on its own (NCCI "integral"
# services, CMS NCCI Policy Manual ch. I; CODING_FACTS.md §3: 76000 is integral to most
# spinal and injection procedures).
_BUNDLED_AFTER = re.compile(
    r"^[^.;?!]{0,100}?\b(?:(?:shall|should|must|may|can|is|are|will)\s+not\s+be\s+"
    r"(?:reported|billed|coded|charged|added)(?:\s+separately)?|(?:cannot|can't)\s+be\s+"
    r"(?:reported|billed|coded|added)|(?:is|are)\s+not\s+separately\s+(?:reportable|billable|"
    r"reported|billed)|(?:is|are)\s+(?:integral|inherent|incidental)\s+to|(?:is|are|has\s+been|"
    r"have\s+been)\s+(?:bundled|included)\b)",
    re.IGNORECASE,
)
_ADDON_BEFORE = re.compile(r"\badd-?on\s+(?:cpt®?\s+)?(?:codes?\s+)?$", re.IGNORECASE)
_ADDON_AFTER = re.compile(r"^\W{0,3}(?:is|are)\s+(?:an?\s+|also\s+an?\s+)?add-?on", re.IGNORECASE)
_PRIMARY_BEFORE = re.compile(
    r"\bprimary\s+(?:procedure|code|service)s?\s*(?:codes?\s*)?[-–—:,(]*\s*$", re.IGNORECASE
)
_PRIMARY_AFTER = re.compile(r"^\W{0,3}(?:is|as)\s+(?:the\s+)?primary\b", re.IGNORECASE)
# A descriptor after a code: "62272 Spinal puncture, therapeutic, ...", "77002: Fluoroscopic
# guidance ...", "77003 is used to describe ...", "64405 is the greater occipital nerve code".
# A descriptor may also touch the code where a table was flattened ("20610Arthrocentesis,
# aspiration ...", ingest.codes).
_DESCRIPTOR_AFTER = re.compile(
    r"^(?:\s*[:=,–—-]\s*|\s*\(\s*|\s+|(?=[A-Z][a-z]))[\"“]?[A-Z][a-z]+,?(?:\s+[a-z(][\w(),/-]*,?){2,}"
    r"|^\s+(?:is\s+used\s+to\s+describe|describes|is\s+defined\s+as|represents|means)\b"
    r"|^\s+is\s+the\s+[\w\s-]{3,60}?\bcode\b"
)
# A child descriptor in a code list: a line or sentence that starts with the code and goes on
# with the parent's wording ("62328 with fluoroscopic or CT guidance.").
_CHILD_DESCRIPTOR_AFTER = re.compile(
    r"^\s+(?:with|without|each|per|including|by|of|for|first|second|additional)\s[^.;]{4,}"
)
_SENTENCE_START = re.compile(r"(?:^|[.!?:\n])\s*$")
# A descriptor before a code in parentheses: "non-spinal fluoro guidance (77002)".
_DESCRIPTOR_AROUND = re.compile(r"[a-z]{3,}\s*\($")


def assign_roles(text: str, mentions: list[CodeMention]) -> list[CodeMention]:
    """The mentions with `role` set from the words around each one."""
    return [replace(m, role=role_of(text, m)) for m in mentions]


def role_of(text: str, mention: CodeMention) -> str:
    """The role of one mention in `text` (one of ingest.types.ROLES)."""
    start, end = mention.start, mention.end
    clause_start, clause_end = clause_bounds(text, start, end)
    before = text[clause_start:start]
    after = text[end:clause_end]
    after = after[MODIFIERS_AFTER.match(after).end() :]  # type: ignore[union-attr]
    list_before = before[: len(before) - _tail_length(_LIST_BEFORE, before)]
    list_after = after[_head_length(_LIST_AFTER, after) :]
    if not mention.from_range and text[start - 1 : start] == "+":
        return "add-on"
    if _DELETED_AFTER.search(list_after) or _DELETED_BEFORE.search(list_before):
        return "deleted"
    if _EXCLUDED_BEFORE.search(list_before) or _EXCLUDED_AFTER.search(list_after):
        return "excluded"
    if _BUNDLED_AFTER.search(after[: _next_code_at(after)]):
        return "bundled"
    if (
        _DESCRIPTOR_AFTER.search(after)
        or (_DESCRIPTOR_AROUND.search(before) and after.startswith(")"))
        or (_SENTENCE_START.search(before) and _CHILD_DESCRIPTOR_AFTER.search(after))
    ):
        return "defined"
    if _ADDON_AFTER.search(list_after) or _ADDON_BEFORE.search(list_before):
        return "add-on"
    if _PRIMARY_BEFORE.search(list_before) or _PRIMARY_AFTER.search(list_after):
        return "primary"
    return "mentioned"


_NEXT_CODE = re.compile(rf"(?<![\w.,$-]){CODE_SHAPE}(?!\w)")


def qualifies_parent(text: str, mention: CodeMention, offset: int = 0) -> bool:
    """The mention starts a child descriptor that goes on with its parent's wording ("62328
    with fluoroscopic or CT guidance." after "62270 Spinal puncture, lumbar, diagnostic.").
    CPT prints such codes indented: their full descriptor is the parent's up to its semicolon
    plus these words (AMA CPT, "Format of the Terminology")."""
    start, end = mention.start - offset, mention.end - offset
    if mention.role != "defined" or start < 0:
        return False
    clause_start, clause_end = clause_bounds(text, start, end)
    after = text[end:clause_end]
    after = after[MODIFIERS_AFTER.match(after).end() :]  # type: ignore[union-attr]
    return bool(
        _SENTENCE_START.search(text[clause_start:start]) and _CHILD_DESCRIPTOR_AFTER.search(after)
    )


def _next_code_at(text: str) -> int:
    """Where the next code-like token starts in `text` (its length if none)."""
    match = _NEXT_CODE.search(text)
    return match.start() if match else len(text)


_CLAUSE_REACH = 200


def clause_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """(start, end) of the clause of `text` that holds [start, end): from the last clause break
    before it to the next one after it, at most a few hundred characters either way."""
    # Bounded on both sides, so that reading roles stays linear in the length of the text.
    clause_start = max(0, start - _CLAUSE_REACH)
    for match in _CLAUSE_BREAK.finditer(text, clause_start, start):
        clause_start = match.end()
    following = _CLAUSE_BREAK.search(text, end, min(len(text), end + _CLAUSE_REACH))
    clause_end = following.start() if following else min(len(text), end + _CLAUSE_REACH)
    return clause_start, clause_end


def _tail_length(pattern: re.Pattern[str], text: str) -> int:
    match = pattern.search(text)
    return len(match.group()) if match else 0


def _head_length(pattern: re.Pattern[str], text: str) -> int:
    match = pattern.search(text)
    return len(match.group()) if match else 0
