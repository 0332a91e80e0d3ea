"""Hybrid search over a loaded snapshot: dense + BM25 + exact codes, fused; then answer codes.

`Searcher` runs a search end to end: encodes the question beside BM25, ranks (index/
search_ranking.py) the candidate pool (index/search_pool.py), drops near-duplicate passages,
and assembles the answer (index/search_answer.py)."""

from __future__ import annotations

import contextlib
import re
import time
from typing import Literal

import numpy as np

from index.code_features import CodeCandidate
from index.current import CurrentRules
from index.embed import ModelUnavailable
from index.encoder import QueryEncoder
from index.lookup import lookup_code
from index.question import ParsedQuestion, parse_question
from index.results import CodeLookup, Explanation, Hit, SearchResult
from index.scorer import RankingModel
from index.search_answer import (
    ANSWER_CODES,
    ANSWER_PASSAGES,
    CODE_CANDIDATES,
    AnswerAssembly,
    _evidence_first,
)
from index.search_pool import CANDIDATES, LEARNED_CANDIDATES, PassagePool
from index.search_ranking import (
    CODE_WEIGHT,
    DEFAULT_MODEL_PATH,
    DENSE_WEIGHT,
    FUSION,
    LEXICAL_WEIGHT,
    MODEL_VERSIONS,
    QUESTION_PENALTY,
    RRF_CODE_WEIGHT,
    SENTENCE_WEIGHT,
    SITE_WEIGHT,
    PassageRanking,
    default_model,
)
from index.snapshot import Snapshot

# The pool, the ranking and the answer's assembly live beside this module; their settings and
# the shipped model's loader stay importable from here.
__all__ = [
    "ANSWER_CODES",
    "ANSWER_PASSAGES",
    "CANDIDATES",
    "CODE_CANDIDATES",
    "CODE_WEIGHT",
    "DEFAULT_MODEL_PATH",
    "DENSE_WEIGHT",
    "DUPLICATE_OVERLAP",
    "EVIDENCE_FIRST",
    "FUSION",
    "LEARNED_CANDIDATES",
    "LEXICAL_WEIGHT",
    "MODEL_VERSIONS",
    "OVERLAP_POSTINGS",
    "QUESTION_PENALTY",
    "RRF_CODE_WEIGHT",
    "SENTENCE_WEIGHT",
    "SITE_WEIGHT",
    "Searcher",
    "default_model",
]

# A passage sharing at least this share of its words (Jaccard) with a better one is a copy.
DUPLICATE_OVERLAP = 0.8
# The passage that best states the answer's first code leads the results.
EVIDENCE_FIRST = True
# From this many BM25 postings (about 3 ms of sums) a lone question is encoded on another
# core while they are summed: below it, encoding on every core first is faster. Timed on
# bench/scale.py's snapshots, each dev question asked both ways in turn: at a million chunks a
# search took 0.4-0.6 ms less at the median (0.8-1.1 ms on average, faster for about 60% of
# the questions); at 100,000 chunks, where few questions reach the threshold, no change.
OVERLAP_POSTINGS = 500_000


