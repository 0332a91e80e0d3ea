"""Training and judging the ranking model on the public judged sets.

- `load_public_sets` reads the sets file (corpora indexed together, question files by topic).
- `log_features` runs each question's candidate stage and feature registry and joins the table
  with the judgments (a candidate is relevant when it holds a gold substring): what
  `cptqa eval --features` writes and what the fits read.
- `fit_linear` (pairwise logistic: RankNet's loss on a linear function, scikit-learn) and
  `fit_lambdamart` (LightGBM `lambdarank`) fit a scorer from logged questions.
- `cross_validate` fits on every topic but one and evaluates the full search (passages and
  answer codes) on the one left out, for each topic, beside the in-sample fit and the
  hand-weighted scorer. The out-of-topic mean is what to expect on texts nobody tuned for.

Fits are deterministic (fixed seeds, one thread), so the same data gives the same model file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.code_features import CODE_FEATURE_NAMES, CODE_FEATURE_VERSION, code_table
from index.evaluate import (
    Question,
    QuestionResult,
    _collapse,
    _is_gold,
    evaluate,
    figures_by_kind,
    load_questions,
)
from index.features import FEATURE_NAMES, FEATURE_VERSION, feature_table
from index.scorer import LinearScorer, RankingModel, Scorer, TreeScorer
from index.search import Searcher
from index.signals import SIGNALS_VERSION
from ingest import InvalidInput

SEED = 20261201
METRICS = ("hit@1", "hit@3", "mrr@10", "ndcg@10", "answer_code@1")


@dataclass(frozen=True)
class PublicSets:
    corpora: tuple[Path, ...]
    topics: dict[str, tuple[Path, ...]]

    def questions(self) -> dict[str, list[Question]]:
        return {
            topic: [q for path in paths for q in load_questions(path)]
            for topic, paths in self.topics.items()
        }


def load_public_sets(path: Path) -> PublicSets:
    """Read a sets file: `{"corpora": [...], "topics": {name: [question files]}}`, paths
    relative to the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        base = path.parent
        corpora = tuple((base / p).resolve() for p in data["corpora"])
        topics = {
            str(t): tuple((base / p).resolve() for p in files)
            for t, files in data["topics"].items()
        }
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"{path}: not a sets file ({exc})") from exc
    if len(topics) < 2:
        raise InvalidInput(f"{path}: leave-one-topic-out needs at least two topics")
    return PublicSets(corpora, topics)


@dataclass
class LoggedQuestion:
    topic: str
    question: Question
    chunk_ids: list[str]
    table: np.ndarray
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0))


def log_features(
    searcher: Searcher, questions: dict[str, Sequence[Question]]
) -> list[LoggedQuestion]:
    """Every question's candidates with their feature rows and judgments."""
    logged = []
    for topic, items in questions.items():
        for question in items:
            parsed = searcher.parse(question.question)
            query = searcher._encode(question.question)
            lexical = searcher.snapshot.lexical.score(
                searcher.snapshot.lexical.query(parsed.lexical_text)
            )
            ctx = searcher.feature_context(parsed, query, lexical)
            gold = [_collapse(g) for g in question.gold]
            labels = np.asarray([_is_gold(c.text, gold) for c in ctx.chunks], dtype=np.float32)
            logged.append(
                LoggedQuestion(
                    topic, question, [c.id for c in ctx.chunks], feature_table(ctx), labels
                )
            )
    return logged


def write_feature_log(logged: Iterable[LoggedQuestion], path: Path) -> int:
    """One JSON line per (question, candidate): topic, question, chunk, label, features."""
    rows = 0
    with path.open("w", encoding="utf-8") as out:
        for number, item in enumerate(logged):
            for chunk_id, label, values in zip(
                item.chunk_ids, item.labels, item.table, strict=True
            ):
                line = {
                    "topic": item.topic,
                    "qid": number,
                    "question": item.question.question,
                    "chunk_id": chunk_id,
                    "label": int(label),
                    "features": dict(zip(FEATURE_NAMES, map(float, values), strict=True)),
                }
                out.write(json.dumps(line) + "\n")
                rows += 1
    return rows


def _trainable(logged: Sequence[LoggedQuestion]) -> list[LoggedQuestion]:
    """Questions with both a relevant and an irrelevant candidate: the only ones a ranking
    loss learns from."""
    return [q for q in logged if 0 < q.labels.sum() < len(q.labels)]


