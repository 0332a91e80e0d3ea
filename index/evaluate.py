"""Retrieval quality over a JSONL of questions: hit@1/3/5, MRR@10, nDCG@10, code recall@3,
answer-code@1 and latency, with the questions that missed.

A question line is `{"question", "gold": [substrings of an answering passage], "codes": [...],
"alt_codes": [...]}`. A passage is gold when it contains any gold substring, whitespace
collapsed on both sides. Code recall@3 is the share of `codes` cited by the top 3 passages;
answer-code@1 asks whether the first answer code is in `codes` or `alt_codes`. Questions with no
expected codes do not count towards the two code metrics.

Current rules (index/current.py): `first_deleted` is the share of answers whose first code is
deleted as of the year the question is about, and `deleted_first_replaced` counts those where
the corpus writes one of its replacements (the rule says never). A question line's `kind`
("dated", "named_code_check", ...) groups the same figures by kind (`EvalReport.kinds`,
`figures_by_kind`).
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from index.search import Searcher
from ingest import InvalidInput, extract_codes, unique_codes

DEPTH = 10


@dataclass(frozen=True)
class Question:
    question: str
    gold: tuple[str, ...]
    codes: tuple[str, ...] = ()
    alt_codes: tuple[str, ...] = ()
    kind: str = ""


@dataclass(frozen=True)
class QuestionResult:
    question: Question
    gold_rank: int | None  # 1-based rank of the first gold passage within DEPTH
    ndcg: float
    code_recall: float | None
    answer_code: str | None
    answer_code_right: bool | None
    took_ms: float
    first_status: str | None = None  # the first answer code's status (None: no code)
    replacement_offered: bool = False  # it is deleted and the corpus writes a replacement


@dataclass(frozen=True)
class EvalReport:
    results: list[QuestionResult]
    metrics: dict[str, float] = field(default_factory=dict)
    kinds: dict[str, dict[str, float]] = field(default_factory=dict)  # figures by `kind`

    def misses(self) -> list[QuestionResult]:
        """Questions whose gold passage is not first or whose first answer code is wrong."""
        return [r for r in self.results if r.gold_rank != 1 or r.answer_code_right is False]


def _jsonl_rows(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed row) of every non-blank line; bad JSON names its line."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path}:{number}: not JSON ({exc})") from exc


def load_questions(path: str | Path) -> list[Question]:
    """Read a question file; a malformed line raises `InvalidInput` naming the line."""
    questions = []
    for number, row in _jsonl_rows(path):
        try:
            questions.append(
                Question(
                    question=str(row["question"]),
                    gold=tuple(row.get("gold") or ()),
                    codes=tuple(row.get("codes") or ()),
                    alt_codes=tuple(row.get("alt_codes") or ()),
                    kind=str(row.get("kind") or ""),
                )
            )
        except (KeyError, TypeError) as exc:
            raise InvalidInput(f"{path}:{number}: not a question line ({exc})") from exc
    if not questions:
        raise InvalidInput(f"{path}: no questions")
    return questions


def evaluate(searcher: Searcher, questions: Sequence[Question]) -> EvalReport:
    """Run every question through `searcher` and score the rankings."""
    searcher.search(questions[0].question, 1)  # warm up so latency is steady-state
    chunks = searcher.snapshot.store.chunks
    results = []
    for question in questions:
        gold = [_collapse(g) for g in question.gold]
        relevant_total = sum(1 for c in chunks if _is_gold(c.text, gold))
        result = searcher.search(question.question, DEPTH)
        flags = [_is_gold(hit.chunk.text, gold) for hit in result.hits]
        scored = _score(question, result, flags, relevant_total)
        results.append(_with_status(scored, result, searcher))
    return EvalReport(results, _aggregate(results), figures_by_kind(results))


def figures_by_kind(results: Sequence[QuestionResult]) -> dict[str, dict[str, float]]:
    """The figures of each question `kind` on its own (questions without a kind: none)."""
    kinds: dict[str, list[QuestionResult]] = {}
    for r in results:
        if r.question.kind:
            kinds.setdefault(r.question.kind, []).append(r)
    return {kind: _aggregate(group) for kind, group in sorted(kinds.items())}


def _with_status(scored: QuestionResult, result, searcher: Searcher) -> QuestionResult:
    if not result.codes:
        return scored
    first = result.codes[0]
    glossary = searcher.snapshot.store.glossary
    offered = first.status == "deleted" and any(
        code in glossary.standalone for code in searcher.rules.history.replacement_of(first.code)
    )
    return replace(scored, first_status=first.status, replacement_offered=offered)


def _score(question: Question, result, flags: list[bool], relevant_total: int) -> QuestionResult:
    gold_rank = next((i for i, flag in enumerate(flags, start=1) if flag), None)
    dcg = sum(1.0 / math.log2(i + 1) for i, flag in enumerate(flags, start=1) if flag)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(relevant_total, DEPTH) + 1))
    code_recall = answer_code = right = None
    if question.codes:
        cited = {m.code for hit in result.hits[:3] for m in hit.chunk.codes}
        code_recall = sum(c in cited for c in question.codes) / len(question.codes)
        answer_code = result.codes[0].code if result.codes else None
        right = answer_code in set(question.codes) | set(question.alt_codes)
    return QuestionResult(
        question=question,
        gold_rank=gold_rank,
        ndcg=dcg / ideal if ideal else 0.0,
        code_recall=code_recall,
        answer_code=answer_code,
        answer_code_right=right,
        took_ms=result.took_ms,
    )


def _aggregate(results: list[QuestionResult]) -> dict[str, float]:
    n = len(results)
    with_codes = [r for r in results if r.code_recall is not None]
    latencies = sorted(r.took_ms for r in results)
    answered = [r for r in results if r.first_status is not None]

    def hit(k: int) -> float:
        return sum(1 for r in results if r.gold_rank is not None and r.gold_rank <= k) / n

    return {
        "questions": float(n),
        "hit@1": hit(1),
        "hit@3": hit(3),
        "hit@5": hit(5),
        "mrr@10": sum(1.0 / r.gold_rank for r in results if r.gold_rank) / n,
        "ndcg@10": sum(r.ndcg for r in results) / n,
        "code_recall@3": (
            sum(r.code_recall or 0.0 for r in with_codes) / len(with_codes) if with_codes else 1.0
        ),
        "answer_code@1": (
            sum(1 for r in with_codes if r.answer_code_right) / len(with_codes)
            if with_codes
            else 1.0
        ),
        "first_deleted": (
            sum(1 for r in answered if r.first_status == "deleted") / len(answered)
            if answered
            else 0.0
        ),
        "deleted_first_replaced": float(sum(1 for r in results if r.replacement_offered)),
        "p50_ms": statistics.median(latencies),
        "p95_ms": _percentile(latencies, 95),
    }


def _percentile(values: list[float], percent: float) -> float:
    index = max(0, math.ceil(percent / 100.0 * len(values)) - 1)
    return values[index]


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _is_gold(passage: str, gold: list[str]) -> bool:
    collapsed = _collapse(passage)
    return any(g and g in collapsed for g in gold)


@dataclass(frozen=True)
class ExtractorFigures:
    """Micro-averaged precision and recall over some cases, the exact ones and the codes the
    extractor reported that the cases do not expect (false positives)."""

    precision: float
    recall: float
    cases: int
    exact: int  # cases whose codes (in order of first appearance) are exactly the expected
    false_positives: int


@dataclass(frozen=True)
class ExtractorReport:
    """Micro-averaged precision and recall of `ingest.codes` over cases, and the cases missed;
    `kinds` has the same figures for each case `kind` ("negative", "range", ...)."""

    precision: float
    recall: float
    cases: int
    exact: int  # cases whose codes (in order of first appearance) are exactly the expected
    misses: list[tuple[str, list[str], list[str]]]  # (text, expected, got)
    false_positives: int = 0
    kinds: dict[str, ExtractorFigures] = field(default_factory=dict)


def is_extractor_file(path: str | Path) -> bool:
    """True when the first line of a JSONL file is an extractor case (`text` and `codes`)."""
    try:
        _, row = next(_jsonl_rows(path))
    except (StopIteration, InvalidInput):
        return False
    return isinstance(row, dict) and "text" in row and "question" not in row


def evaluate_extractor(path: str | Path) -> ExtractorReport:
    """Run the code extractor over `{"text", "codes", "kind"?}` cases (no kind: "-")."""
    scored: list[tuple[str, list[str], list[str], str]] = []
    for number, row in _jsonl_rows(path):
        try:
            text, expected = str(row["text"]), list(row["codes"])
        except (KeyError, TypeError) as exc:
            raise InvalidInput(f"{path}:{number}: not an extractor case ({exc})") from exc
        kind = str(row.get("kind") or "-")
        scored.append((text, expected, unique_codes(extract_codes(text)), kind))
    if not scored:
        raise InvalidInput(f"{path}: no extractor cases")
    overall = _extractor_figures(scored)
    by_kind: dict[str, list[tuple[str, list[str], list[str], str]]] = {}
    for case in scored:
        by_kind.setdefault(case[3], []).append(case)
    return ExtractorReport(
        precision=overall.precision,
        recall=overall.recall,
        cases=overall.cases,
        exact=overall.exact,
        misses=[(t, e, g) for t, e, g, _ in scored if g != e],
        false_positives=overall.false_positives,
        kinds={kind: _extractor_figures(cases) for kind, cases in sorted(by_kind.items())},
    )


def _extractor_figures(cases: list[tuple[str, list[str], list[str], str]]) -> ExtractorFigures:
    true_positives = predicted = expected_total = 0
    for _, expected, got, _ in cases:
        true_positives += len(set(got) & set(expected))
        predicted += len(set(got))
        expected_total += len(set(expected))
    return ExtractorFigures(
        precision=true_positives / predicted if predicted else 1.0,
        recall=true_positives / expected_total if expected_total else 1.0,
        cases=len(cases),
        exact=sum(1 for _, expected, got, _ in cases if got == expected),
        false_positives=predicted - true_positives,
    )