class Searcher(PassagePool, PassageRanking, AnswerAssembly):
    """Answers questions from one snapshot with one embedder; safe to share across threads.

    Its parts: the candidate pool (index/search_pool.py), the learned and hand-weighted
    ranking (index/search_ranking.py) and the answer's assembly (index/search_answer.py)."""

    def __init__(
        self,
        snapshot: Snapshot,
        embedder: QueryEncoder | None,
        ranking: RankingModel | None | Literal["default"] = "default",
        as_of: int | None = None,
    ) -> None:
        """`ranking`: the learned model to rank with ("default": the shipped one), or None
        for the hand-weighted scorer (the baseline the learned one is measured against);
        `as_of`: the current year for code statuses (default: index/current.py)."""
        self.snapshot = snapshot
        self.embedder = embedder
        self.ranking = default_model() if ranking == "default" else ranking
        self._known_codes = frozenset(snapshot.store.known_codes())
        self._asks = snapshot.signals["question_share"]
        years = snapshot.signals.get("doc_year")
        self._current_year = int(years.max()) if years is not None and len(years) else 0
        self.rules = CurrentRules(snapshot.store, self._current_year, as_of)

    def search(self, question: str, k: int = 5, explain: bool = False) -> SearchResult:
        """The top `k` passages for `question` and the codes they point to; with `explain`,
        each passage's features and their contributions to its score."""
        scope = self.embedder.busy() if self.embedder is not None else contextlib.nullcontext()
        with scope:
            return self._search(question, k, explain)

    def parse(self, question: str) -> ParsedQuestion:
        return parse_question(question, self._known_codes)

    def _search(self, question: str, k: int, explain: bool = False) -> SearchResult:
        started = time.perf_counter()
        parsed = self.parse(question)
        lexical_query = self.snapshot.lexical.query(parsed.lexical_text)
        # BM25 over a large corpus takes milliseconds and needs no vector: it runs on this
        # core while the question is encoded on the other (on a million chunks, a query's
        # words have about a million postings: encoding and BM25 took 7.9 against 9.4 ms).
        pending = (
            self.embedder.start_query(question)
            if self.embedder is not None and lexical_query.postings >= OVERLAP_POSTINGS
            else None
        )
        if pending is None:
            query = self._encode(question)
            lexical = self.snapshot.lexical.score(lexical_query)
        else:
            lexical = self.snapshot.lexical.score(lexical_query)
            query = pending()
        wanted = max(k, ANSWER_PASSAGES)
        explained: dict[int, Explanation] = {}
        if self.ranking is None:
            ranked = self.rank_rows(question, 3 * wanted, query, lexical)
        else:
            ranked = self.learned_rows(parsed, query, lexical, 3 * wanted, explained, explain)
        rows = self._without_near_duplicates(ranked, wanted)
        store = self.snapshot.store
        codes, support, candidates = self.answer_candidates(parsed, rows, query)
        code_explanations = None
        if self.ranking is not None and self.ranking.codes is not None:
            codes, code_explanations = self._rescore_codes(parsed, codes, candidates, explain)
        codes = codes[:ANSWER_CODES]
        if code_explanations is not None:
            code_explanations = code_explanations[:ANSWER_CODES]
        if EVIDENCE_FIRST and self.ranking is None:
            # The question asks for a kind of code ("which fluoro code for ..."): the passage
            # that best states the code of that kind is the answer.
            rows = _evidence_first(rows, support)
        hits = [
            Hit(store.chunks[row], store.documents[store.chunks[row].document_id], score, rank)
            for rank, (row, score) in enumerate(rows[:k], start=1)
        ]
        explanations = [explained[row] for row, _ in rows[:k]] if explain and explained else None
        codes, code_explanations = self._current_rules(
            self.rules.year_of(parsed.service_year), codes, hits, code_explanations
        )
        took_ms = (time.perf_counter() - started) * 1000.0
        return SearchResult(
            question, hits, codes, round(took_ms, 2), explanations, code_explanations
        )

    def code_candidates(self, question: str) -> tuple[ParsedQuestion, list[CodeCandidate]]:
        """The parsed question and its candidate answer codes, as a search finds them."""
        parsed = self.parse(question)
        query = self._encode(question)
        lexical = self.snapshot.lexical.score(self.snapshot.lexical.query(parsed.lexical_text))
        wanted = ANSWER_PASSAGES
        if self.ranking is None:
            ranked = self.rank_rows(question, 3 * wanted, query, lexical)
        else:
            ranked = self.learned_rows(parsed, query, lexical, 3 * wanted)
        rows = self._without_near_duplicates(ranked, wanted)
        return parsed, self.answer_candidates(parsed, rows, query)[2]

    def _without_near_duplicates(
        self, rows: list[tuple[int, float]], k: int
    ) -> list[tuple[int, float]]:
        """The best `k` rows, skipping a passage nearly identical to a better one (the same
        descriptor copied into several files) so that copies do not crowd the answer."""
        kept: list[tuple[int, float]] = []
        kept_words: list[set[str]] = []
        chunks = self.snapshot.store.chunks
        for row, score in rows:
            # Plain lower-cased words: copies are copies with or without stemming, and this
            # runs on every query.
            words = set(_WORD.findall(chunks[row].text.lower()))
            if any(_jaccard(words, other) >= DUPLICATE_OVERLAP for other in kept_words):
                continue
            kept.append((row, score))
            kept_words.append(words)
            if len(kept) == k:
                break
        return kept

    def _encode(self, question: str) -> np.ndarray:
        if self.embedder is None:
            raise ModelUnavailable(
                "this searcher was opened for code lookups only, without a model"
            )
        return self.embedder.encode_query(question)

    def lookup(self, code: str) -> CodeLookup:
        """The glossary entry of `code` with its passages (index/lookup.py)."""
        return lookup_code(self, code)


_WORD = re.compile(r"[a-z0-9]+")


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0