def fit_linear(
    logged: Sequence[LoggedQuestion],
    names: tuple[str, ...] = FEATURE_NAMES,
    pairs_per_question: int = 400,
    seed: int = SEED,
) -> LinearScorer:
    """A linear scorer fitted on pairwise differences (a more relevant minus a less relevant
    candidate of the same question) with L2-regularised logistic regression."""
    from sklearn.linear_model import LogisticRegression

    usable = _trainable(logged)
    if not usable:
        raise InvalidInput("no question has both a relevant and an irrelevant candidate")
    everything = np.concatenate([q.table for q in usable])
    mean = everything.mean(axis=0).astype(np.float64)
    scale = everything.std(axis=0).astype(np.float64)
    scale[scale < 1e-6] = 1.0
    rng = np.random.default_rng(seed)
    diffs = []
    for q in usable:
        x = (q.table - mean) / scale
        better, worse = np.nonzero(q.labels[:, None] > q.labels[None, :])
        pairs = np.stack([better, worse], axis=1)
        if len(pairs) > pairs_per_question:
            pairs = pairs[rng.choice(len(pairs), pairs_per_question, replace=False)]
        # Every question counts the same, however many pairs it has.
        diffs.append((x[pairs[:, 0]] - x[pairs[:, 1]], np.full(len(pairs), 1.0 / len(pairs))))
    d = np.concatenate([x for x, _ in diffs])
    w = np.concatenate([w for _, w in diffs])
    features = np.concatenate([d, -d])
    target = np.concatenate([np.ones(len(d)), np.zeros(len(d))])
    model = LogisticRegression(fit_intercept=False, C=1.0, max_iter=2000)
    model.fit(features, target, sample_weight=np.concatenate([w, w]))
    return LinearScorer(names, mean, scale, model.coef_[0].astype(np.float64))


# LambdaMART settings for a few hundred questions: shallow trees, strong leaf minimums and
# subsampling, so that the ensemble learns patterns shared by many questions rather than one
# question's candidates. Picked among four settings by the leave-one-topic-out mean (README,
# "Ranking"): deeper trees fitted the training topics far better and the held-out ones no
# better. The same settings serve every fold.
LAMBDAMART_PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "ndcg_eval_at": [1, 3],
    "learning_rate": 0.05,
    "num_leaves": 3,
    "min_data_in_leaf": 200,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "lambdarank_truncation_level": 10,
    "num_threads": 1,
    "deterministic": True,
    "force_row_wise": True,
    "seed": SEED,
    "verbosity": -1,
}
LAMBDAMART_ROUNDS = 150


def fit_lambdamart(
    logged: Sequence[LoggedQuestion], names: tuple[str, ...] = FEATURE_NAMES, seed: int = SEED
) -> TreeScorer:
    import lightgbm

    usable = _trainable(logged)
    if not usable:
        raise InvalidInput("no question has both a relevant and an irrelevant candidate")
    data = lightgbm.Dataset(
        np.concatenate([q.table for q in usable]),
        label=np.concatenate([q.labels for q in usable]),
        group=[len(q.labels) for q in usable],
        feature_name=list(names),
        free_raw_data=True,
    )
    params = LAMBDAMART_PARAMS if seed == SEED else {**LAMBDAMART_PARAMS, "seed": seed}
    booster = lightgbm.train(params, data, num_boost_round=LAMBDAMART_ROUNDS)
    return TreeScorer(names, booster.model_to_string())


FITS = {"linear": fit_linear, "lambdamart": fit_lambdamart}


def fit(
    kind: str, logged: Sequence[LoggedQuestion], names: tuple[str, ...] = FEATURE_NAMES
) -> Scorer:
    if kind not in FITS:
        raise InvalidInput(f"unknown model kind {kind!r}: use one of {', '.join(FITS)}")
    return FITS[kind](logged, names)


def log_code_features(
    searcher: Searcher, questions: dict[str, Sequence[Question]]
) -> list[LoggedQuestion]:
    """Every question's candidate answer codes (from the passages `searcher` ranks first)
    with their feature rows and judgments: 2 for the question's first code, 1 for its other
    codes and alternatives, 0 for the rest. Questions without expected codes are left out."""
    logged = []
    for topic, items in questions.items():
        for question in items:
            if not question.codes:
                continue
            parsed, candidates = searcher.code_candidates(question.question)
            wanted = set(question.codes) | set(question.alt_codes)
            labels = np.asarray(
                [
                    2.0 if c.code == question.codes[0] else float(c.code in wanted)
                    for c in candidates
                ],
                dtype=np.float32,
            )
            logged.append(
                LoggedQuestion(
                    topic,
                    question,
                    [c.code for c in candidates],
                    code_table(parsed, candidates),
                    labels,
                )
            )
    return logged


def fit_models(
    searcher: Searcher,
    questions: dict[str, Sequence[Question]],
    logged: Sequence[LoggedQuestion],
    kind: str,
    code_kind: str,
) -> RankingModel:
    """The passage model from `logged`, then the code model from the codes the passages it
    ranks first cite (so the code model learns from the passages it will really see)."""
    passages = fit(kind, logged)
    ranked = Searcher(searcher.snapshot, searcher.embedder, RankingModel(passages))
    codes = log_code_features(ranked, questions)
    return RankingModel(passages, fit(code_kind, codes, CODE_FEATURE_NAMES) if codes else None)


