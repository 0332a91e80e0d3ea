"""The learned ranker: the parsed question, the feature registry, scorers stored as data, their
explanations over HTTP and the CLI, and `cptqa train` / `cptqa eval --cv topic` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from api.cli import app
from index import Searcher, load_current, load_questions
from index.code_features import CODE_FEATURE_NAMES, CODE_FEATURES
from index.features import FEATURE_NAMES, FEATURES
from index.question import parse_question
from index.scorer import (
    LinearScorer,
    RankingModel,
    TreeScorer,
    load_model,
    save_model,
)
from index.search import DEFAULT_MODEL_PATH, default_model
from index.train import (
    candidate_recall,
    fit_lambdamart,
    fit_linear,
    fit_models,
    log_code_features,
    log_features,
)
from ingest import IndexIncompatible
from ingest.dates import text_year

DATA = Path(__file__).resolve().parent / "data"
ROOT = DATA.parent.parent
MODEL = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def dev_questions() -> dict[str, list]:
    return {
        "seeds": load_questions(DATA / "dev_questions.jsonl"),
        "extra": load_questions(DATA / "dev_questions_extra.jsonl"),
    }


@pytest.fixture(scope="module")
def hand_searcher(dev_index: Path, onnx_encoder) -> Searcher:
    return Searcher(load_current(dev_index, MODEL), onnx_encoder, None)


@pytest.fixture(scope="module")
def logged(hand_searcher: Searcher, dev_questions: dict) -> list:
    return log_features(hand_searcher, dev_questions)


# --- the parsed question -----------------------------------------------------------------


def test_question_parse_reads_named_codes_and_what_it_says_of_them() -> None:
    parsed = parse_question("bilat TFESI L4-5 under CT, bill 64483 not 64493?")
    assert parsed.codes == ("64483", "64493")
    assert parsed.excluded_codes == {"64493"}
    assert parsed.wanted_codes == {"64483"}
    assert parsed.modalities == {"ct"}
    assert parsed.site == "spinal"
    assert parsed.laterality and parsed.levels >= 1


@pytest.mark.parametrize(
    ("question", "kind", "modalities"),
    [
        ("which fluoro code for occipital nerve block", "code", {"fluoroscopy"}),
        ("what modifier for bilateral SI joint injection", "modifier", set()),
        ("how many units of 64495 for three levels", "units", set()),
        ("is 77002 bundled into 20610 with US guidance", "bundling", {"ultrasound"}),
        ("what is the difference between 62270 and 62272", "definition", set()),
    ],
)
def test_question_parse_reads_the_kind_of_answer_and_modality(
    question: str, kind: str, modalities: set[str]
) -> None:
    parsed = parse_question(question)
    assert parsed.answer_kind == kind
    assert parsed.modalities == modalities


def test_question_parse_names_the_year_of_a_past_date_of_service() -> None:
    assert parse_question("correcting a 2019 claim for 62311").years == (2019,)
    assert parse_question("which code for 62311 today").years == ()


@pytest.mark.parametrize(
    ("text", "year"),
    [
        ("Posted 03/02/2016\n\nThat sheet died.", 2016),
        ("CODING TIP OF THE MONTH - March 2015", 2015),
        ("Effective January 1, 2020 a lumbar puncture ...", 2020),
        ("rev. 2021. See 62320-62327 for 2,019 claims", 2021),
        ("Report 64490 and 2020 units", None),  # a bare number is no date
    ],
)
def test_text_year_reads_dates_not_bare_numbers(text: str, year: int | None) -> None:
    assert text_year(text).year == year


# --- the feature registry ----------------------------------------------------------------


def test_every_feature_is_named_once_and_documented() -> None:
    for names, features in ((FEATURE_NAMES, FEATURES), (CODE_FEATURE_NAMES, CODE_FEATURES)):
        assert len(set(names)) == len(names)
        assert all(f.description and len(f.description) > 15 for f in features)


def test_the_feature_table_has_a_row_per_candidate_and_finite_values(
    hand_searcher: Searcher, logged: list
) -> None:
    for item in logged:
        assert item.table.shape == (len(item.chunk_ids), len(FEATURE_NAMES))
        assert np.isfinite(item.table).all()
    # Every dev question has a relevant passage among its candidates.
    assert candidate_recall(logged) == 1.0


def test_named_code_feature_marks_exactly_the_passages_citing_the_code(
    hand_searcher: Searcher,
) -> None:
    parsed = hand_searcher.parse("can I bill 77003 with 62270")
    query = hand_searcher._encode(parsed.text)
    lexical = hand_searcher.snapshot.lexical.score(
        hand_searcher.snapshot.lexical.query(parsed.lexical_text)
    )
    ctx = hand_searcher.feature_context(parsed, query, lexical)
    column = list(FEATURE_NAMES).index("named_code_share")
    values = [float(v) for v in np.asarray([f.compute(ctx) for f in FEATURES])[column]]
    for chunk, value in zip(ctx.chunks, values, strict=True):
        cited = {"77003", "62270"} & {m.code for m in chunk.codes}
        assert value == pytest.approx(len(cited) / 2)


def _column(ctx, name: str) -> np.ndarray:
    return np.asarray(FEATURES[list(FEATURE_NAMES).index(name)].compute(ctx))


def test_best_sentence_features_match_each_sentence_read_on_its_own(
    hand_searcher: Searcher,
) -> None:
    """The sentence features (read from cached word ids, all candidates at once) equal each
    candidate's sentences tokenized and weighed one by one, asked twice (cold and cached)."""
    from index.lexical import tokenize

    for question in ("which fluoro code for occipital nerve block", "62270 vs 62328 for an LP"):
        parsed = hand_searcher.parse(question)
        query = hand_searcher._encode(parsed.text)
        lexical = hand_searcher.snapshot.lexical.score(
            hand_searcher.snapshot.lexical.query(parsed.lexical_text)
        )
        for _ in range(2):
            ctx = hand_searcher.feature_context(parsed, query, lexical)
            weights, total = ctx.weights, sum(ctx.weights.values())
            assert total > 0
            sentences = hand_searcher.snapshot.sentences
            expected = {"sentence_coverage": [], "code_sentence_coverage": [], "code_sentence": []}
            for row, chunk in zip(ctx.candidates.rows, ctx.chunks, strict=True):
                shares, citing_shares, citing_cosines = [0.0], [0.0], [0.0]
                for n in range(int(sentences.offsets[row]), int(sentences.offsets[row + 1])):
                    start, end = (int(v) for v in sentences.spans[n])
                    words = set(
                        tokenize(chunk.text[max(0, start - chunk.start) : end - chunk.start])
                    )
                    share = sum(w for t, w in weights.items() if t in words) / total
                    cosine = float(np.asarray(sentences.vectors[n], dtype=np.float32) @ query)
                    shares.append(share)
                    if any(start <= m.start < end for m in chunk.codes):
                        citing_shares.append(share)
                        citing_cosines.append(cosine)
                expected["sentence_coverage"].append(max(shares))
                expected["code_sentence_coverage"].append(max(citing_shares))
                expected["code_sentence"].append(
                    max(citing_cosines) if len(citing_cosines) > 1 else 0.0
                )
            for name, values in expected.items():
                np.testing.assert_allclose(_column(ctx, name), values, atol=1e-5, err_msg=name)
            assert max(expected["sentence_coverage"]) > 0.3


