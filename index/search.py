"""Hybrid search over a loaded snapshot: dense + BM25 + exact codes, fused; then answer codes."""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from index.answer import AnswerCode, CodeStats, Sentence, rank_answer
from index.code_features import (
    CODE_FEATURE_NAMES,
    CODE_FEATURE_VERSION,
    CODE_FEATURES,
    CodeCandidate,
    code_table,
)
from index.current import CurrentRules
from index.dense import dense_scores
from index.embed import ModelUnavailable
from index.encoder import QueryEncoder
from index.features import (
    FEATURE_NAMES,
    FEATURE_VERSION,
    FEATURES,
    Candidates,
    FeatureContext,
    descriptor_words,
    feature_table,
    kind_groups,
)
from index.fuse import fuse_rankings, fuse_scores, rescale
from index.lexicon import expand_question, flags_agreement, question_site
from index.lookup import lookup_code
from index.question import ParsedQuestion, parse_question
from index.results import CodeLookup, Explanation, FeatureExplanation, Hit, SearchResult
from index.rows import best_code_rows, top_rows
from index.scorer import RankingModel, load_model
from index.signals import SIGNALS_VERSION
from index.snapshot import Snapshot
from ingest import (
    IndexIncompatible,
)

CANDIDATES = 100
# The learned ranker's pool: dense top 50 ∪ BM25 top 50 ∪ passages citing the named codes. On
# the public sets it holds a relevant passage for every question, as the top 100s do, and the
# leave-one-topic-out figures were the same (hit@1 0.595 against 0.577) at half the features
# to compute.
LEARNED_CANDIDATES = 50
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
# A passage sharing at least this share of its words (Jaccard) with a better one is a copy.
DUPLICATE_OVERLAP = 0.8
# How many top passages the answer's codes are drawn from.
ANSWER_PASSAGES = 5
# Codes the answer lists; candidates the learned code scorer ranks to pick them.
ANSWER_CODES = 10
CODE_CANDIDATES = 30
_REJECTING_ROLES = ("bundled", "excluded", "deleted")
# The passage that best states the answer's first code leads the results.
EVIDENCE_FIRST = True
# From this many BM25 postings (about 3 ms of sums) a lone question is encoded on another
# core while they are summed: below it, encoding on every core first is faster. Timed on
# bench/scale.py's snapshots, each dev question asked both ways in turn: at a million chunks a
# search took 0.4-0.6 ms less at the median (0.8-1.1 ms on average, faster for about 60% of
# the questions); at 100,000 chunks, where few questions reach the threshold, no change.
OVERLAP_POSTINGS = 500_000


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


class Searcher:
    """Answers questions from one snapshot with one embedder; safe to share across threads."""

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


_WORD = re.compile(r"[a-z0-9]+")


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0