def model_of(model: RankingModel, logged: Sequence[LoggedQuestion], **meta: Any) -> RankingModel:
    topics = sorted({q.topic for q in logged})
    return RankingModel(
        model.passages,
        model.codes,
        {
            "feature_version": FEATURE_VERSION,
            "code_feature_version": CODE_FEATURE_VERSION,
            "signals_version": SIGNALS_VERSION,
            "questions": len(logged),
            "trainable_questions": len(_trainable(logged)),
            "topics": topics,
            **meta,
        },
    )


@dataclass(frozen=True)
class CvRow:
    """One line of the cross-validation table: a topic's figures under one scorer."""

    scorer: str  # "hand" (today's hand-weighted), "<kind> out-of-topic", "<kind> in-sample"
    topic: str
    metrics: dict[str, float]


def candidate_recall(logged: Sequence[LoggedQuestion]) -> float:
    """Share of questions with at least one relevant passage among the candidates."""
    return sum(1 for q in logged if q.labels.sum() > 0) / len(logged) if logged else 0.0


def cross_validate(
    searcher: Searcher,
    questions: dict[str, list[Question]],
    kind: str,
    logged: Sequence[LoggedQuestion] | None = None,
    code_kind: str = "linear",
) -> list[CvRow]:
    """Leave-one-topic-out: for each topic, fit on the others and evaluate on it; plus the
    in-sample fit and the hand-weighted scorer on every topic. Rows end with each scorer's
    mean over topics (topic "mean"), then its figures by question kind, pooled over the
    topics' questions (topic "kind:dated", "kind:named_code_check", ...)."""
    logged = list(logged) if logged is not None else log_features(searcher, questions)
    snapshot, encoder = searcher.snapshot, searcher.embedder
    rows: list[CvRow] = []
    hand = Searcher(snapshot, encoder, None)
    whole = fit_models(searcher, questions, logged, kind, code_kind)
    in_sample = Searcher(snapshot, encoder, whole)
    results: dict[str, list[QuestionResult]] = {}

    def judge(scorer: str, topic: str, ranker: Searcher, items: list[Question]) -> None:
        report = evaluate(ranker, items)
        rows.append(CvRow(scorer, topic, report.metrics))
        results.setdefault(scorer, []).extend(report.results)

    for topic, items in questions.items():
        judge("hand", topic, hand, items)
        others = [q for q in logged if q.topic != topic]
        rest = {t: qs for t, qs in questions.items() if t != topic}
        model = fit_models(searcher, rest, others, kind, code_kind)
        judge(f"{kind} out-of-topic", topic, Searcher(snapshot, encoder, model), items)
        judge(f"{kind} in-sample", topic, in_sample, items)
    for scorer in dict.fromkeys(r.scorer for r in rows):
        mine = [r for r in rows if r.scorer == scorer]
        mean = {m: float(np.mean([r.metrics[m] for r in mine])) for m in mine[0].metrics}
        rows.append(CvRow(scorer, "mean", mean))
    for scorer, found in results.items():
        for question_kind, figures in figures_by_kind(found).items():
            rows.append(CvRow(scorer, f"kind:{question_kind}", figures))
    return rows


@dataclass(frozen=True)
class SeedSpread:
    """Out-of-topic passage ranking of one topic over several fitting seeds."""

    topic: str
    hit1: tuple[float, ...]  # one value a seed
    hit3: tuple[float, ...]


def _table_hits(scorer: Scorer, items: Sequence[LoggedQuestion]) -> tuple[float, float]:
    """hit@1 and hit@3 of `scorer` over logged candidates (ties broken by candidate order)."""
    first = third = 0
    for q in items:
        scores = scorer.score(q.table)
        order = np.lexsort((np.arange(len(scores)), -scores))
        first += bool(q.labels[order[0]] > 0) if len(order) else 0
        third += bool((q.labels[order[:3]] > 0).any()) if len(order) else 0
    return first / max(len(items), 1), third / max(len(items), 1)


def seed_spread(
    logged: Sequence[LoggedQuestion], kind: str, seeds: Sequence[int]
) -> list[SeedSpread]:
    """Leave-one-topic-out passage hit@1/hit@3 from the logged candidates, the passage model
    refitted with each seed (LightGBM's bagging and feature sampling, the linear model's pair
    sampling). How far the figures move from seed to seed is the noise a feature change must
    beat before it counts: a few hundred questions move a mean by a few hundredths."""
    if kind not in FITS:
        raise InvalidInput(f"unknown model kind {kind!r}: use one of {', '.join(FITS)}")
    spreads = []
    for topic in dict.fromkeys(q.topic for q in logged):
        rest = [q for q in logged if q.topic != topic]
        mine = [q for q in logged if q.topic == topic]
        found = [_table_hits(FITS[kind](rest, FEATURE_NAMES, seed=seed), mine) for seed in seeds]
        spreads.append(SeedSpread(topic, tuple(a for a, _ in found), tuple(b for _, b in found)))
    return spreads
