"""How a search ranks: the learned model (passages, then the answer's codes) or the
hand-weighted fusion it replaced (`cptqa eval --hand`), and the shipped model it loads.

`PassageRanking` is one of the parts `Searcher` (index/search.py) is made of; the weights below
are the hand-weighted scorer's, chosen with `cptqa eval` on the public dev sets.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from index.answer import AnswerCode
from index.code_features import (
    CODE_FEATURE_NAMES,
    CODE_FEATURE_VERSION,
    CODE_FEATURES,
    CodeCandidate,
    code_table,
)
from index.dense import dense_scores
from index.features import (
    FEATURE_NAMES,
    FEATURE_VERSION,
    FEATURES,
    FeatureContext,
    feature_table,
)
from index.fuse import fuse_rankings, fuse_scores, rescale
from index.lexicon import expand_question, flags_agreement, question_site
from index.question import ParsedQuestion
from index.results import Explanation, FeatureExplanation
from index.rows import top_rows
from index.scorer import RankingModel, load_model
from index.search_pool import CANDIDATES
from index.signals import SIGNALS_VERSION
from index.snapshot import Snapshot
from ingest import IndexIncompatible

# How the signals are fused (index/fuse.py): "convex" (default) or "rrf"; both measured.
FUSION = "convex"
# Weights of the convex combination, chosen with `cptqa eval` on the public dev sets over a
# small grid, taking a setting in the middle of the good region rather than its single best.
DENSE_WEIGHT = 0.5
LEXICAL_WEIGHT = 1.0
# Second stage: each candidate's best sentence against the question (index/sentences.py).
SENTENCE_WEIGHT = 1.0
# Passages that cite a code the question names are the ones the coder is asking about.
CODE_WEIGHT = 0.5
RRF_CODE_WEIGHT = 1.0
# When the question names a needle site, passages that tie guidance to the same kind of site
# (spinal / non-spinal, CODING_FACTS.md §3) gain, those that name only the other kind lose.
SITE_WEIGHT = 0.3
# A passage made of questions (a forum post asking, an FAQ prompt) is not an answer: its
# fused score shrinks by this share of its question text.
QUESTION_PENALTY = 0.5
# The learned ranking model shipped with cptqa (`cptqa train` writes it), and the versions of
# what its features read: passage features, code features, per-chunk signals.
MODEL_VERSIONS = (FEATURE_VERSION, CODE_FEATURE_VERSION, SIGNALS_VERSION)
DEFAULT_MODEL_PATH = Path(__file__).with_name("models") / "ranker.json"


def default_model() -> RankingModel | None:
    """The shipped model, or None when there is none (the hand-weighted scorer then ranks)."""
    if not DEFAULT_MODEL_PATH.exists():
        return None
    return _load_default()


@lru_cache(maxsize=1)
def _load_default() -> RankingModel:
    model = load_model(DEFAULT_MODEL_PATH, FEATURE_NAMES, CODE_FEATURE_NAMES)
    meta = model.meta or {}
    # Same names can change meaning: the versions say so (index/features.py).
    versions = (
        meta.get("feature_version"),
        meta.get("code_feature_version"),
        meta.get("signals_version"),
    )
    if versions != MODEL_VERSIONS:
        raise IndexIncompatible(
            f"ranking model {DEFAULT_MODEL_PATH} was trained on (passage, code, signal) "
            f"feature versions {versions}, this cptqa computes {MODEL_VERSIONS}: run "
            "`cptqa train`"
        )
    return model


class PassageRanking:
    """Ranks a pool: `learned_rows` by the learned model, `rank_rows` by the hand-weighted
    fusion; `_rescore_codes` orders the answer's codes by the learned code scorer."""

    snapshot: Snapshot
    ranking: RankingModel | None
    _asks: np.ndarray

    if TYPE_CHECKING:  # given by Searcher (index/search.py) and PassagePool

        def _encode(self, question: str) -> np.ndarray: ...

        def feature_context(
            self, parsed: ParsedQuestion, query: np.ndarray, lexical: np.ndarray
        ) -> FeatureContext: ...

        def _rows_citing_question_codes(
            self, question: str, lexical: np.ndarray | None = None
        ) -> list[int]: ...

    def _rescore_codes(
        self,
        parsed: ParsedQuestion,
        codes: list[AnswerCode],
        candidates: list[CodeCandidate],
        explain: bool,
    ) -> tuple[list[AnswerCode], list[Explanation] | None]:
        """The answer's codes in the learned code scorer's order, scored by it."""
        assert self.ranking is not None and self.ranking.codes is not None
        if not codes:
            return codes, [] if explain else None
        scorer = self.ranking.codes
        table = code_table(parsed, candidates)
        scores = scorer.score(table)
        order = sorted(range(len(codes)), key=lambda i: (-scores[i], codes[i].code))
        ranked = [replace(codes[i], score=round(float(scores[i]), 4)) for i in order]
        if not explain:
            return ranked, None
        contributions, base = scorer.contributions(table[order])
        return ranked, [
            Explanation(
                scorer.kind,
                round(base, 6),
                tuple(
                    FeatureExplanation(f.name, float(table[i, j]), float(contributions[n, j]))
                    for j, f in enumerate(CODE_FEATURES)
                ),
            )
            for n, i in enumerate(order)
        ]

    def learned_rows(
        self,
        parsed: ParsedQuestion,
        query: np.ndarray,
        lexical: np.ndarray,
        k: int,
        explained: dict[int, Explanation] | None = None,
        explain: bool = False,
    ) -> list[tuple[int, float]]:
        """[(chunk row, model score)] of the best `k` candidates by the learned model."""
        assert self.ranking is not None
        ctx = self.feature_context(parsed, query, lexical)
        table = feature_table(ctx)
        scorer = self.ranking.passages
        scores = scorer.score(table)
        order = np.lexsort((ctx.candidates.rows, -scores))[:k]
        if explain and explained is not None and len(order):
            contributions, base = scorer.contributions(table[order])
            for i, index in enumerate(order):
                explained[int(ctx.candidates.rows[index])] = Explanation(
                    scorer.kind,
                    round(base, 6),
                    tuple(
                        FeatureExplanation(
                            f.name, float(table[index, j]), float(contributions[i, j])
                        )
                        for j, f in enumerate(FEATURES)
                    ),
                )
        return [(int(ctx.candidates.rows[i]), round(float(scores[i]), 6)) for i in order]

    def rank_rows(
        self,
        question: str,
        k: int,
        query: np.ndarray | None = None,
        lexical: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """[(chunk row, fused score)] of the best `k` chunks (`query`, the question's vector,
        and `lexical`, its BM25 scores, are computed here unless given)."""
        candidates = min(CANDIDATES, len(self.snapshot.store.chunks))
        if query is None:
            query = self._encode(question)
        dense_ids, dense_values = dense_scores(self.snapshot.dense, query, candidates)
        dense_rows = dense_ids.tolist()
        # The coder lexicon widens the lexical query only: appended to the text the dense
        # model reads, it lowered hit@1 on the dev sets (0.87 -> 0.80 seeds, 0.71 -> 0.63 dev).
        if lexical is None:
            lexical = self.snapshot.lexical.scores(expand_question(question).text)
        lexical_rows = top_rows(lexical, candidates)
        pool = list(dict.fromkeys([*dense_rows, *lexical_rows]))
        best = self.snapshot.sentences.best_similarity(pool, query)
        code_rows = self._rows_citing_question_codes(question, lexical)
        if FUSION == "convex":
            fused = self._convex(pool, query, lexical, best, code_rows, question_site(question))
        else:
            sentence_rows = [pool[i] for i in np.argsort(-best, kind="stable")]
            rankings = [(dense_rows, 1.0), (lexical_rows, 1.0), (sentence_rows, 1.0)]
            if code_rows:
                rankings.append((code_rows, RRF_CODE_WEIGHT))
            fused = fuse_rankings(rankings)
        fused = [
            (row, score * (1.0 - QUESTION_PENALTY * float(self._asks[row]))) for row, score in fused
        ]
        fused.sort(key=lambda item: (-item[1], item[0]))
        return fused[:k]

    def _convex(
        self,
        pool: list[int],
        query: np.ndarray,
        lexical: np.ndarray,
        best_sentence: np.ndarray,
        code_rows: list[int],
        site: str | None = None,
    ) -> list[tuple[int, float]]:
        """Scores of the candidates: dense cosine and best-sentence cosine min-max scaled, BM25
        divided by its best, and a bonus for citing a code the question names."""
        in_pool = set(pool)
        rows = pool + [r for r in code_rows if r not in in_pool]
        index = np.asarray(rows, dtype=np.int64)
        dense = np.asarray(self.snapshot.vectors[index] @ query, dtype=np.float32)
        sentence = np.concatenate(
            [best_sentence, self.snapshot.sentences.best_similarity(rows[len(pool) :], query)]
        )
        bm25 = lexical[index]
        bm25 = bm25 / bm25.max() if bm25.max() > 0 else bm25
        cited = set(code_rows)
        codes = np.fromiter((row in cited for row in rows), dtype=np.float32, count=len(rows))
        signals = [
            (rescale(dense), DENSE_WEIGHT),
            (bm25, LEXICAL_WEIGHT),
            (rescale(sentence), SENTENCE_WEIGHT),
            (codes, CODE_WEIGHT),
        ]
        if site is not None and SITE_WEIGHT:
            flags = self.snapshot.signals["site_flags"][index]
            agreement = [flags_agreement(site, int(f)) for f in flags]
            signals.append((np.asarray(agreement, dtype=np.float32), SITE_WEIGHT))
        return fuse_scores(rows, signals)