def test_sentence_word_ids_stay_distinct_when_threads_read_at_once() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from index import feature_context

    words = [f"threadword{n}" for n in range(3000)]

    def read(offset: int) -> list[int]:
        return [feature_context._word_id(w) for w in words[offset:] + words[:offset]]

    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(read, range(0, 3000, 375)))
    ids = {w: feature_context._word_id(w) for w in words}
    assert len(set(ids.values())) == len(words)
    for offset, found in zip(range(0, 3000, 375), seen, strict=True):
        assert found == [ids[w] for w in words[offset:] + words[:offset]]
    numbers = list(feature_context._WORD_IDS.values())
    assert sorted(numbers) == list(range(len(numbers)))


# --- scorers -----------------------------------------------------------------------------


@pytest.mark.parametrize("fitter", [fit_linear, fit_lambdamart])
def test_contributions_sum_to_the_score(fitter, logged: list) -> None:
    scorer = fitter(logged)
    table = logged[0].table
    contributions, base = scorer.contributions(table)
    assert contributions.shape == table.shape
    np.testing.assert_allclose(contributions.sum(axis=1) + base, scorer.score(table), atol=1e-4)


def test_a_fitted_model_ranks_relevant_passages_above_the_rest_in_sample(logged: list) -> None:
    scorer = fit_linear(logged)
    hits = 0
    for item in logged:
        hits += item.labels[int(np.argmax(scorer.score(item.table)))] > 0
    assert hits / len(logged) >= 0.6


