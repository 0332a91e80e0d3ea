"""A code's lookup: its glossary entry, the passages citing it, its status and history, and
the codes a caller more likely meant."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from index.results import CodeLookup, Hit
from ingest import InvalidInput, UnknownCode, is_well_formed_code, normalize_code
from ingest.glossary import CodeEntry, suggest_codes

if TYPE_CHECKING:
    from index.search import Searcher

# A code mentioned once next to a one-edit neighbour mentioned this many times is a typo.
TYPO_RATIO = 3
# Passages shown with a code's glossary entry.
MAX_LOOKUP_PASSAGES = 20
_WITH_MODIFIERS = re.compile(r"([0-9A-Z]{5})(?:\s*[-\s]\s*[0-9A-Z]{2})+")


def lookup_code(searcher: Searcher, code: str) -> CodeLookup:
    """The glossary entry of `code` with its passages; `InvalidInput` for a malformed code,
    `UnknownCode` (with known codes one edit away) for one the corpus does not mention."""
    normalized = normalize_code(code)
    modified = _WITH_MODIFIERS.fullmatch(normalized)
    if modified and is_well_formed_code(modified.group(1)):
        normalized = modified.group(1)  # 77003-26: the code, whatever its modifiers
    if not is_well_formed_code(normalized):
        raise InvalidInput(
            f"{code!r} is not a CPT or HCPCS code: send five digits (77002), four digits "
            "and F, T or U (0213T), or a HCPCS letter and four digits (J3301), with or "
            "without modifiers (77003-26)"
        )
    store = searcher.snapshot.store
    entry = store.glossary.get(normalized)
    counts = store.glossary.counts
    if entry is None:
        suggestions = suggest_codes(normalized, store.glossary, counts)
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        known = searcher.rules.history.table.get(normalized, ())
        told = "; code history: " + "; ".join(c.describe() for c in known) if known else ""
        raise UnknownCode(f"the corpus does not mention {normalized}{told}{hint}", suggestions)
    suggestions, note = [], ""
    if _likely_typo(entry, counts):
        suggestions = suggest_codes(normalized, store.glossary, counts)
        common = suggestions[0]
        note = (
            f"The corpus mentions {normalized} once, and {common} {counts[common]} times: "
            f"if you meant {common}, see it instead."
        )
    rows = store.rows_by_code.get(normalized, [])[:MAX_LOOKUP_PASSAGES]
    passages = [
        Hit(store.chunks[row], store.documents[store.chunks[row].document_id], 0.0, rank)
        for rank, row in enumerate(rows, start=1)
    ]
    history = searcher.rules.history
    # Each passage's year, and its dated advice as of the current year.
    _, passages = searcher.rules.apply(searcher.rules.current_year, [], passages)
    return CodeLookup(
        entry,
        passages,
        tuple(suggestions),
        note,
        history.status_of(normalized, searcher.rules.current_year),
        history.changes_for(normalized),
    )


def _likely_typo(entry: CodeEntry, counts: dict[str, int]) -> bool:
    """A code written once, never described, beside a one-edit neighbour the corpus uses at
    least TYPO_RATIO times: "primary procedure--62370" in a text about 62270."""
    if entry.mentions > 1 or "defined" in entry.roles:
        return False
    neighbours = suggest_codes(entry.code, counts, counts)
    return bool(neighbours) and counts[neighbours[0]] >= TYPO_RATIO * entry.mentions
