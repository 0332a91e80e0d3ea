"""Code history: which CPT/HCPCS codes were deleted, added, renumbered or revised, and when.

Coding texts from different years disagree (CODING_FACTS.md §7, "dated advice"): a 2015 post
that bills 62311 + 77003 was right then and is a denied claim now. Two sources of facts:

- the table shipped with cptqa, `ingest/data/code_history.json`: facts in our own words, each
  with its source (AMA CPT changes of the year, CMS HCPCS updates, CODING_FACTS.md §2-§4);
- what the indexed corpus itself states ("62311 was deleted in 2017", "76005 became 77003",
  "new for 2020"), read at ingest by `ingest/stated.py`, each with the passage that says it.

Where the two disagree both are kept and shown; a code's status follows the table when the
table knows the code, else what the corpus states.

What ranking and the reply call (the public API):

    load_history() -> CodeHistory                 the shipped table (cached)
    CodeHistory.with_corpus(stated) -> CodeHistory the table plus `stated(code)`'s facts
    history.changes_for(code) -> tuple[CodeChange, ...]   table facts, then the corpus's
    history.status_of(code, year) -> "current" | "revised" | "deleted" | "unassigned"
        as of `year` (None: as of every known change); "unassigned": the number was not yet
        in use that year (64624 before 2020, though old texts' "64622-64627" spans it)
    history.replacement_of(code) -> tuple[str, ...]   codes that replaced a deleted one
    history.valid_in(code, year) -> bool              a claim for that year may carry it
    history.replaced_by(code) -> tuple[str, ...]     the codes it replaced (74018: 74000)
    history.successors_of(code) -> tuple[str, ...]   codes that took over all or part of its
        meaning (replacements, and for a revised code where part of it went: 62270 → 62328)
    history.predecessors_of(code) -> tuple[str, ...] the reverse (62328: 62270)
    history.changes_after(code, year) -> tuple[CodeChange, ...]   changes a text of `year`
        predates (effective after it): its advice about the code may be out of date
    Dated(year, words, chunk_id, change)             a passage that predates a change
    history.newest_year -> int                        the latest year the table knows
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ingest.errors import InvalidInput

CHANGES = ("deleted", "added", "renumbered", "revised")
STATUSES = ("current", "revised", "deleted", "unassigned")
# A renumbered code is gone as surely as a deleted one: its number moved to the replacement.
_ENDING = frozenset({"deleted", "renumbered"})
DEFAULT_PATH = Path(__file__).with_name("data") / "code_history.json"
CORPUS_SOURCE = "corpus"


@dataclass(frozen=True)
class CodeChange:
    """One change to one code. Table facts carry `source` (a citation); facts the corpus
    states carry source "corpus", the passage (`chunk_id`, `document_id`) and its words."""

    code: str
    change: str  # one of CHANGES
    year: int | None  # the year it took effect (None: the text gives none)
    # Deleted or renumbered: the codes that replaced it. Revised: the codes that took over part
    # of its old meaning (62270 with fluoroscopy is 62328 since 2020).
    replacements: tuple[str, ...] = ()
    note: str = ""
    source: str = ""
    chunk_id: str | None = None
    document_id: str | None = None
    text: str = ""

    @property
    def from_corpus(self) -> bool:
        return self.source == CORPUS_SOURCE

    @property
    def ends_code(self) -> bool:
        """The code is no longer valid from `year` on (deleted, or its number moved)."""
        return self.change in _ENDING

    def describe(self) -> str:
        """Short words for a badge: "deleted 2017 → 62322, 62323", "revised 2020"."""
        words = f"{self.change} {self.year}" if self.year else self.change
        if not self.replacements:
            return words
        if self.ends_code:
            return f"{words} → {', '.join(self.replacements)}"
        return f"{words} (part now {', '.join(self.replacements)})"


@dataclass(frozen=True)
class Dated:
    """A passage whose advice about a code predates a change to it: the passage's year, the
    words that date it, and the change (a 2015 post billing 62270 + 77003; revised 2020)."""

    year: int
    words: str
    chunk_id: str
    change: CodeChange


@dataclass
class CodeHistory:
    """Changes by code; corpus facts come from `stated` (a glossary lookup) on demand."""

    table: dict[str, tuple[CodeChange, ...]] = field(default_factory=dict)
    stated: Callable[[str], Sequence[CodeChange]] | None = None

    def with_corpus(self, stated: Callable[[str], Sequence[CodeChange]]) -> CodeHistory:
        """This table plus the facts `stated(code)` returns for each code (the corpus's)."""
        return CodeHistory(self.table, stated)

    @property
    def newest_year(self) -> int:
        return max((c.year or 0 for facts in self.table.values() for c in facts), default=0)

    def changes_for(self, code: str) -> tuple[CodeChange, ...]:
        """Every known change to `code`: the table's by year, then the corpus's by year."""
        corpus = tuple(self.stated(code)) if self.stated is not None else ()
        return self.table.get(code, ()) + tuple(sorted(corpus, key=_by_year))

    def _deciding(self, code: str) -> tuple[CodeChange, ...]:
        """The facts a status follows: the table's when it knows the code, else the corpus's
        that give a year."""
        if code in self.table:
            return self.table[code]
        return tuple(c for c in self.changes_for(code) if c.year is not None)

    def status_of(self, code: str, year: int | None = None) -> str:
        """The code's status as of `year` (None: after every known change)."""
        facts = self._deciding(code)
        known = [c for c in facts if c.year is not None and (year is None or c.year <= year)]
        life = [c for c in known if c.ends_code or c.change == "added"]
        if life:
            latest = max(life, key=lambda c: (c.year or 0, c.ends_code))
            if latest.ends_code:
                return "deleted"
        elif any(c.change == "added" and c.year is not None for c in facts):
            return "unassigned"  # every addition of the code lies after `year`
        return "revised" if any(c.change == "revised" for c in known) else "current"

    def valid_in(self, code: str, year: int | None = None) -> bool:
        """A claim for `year` may carry the code (neither deleted nor not yet in use)."""
        return self.status_of(code, year) in ("current", "revised")

    def replacement_of(self, code: str) -> tuple[str, ...]:
        """The codes that replaced `code` (deleted or renumbered), table facts first."""
        found: dict[str, None] = {}
        for change in self.changes_for(code):
            if change.ends_code:
                found.update(dict.fromkeys(change.replacements))
        found.pop(code, None)
        return tuple(found)

    def successors_of(self, code: str) -> tuple[str, ...]:
        """Codes that took over all or part of `code`'s meaning: its replacements, and for a
        revised code the codes its old meaning moved to (62270 → 62328 in 2020)."""
        found = dict.fromkeys(r for c in self.changes_for(code) for r in c.replacements)
        found.pop(code, None)
        return tuple(found)

    def predecessors_of(self, code: str) -> tuple[str, ...]:
        """The table's codes whose meaning moved to `code`, wholly or in part (62328: 62270;
        74018: 74000)."""
        return tuple(
            old for old, facts in self.table.items() if any(code in c.replacements for c in facts)
        )

    def replaced_by(self, code: str) -> tuple[str, ...]:
        """The table's codes that `code` replaced (74018 replaced 74000): what a claim for a
        year before `code` existed carries instead."""
        return tuple(
            old
            for old, facts in self.table.items()
            if any(c.ends_code and code in c.replacements for c in facts)
        )

    def changes_after(self, code: str, year: int) -> tuple[CodeChange, ...]:
        """Changes to `code` that took effect after `year`: a text of `year` predates them."""
        return tuple(c for c in self._deciding(code) if c.year is not None and c.year > year)


def _by_year(change: CodeChange) -> tuple[int, str]:
    return (change.year or 9999, change.change)


def load_history(path: Path | None = None) -> CodeHistory:
    """The code history table (the shipped one unless `path` is given); `InvalidInput` names
    the fact that is malformed."""
    return _load(path or DEFAULT_PATH)


@lru_cache(maxsize=4)
def _load(path: Path) -> CodeHistory:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        facts = raw["changes"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"code history {path} cannot be read: {exc}") from exc
    table: dict[str, list[CodeChange]] = {}
    for number, fact in enumerate(facts, start=1):
        for change in _facts_of(fact, f"{path} fact {number}"):
            table.setdefault(change.code, []).append(change)
    return CodeHistory({code: tuple(sorted(c, key=_by_year)) for code, c in table.items()})


def _facts_of(fact: object, where: str) -> Iterable[CodeChange]:
    if not isinstance(fact, dict):
        raise InvalidInput(f"{where}: not an object")
    codes, change, year = fact.get("codes"), fact.get("change"), fact.get("year")
    source = fact.get("source")
    if not isinstance(codes, list) or not codes or not all(isinstance(c, str) for c in codes):
        raise InvalidInput(f"{where}: `codes` must be a non-empty list of codes")
    if change not in CHANGES:
        raise InvalidInput(f"{where}: `change` must be one of {', '.join(CHANGES)}")
    if not isinstance(year, int) or isinstance(year, bool) or not 1966 <= year <= 2100:
        raise InvalidInput(f"{where}: `year` must be the year the change took effect")
    if not isinstance(source, str) or not source.strip():
        raise InvalidInput(f"{where}: every fact names its `source`")
    replacements = tuple(fact.get("replacements") or ())
    for code in codes:
        yield CodeChange(code, change, year, replacements, str(fact.get("note", "")), source)
