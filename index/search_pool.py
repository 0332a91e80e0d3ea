"""The learned ranker's candidate pool: which passages a question's features are computed for.

Dense top ∪ BM25 top ∪ passages citing the codes the question names, with their raw scores
and first-stage ranks (`Candidates`), and the context the features read (`FeatureContext`,
index/feature_context.py). `PassagePool` is one of the parts `Searcher` (index/search.py) is
made of; its methods read the searcher's snapshot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from index.answer import Sentence
from index.dense import dense_scores
from index.features import Candidates, FeatureContext
from index.question import ParsedQuestion
from index.rows import best_code_rows, top_rows
from index.snapshot import Snapshot

CANDIDATES = 100
# The learned ranker's pool: dense top 50 ∪ BM25 top 50 ∪ passages citing the named codes. On
# the public sets it holds a relevant passage for every question, as the top 100s do, and the
# leave-one-topic-out figures were the same (hit@1 0.595 against 0.577) at half the features
# to compute.
LEARNED_CANDIDATES = 50


class PassagePool:
    """The candidate pool and what it is read with: the rows citing the named codes, the
    sentences of a passage with their similarity to the question."""

    snapshot: Snapshot
    _current_year: int

    if TYPE_CHECKING:  # given by Searcher (index/search.py)

        def parse(self, question: str) -> ParsedQuestion: ...

    def candidates(
        self, parsed: ParsedQuestion, query: np.ndarray, lexical: np.ndarray
    ) -> Candidates:
        """Dense top CANDIDATES ∪ BM25 top CANDIDATES ∪ passages citing the named codes, with
        their raw scores (dense cosine, BM25, best-sentence cosine) and first-stage ranks."""
        size = min(LEARNED_CANDIDATES, len(self.snapshot.store.chunks))
        dense_ids, _ = dense_scores(self.snapshot.dense, query, size)
        dense_rows = [int(r) for r in dense_ids.tolist() if r >= 0]
        lexical_rows = top_rows(lexical, size)
        code_rows = self._rows_citing(parsed.codes, lexical)
        pool = list(dict.fromkeys([*dense_rows, *lexical_rows, *code_rows]))
        rows = np.asarray(pool, dtype=np.int64)

        def ranks(order: list[int]) -> np.ndarray:
            position = {row: i for i, row in enumerate(order)}
            return np.asarray([position.get(r, -1) for r in pool], dtype=np.int64)

        return Candidates(
            rows=rows,
            dense=np.asarray(self.snapshot.vectors[rows] @ query, dtype=np.float32),
            lexical=np.asarray(lexical[rows], dtype=np.float32),
            sentence=np.asarray(self.snapshot.sentences.best_similarity(pool, query)),
            dense_rank=ranks(dense_rows),
            lexical_rank=ranks(lexical_rows),
            code_rank=ranks(code_rows),
        )

    def feature_context(
        self, parsed: ParsedQuestion, query: np.ndarray, lexical: np.ndarray
    ) -> FeatureContext:
        found = self.candidates(parsed, query, lexical)
        chunks = [self.snapshot.store.chunks[int(r)] for r in found.rows]
        return FeatureContext(
            parsed,
            found,
            chunks,
            self.snapshot.signals,
            self._current_year,
            self.snapshot.sentences,
            query,
            self._question_weights(parsed),
        )

    def _question_weights(self, parsed: ParsedQuestion) -> dict[str, float]:
        """The question's indexed words (spelling corrected as BM25 reads them) with their
        idf: what the coverage features weigh words by."""
        lexicon = self.snapshot.lexical
        spelled = dict.fromkeys(lexicon.spelled(t) for t in parsed.tokens)
        weights = {t: lexicon.idf(t) for t in spelled}
        return {t: w for t, w in weights.items() if w > 0}

    def _sentences_of(self, row: int, query: np.ndarray) -> list[Sentence]:
        sentences = self.snapshot.sentences
        first, last = int(sentences.offsets[row]), int(sentences.offsets[row + 1])
        similarity = np.asarray(sentences.vectors[first:last] @ query, dtype=np.float32)
        return [
            Sentence(int(start), int(end), float(sim))
            for (start, end), sim in zip(sentences.spans[first:last], similarity, strict=True)
        ]

    def _question_codes(self, question: str) -> list[str]:
        return list(self.parse(question).codes)

    def _rows_citing_question_codes(
        self, question: str, lexical: np.ndarray | None = None
    ) -> list[int]:
        return self._rows_citing(self._question_codes(question), lexical)

    def _rows_citing(
        self, codes: tuple[str, ...] | list[str], lexical: np.ndarray | None = None
    ) -> list[int]:
        """Rows citing the codes the question names: most of those codes first, then by BM25
        score; at most CANDIDATES of them (a code cited in thousands of passages of a large
        corpus must not make every one of them a candidate)."""
        if not codes:
            return []
        cited = [
            np.asarray(self.snapshot.store.rows_by_code.get(c, ()), dtype=np.int64) for c in codes
        ]
        if len(cited) == 1:  # one code: its rows are already unique (and ascending)
            rows, matched = cited[0], np.ones(len(cited[0]), dtype=np.int64)
        else:
            rows, matched = np.unique(np.concatenate(cited), return_counts=True)
        if not len(rows):
            return []
        bm25 = lexical[rows] if lexical is not None else np.zeros(len(rows))
        return best_code_rows(rows, matched, bm25, CANDIDATES)
