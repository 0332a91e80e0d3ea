"""Retrieval quality on the public dev sets as a regression test, and `cptqa eval` itself.

The floors are what `make eval` measured when they were set (README, "Retrieval quality"),
rounded down; raise them when the system improves, never lower them to make a change pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from index import Embedder, Searcher, evaluate, load_current, load_questions
from index.encoder import OnnxEncoder
from ingest import InvalidInput

DATA = Path(__file__).resolve().parent / "data"
SEED_QUESTIONS = DATA / "dev_questions.jsonl"
EXTRA_QUESTIONS = DATA / "dev_questions_extra.jsonl"

# Floors for the learned ranker that ships (index/models/ranker.json) and for the hand-weighted
# scorer it replaced (the baseline row of `cptqa eval --cv topic`). Measured with `make eval`
# (2026-12-07, code features v3): learned, seeds: hit@1 0.867, hit@3 1.0, MRR 0.922, code
# recall 1.0, answer-code@1 0.8; beside the dev corpus 0.886, 0.971, 0.919, 1.0, 0.690.
# Hand-weighted (fitted to these 35 questions): 1.0, 1.0, 1.0, 1.0, 1.0 and 0.914, 1.0, 0.957,
# 1.0, 0.966. The learned ranker is judged out of topic on the public devset (README,
# "Ranking"); on these questions, which the hand weights were tuned on, it trails on answer
# codes. Reading more verdicts (index/verdicts.py) raised the out-of-topic answer-code@1 mean
# from 0.721 to 0.743 and moved the code model's weights: five close calls here went the other
# way (0.862 before, on an index of the seeds and the dev corpus alone). Floors allow one
# question of slack.
FLOORS = {
    ("learned", "seeds"): {
        "hit@1": 0.8,
        "hit@3": 0.93,
        "mrr@10": 0.88,
        "code_recall@3": 0.93,
        "answer_code@1": 0.73,
    },
    ("learned", "dev"): {
        "hit@1": 0.88,
        "hit@3": 0.94,
        "mrr@10": 0.9,
        "code_recall@3": 0.97,
        "answer_code@1": 0.65,
    },
    ("hand", "seeds"): {
        "hit@1": 0.93,
        "hit@3": 1.0,
        "mrr@10": 0.95,
        "code_recall@3": 1.0,
        "answer_code@1": 0.9,
    },
    ("hand", "dev"): {
        "hit@1": 0.88,
        "hit@3": 0.97,
        "mrr@10": 0.93,
        "code_recall@3": 0.96,
        "answer_code@1": 0.93,
    },
}


# Measured with the encoder that serves by default (ONNX fp32; test_encoder.py shows it ranks
# exactly as the torch model does).
@pytest.mark.parametrize("scorer", ["learned", "hand"])
@pytest.mark.parametrize("corpus", ["seeds", "dev"])
def test_quality_stays_above_its_floors(
    scorer: str, corpus: str, request: pytest.FixtureRequest, onnx_encoder: OnnxEncoder
) -> None:
    index = request.getfixturevalue("seed_index" if corpus == "seeds" else "dev_index")
    questions = load_questions(SEED_QUESTIONS)
    if corpus == "dev":
        questions += load_questions(EXTRA_QUESTIONS)
    snapshot = load_current(index, onnx_encoder.name)
    searcher = (
        Searcher(snapshot, onnx_encoder)
        if scorer == "learned"
        else Searcher(snapshot, onnx_encoder, None)
    )
    report = evaluate(searcher, questions)
    for metric, floor in FLOORS[(scorer, corpus)].items():
        assert report.metrics[metric] >= floor, (metric, report.metrics)


def test_gold_matching_collapses_whitespace(
    seed_index: Path, embedder: Embedder, tmp_path: Path
) -> None:
    questions = tmp_path / "q.jsonl"
    gold = "62270   Spinal\n puncture, lumbar"  # the passage has single spaces
    questions.write_text(json.dumps({"question": "diagnostic lumbar puncture", "gold": [gold]}))
    loaded = load_questions(questions)
    report = evaluate(Searcher(load_current(seed_index, embedder.name), embedder), loaded)
    assert report.results[0].gold_rank is not None


def test_a_malformed_question_line_names_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok", "gold": []}\n{"gold": ["no question"]}\n')
    with pytest.raises(InvalidInput, match="bad.jsonl:2"):
        load_questions(bad)


def test_cli_eval_reports_metrics_as_json(seed_index: Path) -> None:
    result = CliRunner().invoke(
        app, ["eval", str(SEED_QUESTIONS), "--index-dir", str(seed_index), "--json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["metrics"]["questions"] == 15
    assert len(body["questions"]) == 15
    assert {"hit@1", "hit@3", "hit@5", "mrr@10", "ndcg@10", "p50_ms"} <= set(body["metrics"])


def test_cli_eval_scores_the_code_extractor(tmp_path: Path) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        json.dumps({"text": "Bill 77003-26 and J3301.", "codes": ["77003", "J3301"]})
        + "\n"
        + json.dumps({"text": "Houston, TX 77002", "codes": ["77002"]})  # a wrong expectation
        + "\n"
    )
    result = CliRunner().invoke(app, ["eval", str(cases), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["extractor"][0]
    assert report["cases"] == 2 and report["exact"] == 1
    assert report["precision"] == 1.0 and report["recall"] == 2 / 3
    assert report["misses"][0]["got"] == []


def test_cli_eval_gives_extractor_figures_by_kind(tmp_path: Path) -> None:
    cases = tmp_path / "cases.jsonl"
    rows = [
        {"text": "Bill 64490-64492.", "codes": ["64490", "64491", "64492"], "kind": "range"},
        {"text": "Bill 64490-64492.", "codes": ["64490", "64492"], "kind": "range"},  # wrong
        {"text": "Location Houston, TX 77002", "codes": [], "kind": "negative"},
        {"text": "Call 1-800-555-0163 about 64450", "codes": ["64450"]},
    ]
    cases.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = CliRunner().invoke(app, ["eval", str(cases), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["extractor"][0]
    assert sorted(report["kinds"]) == ["-", "negative", "range"]
    ranges = report["kinds"]["range"]
    assert (ranges["cases"], ranges["exact"], ranges["false_positives"]) == (2, 1, 1)
    assert ranges["precision"] == 5 / 6 and ranges["recall"] == 1.0
    assert report["kinds"]["negative"] == {
        "precision": 1.0,
        "recall": 1.0,
        "cases": 1,
        "exact": 1,
        "false_positives": 0,
    }
    assert report["false_positives"] == 1
    printed = CliRunner().invoke(app, ["eval", str(cases)])
    assert "range" in printed.output and "1/2 exact, 1 false positives" in printed.output
