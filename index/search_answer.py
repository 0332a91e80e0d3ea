"""A search's answer: the codes its top passages cite, their candidate records for the learned
code scorer, the current-rules step, and the passage that states the first code led first.

`AnswerAssembly` is one of the parts `Searcher` (index/search.py) is made of.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from index.answer import AnswerCode, CodeStats, Sentence, rank_answer
from index.code_features import CodeCandidate
from index.current import CurrentRules
from index.features import descriptor_words, kind_groups
from index.question import ParsedQuestion
from index.results import Explanation, Hit
from index.snapshot import Snapshot

# How many top passages the answer's codes are drawn from.
ANSWER_PASSAGES = 5
# Codes the answer lists; candidates the learned code scorer ranks to pick them.
ANSWER_CODES = 10
CODE_CANDIDATES = 30
_REJECTING_ROLES = ("bundled", "excluded", "deleted")


class AnswerAssembly:
    """The answer's codes from the top passages, and the current-rules step on them."""

    snapshot: Snapshot
    rules: CurrentRules

    if TYPE_CHECKING:  # given by PassagePool (index/search_pool.py)

        def _sentences_of(self, row: int, query: np.ndarray) -> list[Sentence]: ...

    def _current_rules(
        self,
        year: int,
        codes: list[AnswerCode],
        hits: list[Hit],
        explanations: list[Explanation] | None,
    ) -> tuple[list[AnswerCode], list[Explanation | None] | None]:
        """The current-rules step (index/current.py): statuses, history and dates on the
        codes and passages, and no invalid code first; explanations follow their codes."""
        before = [c.code for c in codes]
        annotated, dated_hits = self.rules.apply(year, codes, hits)
        hits[:] = dated_hits
        if explanations is None:
            return annotated[:ANSWER_CODES], None
        # A code the rule brought in from the corpus was not scored: no explanation.
        by_code = dict(zip(before, explanations, strict=True))
        return annotated[:ANSWER_CODES], [by_code.get(c.code) for c in annotated][:ANSWER_CODES]

    def answer_candidates(
        self, parsed: ParsedQuestion, rows: list[tuple[int, float]], query: np.ndarray
    ) -> tuple[list[AnswerCode], list[float], list[CodeCandidate]]:
        """The codes the top passages cite: hand-ranked, each passage's support for the first,
        and each code's candidate record for the learned code scorer."""
        store = self.snapshot.store
        top = rows[:ANSWER_PASSAGES]
        answer_rows = [row for row, _ in top]
        stats: dict[str, CodeStats] = {}
        codes, support = rank_answer(
            parsed.text,
            [store.chunks[row] for row in answer_rows],
            [self._sentences_of(row, query) for row in answer_rows],
            frozenset(parsed.codes),
            limit=CODE_CANDIDATES,
            written_codes=store.glossary.standalone,
            stats=stats,
            site=parsed.site,
            words=parsed.tokens,
        )
        best = top[0][1] if top else 0.0
        candidates = []
        kind = kind_groups(parsed)
        history, year = self.rules.history, self.rules.year_of(parsed.service_year)
        successors = {s for n in parsed.wanted_codes for s in history.successors_of(n)}
        for c in codes:
            entry = store.glossary.get(c.code)
            total = max(entry.mentions, 1) if entry else 1
            roles = entry.roles if entry else {}
            described = descriptor_words(tuple(d.text for d in entry.descriptors) if entry else ())
            candidates.append(
                CodeCandidate(
                    c.code,
                    stats[c.code],
                    float(top[stats[c.code].first_rank][1] - best) if top else 0.0,
                    corpus_mentions=entry.mentions if entry else 0,
                    corpus_deleted=roles.get("deleted", 0) / total,
                    corpus_rejected=sum(roles.get(r, 0) for r in _REJECTING_ROLES) / total,
                    described=bool(entry and entry.descriptors),
                    descriptor_kind=bool(kind) and all(g & described for g in kind),
                    valid_in_year=history.valid_in(c.code, year),
                    succeeds_named=c.code in successors,
                    named_changed=c.code in parsed.wanted_codes
                    and any(
                        ch.year is not None and ch.year <= year
                        for ch in history.changes_for(c.code)
                    ),
                )
            )
        return codes, support, candidates


def _evidence_first(rows: list[tuple[int, float]], support: list[float]) -> list[tuple[int, float]]:
    """The rows with the passage that best states the answer's first code moved to the top:
    the answer's own evidence leads, the others keep their order."""
    if not support or max(support) <= 0.0:
        return rows
    best = max(range(len(support)), key=lambda i: (support[i], -i))
    if best == 0:
        return rows
    row, _ = rows[best]
    return [(row, rows[0][1]), *rows[:best], *rows[best + 1 :]]
