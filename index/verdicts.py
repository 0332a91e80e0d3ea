"""The verdict a sentence states on a code it cites, read at answer time beyond the extractor's
roles (ingest/roles.py).

The extractor reads a role from the words right next to a code ("not 64493", "77003 is the
wrong code", "76000 is not separately reportable"). Coding texts turn codes down in more ways
than that, and a coder asking "is X right?" needs those read too:
- "77003 (or 77012) is never billed with them", "95990 and 95991 are not reimbursed with ...",
  "76942 does not go with them anymore": the code is not billed in that case;
- "64450 (other peripheral nerve or branch) is the wrong code": a judgement after an aside;
- "Stop using 64450 and 64640 for the knee", "take 77003 off the ticket", "the lidocaine does
  not make it 27095", "is now 62304, not 62284 + 72265": a list turned down as a whole;
- "0230T for a TFESI under fluoro: use 64483": the code before the colon is the wrong one for
  the case and the code after "use" is the one to report.
A code turned down this way reads as "excluded" in the answer ranking (index/answer.py).
"""

from __future__ import annotations

import re

from ingest import Chunk, CodeMention, clause_bounds

_CODE = r"\+?(?:\d{4}[0-9FTU]|[A-V]\d{4})(?:-[A-Z0-9]{2})*"
# A run of codes (and asides) before or after the code: what the text says of a list it says
# of each member ("Stop using 64450 and 64640", "77003 (or 77012) is never billed").
_JOIN = r"(?:\s*(?:,|/|\+|&|\bor\b|\band\b|\bnor\b)\s*|\s+)"
_ASIDE = r"(?:\s*\([^()]{0,80}\))?"
_LIST_BEFORE = re.compile(rf"(?:{_CODE}{_ASIDE}{_JOIN})+$")
_LIST_AFTER = re.compile(rf"^(?:{_ASIDE}{_JOIN}{_CODE})*{_ASIDE}")
_TURNED_DOWN_BEFORE = re.compile(
    r"\b(?:(?:stop|quit)\s+(?:using|billing|reporting|coding|adding)|no\s+longer\s+(?:use|bill|"
    r"report|code|add)|(?:does|do|did)\s+not\s+make\s+it|(?:doesn't|don't)\s+make\s+it|take|"
    r"drop|remove|not)\s+(?:the\s+)?(?:codes?\s+)?$",
    re.IGNORECASE,
)
_TAKE_OFF_AFTER = re.compile(r"^\s+(?:off|from)\b", re.IGNORECASE)
_TAKE_BEFORE = re.compile(r"\b(?:take|drop|remove)\s+(?:the\s+)?(?:codes?\s+)?$", re.IGNORECASE)
_TURNED_DOWN_AFTER = re.compile(
    r"^\s*,?\s*(?:(?:is|are|was|were)\s+(?:never|not|no\s+longer)\s+(?:\w+\s+)?(?:billed|reported"
    r"|coded|added|used|reimbursed|paid|payable|covered|valid|correct|right|appropriate)|(?:is|are)"
    r"\s+(?:the\s+)?(?:wrong|incorrect|inappropriate)\b|(?:does|do)\s+not\s+go\s+with|(?:doesn't|"
    r"don't)\s+go\s+with|(?:should|must)\s+(?:never|not)\s+be\s+(?:billed|reported|coded|added|"
    r"used)|(?:is|are)\s+never\s+(?:separately\s+)?(?:billed|reported|coded|added|used))",
    re.IGNORECASE,
)
# "0230T for a TFESI under fluoro: use 64483": the case, a colon, then the code to use.
_USE_INSTEAD_AFTER = re.compile(
    r"^[^.;:?!\d]{0,80}:\s*(?:use|report|bill|code\s+it\s+as|it\s+is)\s+\+?(?:\d{4}[0-9FTU]|"
    r"[A-V]\d{4})\b",
    re.IGNORECASE,
)


def turned_down(chunk: Chunk, mention: CodeMention) -> bool:
    """The sentence citing `mention` turns the code down (see the module's docstring)."""
    text, start, end = chunk.text, mention.start - chunk.start, mention.end - chunk.start
    if start < 0 or end > len(text):
        return False
    clause_start, clause_end = clause_bounds(text, start, end)
    before, after = text[clause_start:start], text[end:clause_end]
    list_before = before[: len(before) - _length(_LIST_BEFORE.search(before))]
    list_after = after[_length(_LIST_AFTER.search(after)) :]
    if _TURNED_DOWN_BEFORE.search(list_before) and (
        not _TAKE_BEFORE.search(list_before) or _TAKE_OFF_AFTER.search(list_after)
    ):
        return True
    return bool(_TURNED_DOWN_AFTER.search(list_after) or _USE_INSTEAD_AFTER.search(after))


def _length(match: re.Match[str] | None) -> int:
    return len(match.group()) if match else 0
