"""Current rules: each answer code's status and history, dated advice marked, and no deleted
code handed out first.

The last step of a search (index/search.py), after the learned scorers, so that it holds
whatever they rank:
- Each answer code gets its `status` as of the year the question is about (the date of service
  it names, "correcting a 2019 claim"; else the current year), its `history` (the shipped table
  and what the corpus states, ingest/history.py), and `dated` when its evidence passage speaks
  for a year before a change to it.
- Each passage gets the year it speaks for with the words it was read from, and the changes to
  the codes it cites that came after that year.
- A code that is not valid that year (deleted, or not yet in use) is never the first answer
  code when the answer or the corpus offers one that is: its replacement first (the best
  ranked one in the answer, else one the corpus cites, with the corpus's words as evidence),
  else, for a code not yet in use in the year of service, the best ranked valid code. The
  rule reads the code history only, never the question's wording beyond the date of service
  it names.

The current year is CPTQA_CURRENT_YEAR when set, else the newest year the corpus speaks for or
the code history knows, whichever is later.

For ranking features (`Searcher.rules` is the snapshot's `CurrentRules`):
    rules.history                      CodeHistory: table + corpus (ingest/history.py)
    rules.current_year                 int
    rules.year_of(named_year) -> int   the year a question is about, from the date of service
                                       it names (`ParsedQuestion.service_year`)
    rules.passage_changes(chunk, passage_year, year) -> tuple[CodeChange, ...]
                                       changes its advice predates (passage_year from the
                                       snapshot's `passage_year` signal)
    rules.states_change_of(chunk) -> set[str]   codes whose change the passage states
    rules.current_first(codes, year)   the rule alone, on a list of AnswerCode
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from index.answer import AnswerCode, Evidence
from ingest.dates import PassageDate
from ingest.glossary import writes_alone
from ingest.history import CodeChange, CodeHistory, Dated, load_history

if TYPE_CHECKING:
    from index.results import Hit
    from index.store import ChunkStore
    from ingest.types import Chunk

MAX_PASSAGE_CHANGES = 5
_EVIDENCE_CHARS = 240


class CurrentRules:
    """The code history of one snapshot (table + the corpus's statements) and its year."""

    def __init__(self, store: ChunkStore, corpus_year: int, as_of: int | None = None) -> None:
        glossary = store.glossary
        self.store = store
        self.history: CodeHistory = load_history().with_corpus(
            lambda code: glossary[code].changes if code in glossary else ()
        )
        self.current_year = as_of or max(corpus_year, self.history.newest_year)

    def year_of(self, named: int | None) -> int:
        """The year a question naming the date of service `named` (None: none) is about: that
        year if earlier than the current year; else the current year."""
        return named if named is not None and named < self.current_year else self.current_year

    def apply(
        self, year: int, codes: list[AnswerCode], hits: list[Hit]
    ) -> tuple[list[AnswerCode], list[Hit]]:
        """The answer codes with the rule applied and annotated, and the passages dated, for a
        question about `year` (`year_of`)."""
        codes = self.current_first(codes, year)
        wanted = [h.chunk.id for h in hits] + [c.evidence[0].chunk_id for c in codes if c.evidence]
        dates = self.store.dates_of(list(dict.fromkeys(wanted)))
        codes = [self._annotate(code, year, dates) for code in codes]
        hits = [
            replace(
                hit,
                date=dates.get(hit.chunk.id),
                dated=self.passage_changes(hit.chunk, _year(dates.get(hit.chunk.id)), year),
            )
            for hit in hits
        ]
        return codes, hits

    def current_first(self, codes: list[AnswerCode], year: int) -> list[AnswerCode]:
        """`codes` with a code valid in `year` first, when the first is not and the answer
        or the corpus offers one."""
        history = self.history
        if not codes or history.valid_in(codes[0].code, year):
            return codes
        first = codes[0]
        status = history.status_of(first.code, year)
        # Its replacements for a deleted code; for one not yet in use, the codes it replaced.
        successors = history.replacement_of(first.code) or history.replaced_by(first.code)
        successors = tuple(c for c in successors if history.valid_in(c, year))
        listed = {c.code: i for i, c in enumerate(codes)}
        offered = [listed[c] for c in successors if c in listed]
        why = f"{first.code} is {status} as of {year}"
        if offered:
            link = "this code replaced it" if status == "deleted" else "this code was in use then"
            return _moved_first(codes, min(offered), f"{why}; {link}")
        inserted = self._from_corpus(first, successors, why)
        if inserted is not None:
            return [inserted, *codes]
        if status == "unassigned":
            # Not yet in use in the year of service: the answer's codes valid then are what
            # that year's texts gave. A deleted code without an offered replacement stays, its
            # status shown: the answer has nothing better to put in its place.
            valid = [i for i, c in enumerate(codes) if history.valid_in(c.code, year)]
            if valid:
                return _moved_first(codes, valid[0], why)
        return codes

    def _from_corpus(
        self, first: AnswerCode, successors: Sequence[str], why: str
    ) -> AnswerCode | None:
        """The first successor the corpus writes on its own, as an answer code whose evidence
        is the corpus's words: the sentence stating the change, else its descriptor."""
        glossary = self.store.glossary
        for code in successors:
            if code not in glossary.standalone:
                continue
            entry = glossary[code]
            said = next(
                (
                    c
                    for c in self.history.changes_for(first.code)
                    if code in c.replacements and c.from_corpus and c.chunk_id
                ),
                None,
            )
            if said is not None and said.chunk_id is not None:
                evidence = Evidence(said.chunk_id, said.text, "mentioned")
            elif entry.descriptors:
                d = entry.descriptors[0]
                evidence = Evidence(d.chunk_id, f"{code} {d.text}", "defined")
            else:
                evidence = Evidence(entry.chunk_ids[0], self._words_about(code), "mentioned")
            return AnswerCode(
                code,
                entry.system,
                entry.category,
                first.score,
                evidence.role,
                (evidence,),
                current_rule=f"{why}; the corpus gives this code in its place",
            )
        return None

    def _words_about(self, code: str) -> str:
        rows = self.store.rows_by_code.get(code, ())
        if not len(rows):
            return code
        chunk = self.store.chunks[int(rows[0])]
        at = next((m.start - chunk.start for m in chunk.codes if m.code == code), 0)
        start = max(0, at - _EVIDENCE_CHARS // 2)
        return " ".join(chunk.text[start : start + _EVIDENCE_CHARS].split())

    def _annotate(self, code: AnswerCode, year: int, dates: dict[str, PassageDate]) -> AnswerCode:
        history = self.history
        dated = None
        if code.evidence:
            chunk_id = code.evidence[0].chunk_id
            date = dates.get(chunk_id)
            # A passage stating the change itself announces it: not dated advice.
            announces = any(c.chunk_id == chunk_id for c in history.changes_for(code.code))
            if date is not None and date.year and not announces:
                # A text naming a code before it was added announces it: not dated advice.
                later = [
                    c
                    for c in history.changes_after(code.code, date.year)
                    if c.year is not None and c.year <= year and c.change != "added"
                ]
                if later:
                    dated = Dated(date.year, date.words, chunk_id, later[0])
        return replace(
            code,
            status=history.status_of(code.code, year),
            history=history.changes_for(code.code),
            dated=dated,
        )

    def states_change_of(self, chunk: Chunk) -> set[str]:
        """Codes whose change this passage states itself (it is not dated by that change)."""
        return {
            c.code
            for m in chunk.codes
            for c in self.history.changes_for(m.code)
            if c.chunk_id == chunk.id
        }

    def passage_changes(self, chunk: Chunk, passage_year: int, year: int) -> tuple[CodeChange, ...]:
        """Changes to the codes `chunk` cites that took effect after `passage_year` and by
        `year` (the question's): a code it writes that was later deleted, renumbered or
        revised, or a range member that only later came into use (64624 inside an old
        "64622-64627"). Empty when the passage's year is unknown (0) or it states the change
        itself. A ranking feature's building block: "this advice predates a change"."""
        if not passage_year:
            return ()
        announced = self.states_change_of(chunk)
        found: dict[tuple[str, str], CodeChange] = {}
        for mention in chunk.codes:
            if mention.code in announced:
                continue
            for change in self.history.changes_after(mention.code, passage_year):
                if change.year is None or change.year > year:
                    continue
                if (change.change == "added") == writes_alone(mention):
                    continue  # additions matter for range members; the rest for written codes
                found.setdefault((change.code, change.change), change)
        ordered = sorted(found.values(), key=lambda c: (c.year or 0, c.code))
        return tuple(ordered[:MAX_PASSAGE_CHANGES])


def _year(date: PassageDate | None) -> int:
    return (date.year or 0) if date is not None else 0


def _moved_first(codes: list[AnswerCode], index: int, why: str) -> list[AnswerCode]:
    moved = replace(codes[index], current_rule=f"placed first: {why}")
    return [moved, *codes[:index], *codes[index + 1 :]]
