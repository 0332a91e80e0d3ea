"""Leave-one-topic-out on the public sets, in CI: the learned ranker fitted on four topics and
judged on the fifth, for each topic, with every public text indexed (README, "Ranking").

The floors are what `cptqa eval --cv topic` measured when they were set, less a margin of about
two questions a topic (floating-point ties and LightGBM's summation order may differ on another
CPU); raise them when the ranker improves, never lower them to make a change pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from index import Searcher, build_index, load_current
from index.train import cross_validate, load_public_sets, log_features

SETS = Path(__file__).resolve().parent / "data" / "public_sets.json"
# Measured 2026-12-07 (snapshot format 8, code features v3): out-of-topic mean hit@1 0.613,
# hit@3 0.826, MRR@10 0.729, answer-code@1 0.743 (the verdicts read beyond the extractor's
# roles, the code a sentence points to, and the stated changes of tables); hand-weighted 0.530,
# 0.800, 0.677, 0.726.
OUT_OF_TOPIC_FLOORS = {"hit@1": 0.58, "hit@3": 0.79, "mrr@10": 0.70, "answer_code@1": 0.72}
# By question kind, pooled over the held-out topics (34 dated and 48 named-code-check
# questions): answer-code@1 measured 0.774 and 0.617, the share of answers whose first code is
# deleted 0.000 and 0.000. Before the lexical vocabulary was sorted, fresh builds differed
# with the process's hash seed (README, "Tried and dropped: code features v4"): three on an
# Intel Xeon gave hit@1 0.594-0.604, answer-code@1 0.739-0.750, dated 0.742-0.774 and
# named-code-check 0.596-0.617; now every build there gives 0.600, 0.757, 0.774 and 0.617. The
# kind floors allow two questions under the lowest of those.
KIND_FLOORS = {"dated": 0.68, "named_code_check": 0.55}


@pytest.fixture(scope="module")
def public_searcher(tmp_path_factory: pytest.TempPathFactory, onnx_encoder) -> Searcher:
    sets = load_public_sets(SETS)
    index_dir = tmp_path_factory.mktemp("public-index")
    build_index(sets.corpora, index_dir, lambda: onnx_encoder, model=onnx_encoder.name)
    return Searcher(load_current(index_dir, onnx_encoder.name), onnx_encoder, None)


def test_the_learned_ranker_out_of_topic_stays_above_its_floors(
    public_searcher: Searcher,
) -> None:
    questions = load_public_sets(SETS).questions()
    logged = log_features(public_searcher, questions)
    # Every question has a relevant passage among its candidates.
    assert all(q.labels.sum() > 0 for q in logged)
    rows = cross_validate(public_searcher, questions, "lambdamart", logged, "linear")
    means = {r.scorer: r.metrics for r in rows if r.topic == "mean"}
    learned, hand = means["lambdamart out-of-topic"], means["hand"]
    for metric, floor in OUT_OF_TOPIC_FLOORS.items():
        assert learned[metric] >= floor, (metric, learned)
    kinds = {r.topic: r.metrics for r in rows if r.scorer == "lambdamart out-of-topic"}
    for kind, floor in KIND_FLOORS.items():
        assert kinds[f"kind:{kind}"]["answer_code@1"] >= floor, (kind, kinds[f"kind:{kind}"])
        assert kinds[f"kind:{kind}"]["first_deleted"] <= 0.03, (kind, kinds[f"kind:{kind}"])
    # Out of topic, the learned ranker beats the hand-weighted scorer it replaced.
    assert learned["hit@1"] > hand["hit@1"] and learned["mrr@10"] > hand["mrr@10"]