@pytest.mark.parametrize("fitter", [fit_linear, fit_lambdamart])
def test_a_model_file_round_trips_as_json(fitter, logged: list, tmp_path: Path) -> None:
    scorer = fitter(logged)
    path = tmp_path / "model.json"
    save_model(RankingModel(scorer), path)
    data = json.loads(path.read_text(encoding="utf-8"))  # plain JSON, no pickle
    assert data["passages"]["features"] == list(FEATURE_NAMES)
    loaded = load_model(path, FEATURE_NAMES)
    table = logged[1].table
    np.testing.assert_allclose(loaded.passages.score(table), scorer.score(table), atol=1e-9)
    assert isinstance(loaded.passages, LinearScorer | TreeScorer)


def test_a_model_trained_on_other_features_is_refused(logged: list, tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    save_model(RankingModel(fit_linear(logged)), path)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["passages"]["features"][0] = "retired_feature"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(IndexIncompatible, match="cptqa train"):
        load_model(path, FEATURE_NAMES)


def test_the_shipped_model_matches_the_feature_registry() -> None:
    assert DEFAULT_MODEL_PATH.exists(), "run `cptqa train`"
    model = default_model()
    assert model is not None and model.codes is not None
    assert model.passages.features == FEATURE_NAMES
    assert model.codes.features == CODE_FEATURE_NAMES


def test_the_code_model_learns_from_codes_of_the_passages_it_sees(
    hand_searcher: Searcher, dev_questions: dict, logged: list
) -> None:
    model = fit_models(hand_searcher, dev_questions, logged, "linear", "linear")
    assert model.codes is not None
    ranked = Searcher(hand_searcher.snapshot, hand_searcher.embedder, model)
    codes = log_code_features(ranked, dev_questions)
    assert codes and all(q.table.shape[1] == len(CODE_FEATURE_NAMES) for q in codes)
    # Labels: 2 for the question's first code, 1 for other right codes, 0 otherwise.
    assert {float(v) for q in codes for v in q.labels} <= {0.0, 1.0, 2.0}


# --- explanations ------------------------------------------------------------------------


def test_search_explains_each_passage_and_code_with_the_scorers_own_scores(
    dev_index: Path, onnx_encoder
) -> None:
    searcher = Searcher(load_current(dev_index, MODEL), onnx_encoder)
    result = searcher.search("which fluoro code for occipital nerve block", 3, explain=True)
    assert result.explanations is not None and len(result.explanations) == len(result.hits)
    for hit, why in zip(result.hits, result.explanations, strict=True):
        assert [f.name for f in why.features] == list(FEATURE_NAMES)
        total = why.base + sum(f.contribution for f in why.features)
        assert total == pytest.approx(hit.score, abs=1e-4)
    assert result.code_explanations is not None
    for code, why in zip(result.codes, result.code_explanations, strict=True):
        total = why.base + sum(f.contribution for f in why.features)
        assert total == pytest.approx(code.score, abs=1e-3)
    assert searcher.search("which fluoro code for occipital nerve block", 3).explanations is None


def test_http_query_explains_only_when_asked(client) -> None:
    plain = client.post("/v1/query", json={"question": "fluoro for a knee injection", "k": 2})
    assert plain.status_code == 200
    assert all(r["explanation"] is None for r in plain.json()["results"])
    asked = client.post(
        "/v1/query", json={"question": "fluoro for a knee injection", "k": 2, "explain": True}
    )
    body = asked.json()
    assert asked.status_code == 200
    for passage in body["results"]:
        why = passage["explanation"]
        total = why["base"] + sum(f["contribution"] for f in why["features"])
        assert total == pytest.approx(passage["score"], abs=1e-3)
        parts = [abs(f["contribution"]) for f in why["features"]]
        assert parts == sorted(parts, reverse=True)  # largest parts first
    assert body["codes"][0]["explanation"]["features"]


@pytest.mark.parametrize("explain", ["yes", 1, None])
def test_explain_that_is_not_a_boolean_is_422(client, explain: object) -> None:
    reply = client.post("/v1/query", json={"question": "fluoro for a knee", "explain": explain})
    assert reply.status_code == 422
    assert reply.json()["error"]["type"] == "invalid_input"


def test_the_shipped_model_records_the_feature_versions_it_was_trained_on() -> None:
    from index.code_features import CODE_FEATURE_VERSION
    from index.features import FEATURE_VERSION
    from index.signals import SIGNALS_VERSION

    meta = load_model(DEFAULT_MODEL_PATH, FEATURE_NAMES, CODE_FEATURE_NAMES).meta or {}
    assert meta["feature_version"] == FEATURE_VERSION
    assert meta["code_feature_version"] == CODE_FEATURE_VERSION
    assert meta["signals_version"] == SIGNALS_VERSION


def test_cli_query_explain_prints_why(seed_index: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "query",
            "which fluoro code for occipital nerve block",
            "--k",
            "1",
            "--explain",
            "--index-dir",
            str(seed_index),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "why (" in result.output and "sentence" in result.output


# --- train and cross-validate from the CLI -----------------------------------------------


@pytest.fixture(scope="module")
def small_sets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two topics over the seeds and the dev corpus: enough to run every fold for real."""
    folder = tmp_path_factory.mktemp("sets")
    sets = {
        "corpora": [str(ROOT / "corpus"), str(DATA / "dev_corpus")],
        "topics": {
            "seeds": [str(DATA / "dev_questions.jsonl")],
            "extra": [str(DATA / "dev_questions_extra.jsonl")],
        },
    }
    path = folder / "sets.json"
    path.write_text(json.dumps(sets), encoding="utf-8")
    return path


def test_cli_train_writes_a_model_that_loads(small_sets: Path, tmp_path: Path) -> None:
    out = tmp_path / "ranker.json"
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--sets",
            str(small_sets),
            "--kind",
            "linear",
            "--out",
            str(out),
            "--public-index",
            str(small_sets.parent / "index"),
        ],
    )
    assert result.exit_code == 0, result.output
    model = load_model(out, FEATURE_NAMES, CODE_FEATURE_NAMES)
    assert model.meta and model.meta["topics"] == ["extra", "seeds"]
    assert model.codes is not None


def test_cli_eval_cv_topic_reports_every_fold_and_the_baseline(small_sets: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--cv",
            "topic",
            "--sets",
            str(small_sets),
            "--kind",
            "linear",
            "--json",
            "--seeds",
            "2",
            "--public-index",
            str(small_sets.parent / "index"),
        ],
    )
    assert result.exit_code == 0, result.output
    reply = json.loads(result.output)
    # The passage model refitted with each seed: one figure a seed for every topic.
    assert {s["topic"] for s in reply["seeds"]} == {"seeds", "extra"}
    for spread in reply["seeds"]:
        assert len(spread["hit@1"]) == len(spread["hit@3"]) == 2
        assert all(
            0.0 <= a <= b <= 1.0 for a, b in zip(spread["hit@1"], spread["hit@3"], strict=True)
        )
    rows = reply["cv"]
    seen = {(r["scorer"], r["topic"]) for r in rows}
    for scorer in ("hand", "linear out-of-topic", "linear in-sample"):
        for topic in ("seeds", "extra", "mean"):
            assert (scorer, topic) in seen
    for r in rows:
        assert 0.0 <= r["metrics"]["hit@1"] <= 1.0


def test_cli_eval_features_logs_the_table_with_judgments(small_sets: Path, tmp_path: Path) -> None:
    log = tmp_path / "features.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--features",
            str(log),
            "--sets",
            str(small_sets),
            "--public-index",
            str(small_sets.parent / "index"),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert {line["topic"] for line in lines} == {"seeds", "extra"}
    assert set(lines[0]["features"]) == set(FEATURE_NAMES)
    assert any(line["label"] == 1 for line in lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--cv", "document"], "only cross-validation is by `topic`"),
        (["eval", "--seeds", "3", "questions.jsonl"], "--seeds goes with --cv topic"),
        (["eval", "--cv", "topic", "--kind", "forest"], "--kind 'forest'"),
        (["train", "--code-kind", "forest"], "--code-kind 'forest'"),
        (["eval", "--cv", "topic", "--sets", "/nonexistent/sets.json"], "no sets file"),
    ],
)
def test_bad_training_options_are_clear_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not a sets file"),
        ('{"corpora": [], "topics": {"only": []}}', "at least two topics"),
        ('{"topics": {"a": [], "b": []}}', "not a sets file"),
    ],
)
def test_a_bad_sets_file_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    sets = tmp_path / "sets.json"
    sets.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(app, ["train", "--sets", str(sets)])
    assert result.exit_code == 2
    assert message in result.output
