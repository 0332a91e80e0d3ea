"""Current rules end to end on a real index of texts from different years
(tests/data/dated_corpus.md), with the real model and the shipped ranker: statuses, history,
dated passages, the rule that no invalid code comes first, and the same fields over HTTP, MCP
and the CLI."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from conftest import DATED_CORPUS, make_settings
from fastapi.testclient import TestClient
from mcp import Client
from typer.testing import CliRunner

from api import create_app
from api.cli import app as cli_app
from api.mcp import create_mcp_server
from api.service import Service
from index import (
    AnswerCode,
    Embedder,
    Evidence,
    Explanation,
    Searcher,
    build_index,
    evaluate,
    load_current,
    load_questions,
)
from index.embed import DEFAULT_MODEL


@pytest.fixture(scope="module")
def dated(dated_index: Path, onnx_encoder) -> Searcher:
    return Searcher(load_current(dated_index, DEFAULT_MODEL), onnx_encoder)


@pytest.fixture(scope="module")
def dated_client(dated_index: Path, embedder: Embedder) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(dated_index), embedder=embedder)) as test_client:
        yield test_client


def codes_of(client: TestClient, question: str) -> list[dict]:
    reply = client.post("/v1/query", json={"question": question, "k": 3})
    assert reply.status_code == 200, reply.text
    return reply.json()["codes"]


def by_code(codes: list[dict]) -> dict[str, dict]:
    return {c["code"]: c for c in codes}


def test_the_current_year_is_the_newest_the_corpus_or_the_history_knows(dated: Searcher) -> None:
    assert dated.rules.current_year == 2024  # the corpus ends in 2021; J1010 came in 2024


def test_a_revised_code_from_an_old_passage_is_marked_dated(dated_client: TestClient) -> None:
    reply = dated_client.post(
        "/v1/query", json={"question": "lumbar puncture under fluoroscopy, 62270 + 77003?"}
    ).json()
    lp = by_code(reply["codes"])["62270"]
    assert lp["status"] == "revised"
    assert [(h["change"], h["year"]) for h in lp["history"]] == [("revised", 2020)]
    assert lp["history"][0]["source"].startswith("AMA CPT 2020")
    assert lp["dated"]["year"] == 2015 and lp["dated"]["words"] == "March 3, 2015"
    assert (lp["dated"]["change"]["change"], lp["dated"]["change"]["year"]) == ("revised", 2020)
    forum = next(p for p in reply["results"] if p["document"] == "forum_lp_fluoro_2015.txt")
    assert forum["date"] == {"year": 2015, "words": "March 3, 2015", "source": "passage"}
    assert [(d["code"], d["change"], d["year"]) for d in forum["dated"]] == [
        ("62270", "revised", 2020)
    ]
    newsletter = next(p for p in reply["results"] if p["document"] == "newsletter_lp_2020.txt")
    assert newsletter["date"]["year"] == 2020 and newsletter["dated"] == []


def test_a_deleted_code_gives_way_to_its_replacement_in_the_answer(dated: Searcher) -> None:
    old, guidance, new = (
        AnswerCode(code, "CPT", "I", score, "defined", (Evidence("x#0", code, "defined"),))
        for code, score in (("62311", 3.0), ("77003", 2.0), ("62323", 1.0))
    )
    ranked = dated.rules.current_first([old, guidance, new], 2024)
    assert [c.code for c in ranked] == ["62323", "62311", "77003"]
    assert "62311 is deleted as of 2024" in ranked[0].current_rule
    # For a 2016 date of service 62311 was right and stays first.
    assert dated.rules.current_first([old, guidance, new], 2016)[0].code == "62311"


def test_a_replacement_the_answer_lacks_comes_from_the_corpus_with_its_words(
    dated: Searcher,
) -> None:
    old = AnswerCode("62311", "CPT", "I", 3.0, "defined", (Evidence("x#0", "62311", "defined"),))
    guidance = AnswerCode("77003", "CPT", "I", 2.0, "add-on", ())
    ranked = dated.rules.current_first([old, guidance], 2024)
    assert [c.code for c in ranked][:2] in (["62322", "62311"], ["62323", "62311"])
    evidence = ranked[0].evidence[0]
    assert "62311 was deleted in 2017" in evidence.text
    assert evidence.chunk_id.startswith("update_epidural_2017.txt")


def test_a_renumbered_code_is_never_the_first_answer(dated_client: TestClient) -> None:
    codes = codes_of(dated_client, "is 76005 still valid for spinal fluoro guidance")
    assert codes[0]["code"] != "76005" and codes[0]["status"] in ("current", "revised")
    statuses = {c["code"]: c["status"] for c in codes}
    assert statuses.get("76005") in (None, "deleted")
    info = dated_client.get("/v1/codes/76005").json()
    assert info["status"] == "deleted"
    table = [h for h in info["history"] if h["source"] != "corpus"]
    assert [(h["change"], h["year"], h["replacements"]) for h in table] == [
        ("renumbered", 2007, ["77003"])
    ]
    stated = [h for h in info["history"] if h["source"] == "corpus"]
    assert stated and stated[0]["replacements"] == ["77003"]
    assert stated[0]["document"] == "bulletin_guidance_renumbering_2006.txt"
    assert "76005 became 77003" in stated[0]["text"]
    passages = {p["document"]: p for p in info["passages"]}
    assert passages["forum_spinal_guidance_2006.txt"]["date"]["year"] == 2006
    assert [d["change"] for d in passages["forum_spinal_guidance_2006.txt"]["dated"]] == [
        "renumbered"
    ]
    assert passages["bulletin_guidance_renumbering_2006.txt"]["dated"] == []


def test_a_range_partly_reassigned_later_is_flagged_on_the_old_passage(
    dated_client: TestClient,
) -> None:
    reply = dated_client.post(
        "/v1/query", json={"question": "genicular nerve radiofrequency ablation code", "k": 5}
    ).json()
    assert reply["codes"][0]["code"] == "64624"
    assert reply["codes"][0]["status"] == "current" and reply["codes"][0]["dated"] is None
    facet = next(p for p in reply["results"] if p["document"] == "forum_facet_rf_2011.txt")
    changes = {(d["code"], d["change"], d["year"]) for d in facet["dated"]}
    # 64622 itself went in 2012; 64624, inside its old "64622-64627", means genicular
    # destruction since 2020.
    assert {("64622", "deleted", 2012), ("64624", "added", 2020)} <= changes
    deleted = by_code(reply["codes"]).get("64622")
    assert deleted is None or deleted["status"] == "deleted"


def test_a_past_date_of_service_gets_that_years_code(dated_client: TestClient) -> None:
    today = codes_of(dated_client, "KUB single view abdomen film code")
    assert today[0]["code"] == "74018"
    past = codes_of(
        dated_client, "correcting a 2015 claim: KUB single view abdomen film, 74018 or 74000?"
    )
    assert past[0]["code"] == "74000" and past[0]["status"] == "current"
    assert "74018 is unassigned as of 2015" in past[0]["current_rule"]
    assert by_code(past)["74018"]["status"] == "unassigned"


def test_the_corpus_and_the_history_disagreeing_are_both_shown(dated_client: TestClient) -> None:
    info = dated_client.get("/v1/codes/27370").json()
    years = {(h["source"] == "corpus", h["year"]) for h in info["history"]}
    assert years == {(False, 2018), (True, 2017)}
    assert info["status"] == "deleted"


def test_a_code_only_the_history_knows_is_404_with_its_history(dated_client: TestClient) -> None:
    missing = dated_client.get("/v1/codes/76393")
    assert missing.status_code == 404
    assert "renumbered 2007 → 77021" in missing.json()["error"]["message"]


def mcp_search(index: Path, embedder: Embedder, question: str) -> tuple[dict, dict]:
    """The search tool's output schema and its reply to `question`, over MCP in process."""
    settings = make_settings(index)
    service = Service(settings, embedder)
    service.load()
    server = create_mcp_server(settings, lambda: service)

    async def run() -> tuple[dict, dict]:
        async with Client(server) as mcp_client:
            tools = {t.name: t for t in (await mcp_client.list_tools()).tools}
            found = await mcp_client.call_tool(
                "search_coding_passages", {"question": question, "k": 3}
            )
            return tools["search_coding_passages"].output_schema, found.structured_content

    return anyio.run(run)


def test_mcp_search_carries_the_same_history_as_http(
    dated_index: Path, embedder: Embedder, dated_client: TestClient
) -> None:
    question = "lumbar puncture under fluoroscopy, 62270 + 77003?"
    schema, reply = mcp_search(dated_index, embedder, question)
    http = dated_client.post("/v1/query", json={"question": question, "k": 3}).json()
    keep = ("code", "status", "history", "dated", "current_rule")
    assert [{k: c[k] for k in keep} for c in reply["codes"]] == [
        {k: c[k] for k in keep} for c in http["codes"]
    ]
    assert [(p["date"], p["dated"]) for p in reply["results"]] == [
        (p["date"], p["dated"]) for p in http["results"]
    ]
    answer_code = schema["$defs"]["AnswerCodeOut"]["properties"]
    assert {"status", "history", "dated", "current_rule"} <= set(answer_code)


def test_mcp_gives_a_past_date_of_service_that_years_code(
    dated_index: Path, embedder: Embedder
) -> None:
    question = "correcting a 2015 claim: KUB single view abdomen film, 74018 or 74000?"
    first = mcp_search(dated_index, embedder, question)[1]["codes"][0]
    assert first["code"] == "74000" and first["status"] == "current"
    assert "74018 is unassigned as of 2015" in first["current_rule"]


def test_codes_show_prints_the_history(dated_index: Path) -> None:
    result = CliRunner().invoke(
        cli_app, ["codes", "show", "62311", "--index-dir", str(dated_index)]
    )
    assert result.exit_code == 0, result.output
    assert '"status": "deleted"' in result.output
    assert '"replacements": [\n        "62322",\n        "62323"\n      ]' in result.output


def test_incremental_ingest_dates_and_reads_the_changes_of_new_texts(
    tmp_path: Path, embedder: Embedder
) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    for name in ("handout_epidural_2010.txt", "handout_kub_2015.txt"):
        shutil.copy(DATED_CORPUS / name, corpus / name)
    build_index([corpus], index_dir, embedder)
    first = Searcher(load_current(index_dir, DEFAULT_MODEL), None)
    assert not any(c.from_corpus for c in first.lookup("62311").history)
    shutil.copy(DATED_CORPUS / "update_epidural_2017.txt", corpus / "update_epidural_2017.txt")
    report = build_index([corpus], index_dir, embedder)
    assert report.changes.added == ("update_epidural_2017.txt",) and report.reused >= 2
    snapshot = load_current(index_dir, DEFAULT_MODEL)
    after = Searcher(snapshot, None)
    stated = [c for c in after.lookup("62311").history if c.from_corpus]
    assert [(c.change, c.year, c.replacements) for c in stated] == [
        ("deleted", 2017, ("62322", "62323"))
    ]
    ids = [c.id for c in snapshot.store.chunks]
    dates = snapshot.store.dates_of(ids)
    assert sorted((d.year, d.source) for d in dates.values()) == [
        (2010, "passage"),
        (2015, "passage"),
        (2017, "passage"),
    ]
    assert sorted(int(y) for y in snapshot.signals["passage_year"]) == [2010, 2015, 2017]
    states = dict(zip(ids, snapshot.signals["states_change"].tolist(), strict=True))
    assert states == {
        "handout_epidural_2010.txt#0": 0,
        "handout_kub_2015.txt#0": 0,
        "update_epidural_2017.txt#0": 1,
    }


def test_eval_reports_the_figures_of_each_question_kind(dated: Searcher, tmp_path: Path) -> None:
    questions = tmp_path / "questions.jsonl"
    rows = [
        {"question": "is 76005 still valid for spinal fluoro guidance", "gold": ["76005 became"],
         "codes": ["77003"], "kind": "dated"},
        {"question": "KUB single view abdomen film code", "gold": ["is 74018"],
         "codes": ["74018"], "kind": "which_code"},
        {"question": "genicular nerve radiofrequency ablation code", "gold": ["64624, imaging"],
         "codes": ["64624"], "kind": "which_code"},
    ]  # fmt: skip
    questions.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    report = evaluate(dated, load_questions(questions))
    assert set(report.kinds) == {"dated", "which_code"}
    assert report.kinds["dated"]["questions"] == 1 and report.kinds["which_code"]["questions"] == 2
    assert report.metrics["first_deleted"] == 0.0
    assert report.metrics["deleted_first_replaced"] == 0.0
    assert all(r.first_status in ("current", "revised") for r in report.results)


def test_a_passage_announcing_the_change_is_not_dated_advice(dated: Searcher) -> None:
    def dated_by(chunk_id: str) -> object:
        code = AnswerCode("76005", "CPT", "I", 1.0, "deleted", (Evidence(chunk_id, "", "deleted"),))
        codes, _ = dated.rules.apply(dated.rules.current_year, [code], [])
        return next(c for c in codes if c.code == "76005").dated

    assert dated_by("bulletin_guidance_renumbering_2006.txt#0") is None
    old = dated_by("forum_spinal_guidance_2006.txt#0")
    assert old is not None and (old.year, old.change.change, old.change.year) == (
        2006,
        "renumbered",
        2007,
    )


def test_the_current_year_can_be_set(dated_index: Path, embedder: Embedder) -> None:
    settings = make_settings(dated_index, current_year=2016)
    with TestClient(create_app(settings, embedder=embedder)) as client:
        assert client.get("/v1/codes/62311").json()["status"] == "current"
        assert client.get("/v1/codes/62323").json()["status"] == "unassigned"


def test_a_current_year_out_of_range_is_a_clear_error(dated_index: Path) -> None:
    result = CliRunner().invoke(
        cli_app,
        ["codes", "show", "62311", "--index-dir", str(dated_index)],
        env={"CPTQA_CURRENT_YEAR": "1066"},
    )
    assert result.exit_code != 0
    assert "CPTQA_CURRENT_YEAR" in result.output or "current_year" in result.output


def test_cptqa_query_prints_statuses_and_dated_passages(dated_index: Path) -> None:
    question = "correcting a 2015 claim: KUB single view abdomen film, 74018 or 74000?"
    result = CliRunner().invoke(
        cli_app, ["query", question, "--k", "3", "--index-dir", str(dated_index)]
    )
    assert result.exit_code == 0, result.output
    words = " ".join(result.output.split())
    assert "74000 (mentioned" in words and "74018 is unassigned as of 2015" in words
    assert "[unassigned]" in words


def test_explanations_follow_their_codes_and_a_code_brought_in_has_none(dated: Searcher) -> None:
    old = AnswerCode("62311", "CPT", "I", 3.0, "defined", (Evidence("x#0", "62311", "defined"),))
    guidance = AnswerCode("77003", "CPT", "I", 2.0, "add-on", ())
    first, second = (Explanation("linear", float(n), ()) for n in (1, 2))
    year = dated.rules.current_year
    codes, explanations = dated._current_rules(year, [old, guidance], [], [first, second])
    assert [c.code for c in codes][1:] == ["62311", "77003"]
    assert explanations == [None, first, second]


def test_the_ranking_building_blocks_read_a_chunk_and_its_year(dated: Searcher) -> None:
    store = dated.snapshot.store
    row = next(i for i, c in enumerate(store.chunks) if c.id.startswith("forum_facet_rf_2011"))
    chunk, year = store.chunks[row], int(dated.snapshot.signals["passage_year"][row])
    assert year == 2011
    now = {(c.code, c.change, c.year) for c in dated.rules.passage_changes(chunk, year, 2024)}
    assert {("64622", "deleted", 2012), ("64624", "added", 2020)} <= now
    # Asked about a 2015 date of service, the 2020 reuse of 64624 is not yet a change.
    then = {(c.code, c.year) for c in dated.rules.passage_changes(chunk, year, 2015)}
    assert ("64622", 2012) in then and all(y <= 2015 for _, y in then)
    announcing = next(c for c in store.chunks if c.id.startswith("update_epidural_2017"))
    assert dated.rules.states_change_of(announcing) == {"62311"}
    assert dated.rules.passage_changes(announcing, 2017, 2024) == ()
    assert dated.rules.year_of(dated.parse("correcting a 2019 claim").service_year) == 2019
    # never later than the current year; no date of service: the current year
    assert dated.rules.year_of(dated.parse("a 2031 claim").service_year) == 2024
    assert dated.rules.year_of(2031) == dated.rules.year_of(None) == 2024
    # The parsed question carries the date of service it names, read once.
    assert dated.parse("correcting a claim w/ DOS 11/2010: 64483 + 77003?").service_year == 2010
    assert dated.rules.year_of(dated.parse("which fluoro code, 2031 claim").service_year) == 2024
    assert dated.parse("which fluoro code for occipital nerve block").service_year is None


def test_each_document_has_the_year_it_speaks_for(dated_client: TestClient) -> None:
    documents = dated_client.get("/v1/index").json()["documents"]
    forum = documents["forum_lp_fluoro_2015.txt"]
    assert (forum["year"], forum["year_words"]) == (2015, "March 3, 2015")
    assert documents["handout_kub_2015.txt"]["year_words"] == "rev. 2015"


def test_a_new_stated_version_rewrites_the_snapshot_without_embedding(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import index.build

    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    shutil.copy(DATED_CORPUS / "update_epidural_2017.txt", corpus / "update_epidural_2017.txt")
    build_index([corpus], index_dir, embedder)
    assert not build_index([corpus], index_dir, embedder).written  # nothing changed
    monkeypatch.setattr(index.build, "STATED_VERSION", index.build.STATED_VERSION + 1)
    again = build_index([corpus], index_dir, embedder)
    assert again.written and again.embedded == 0
    manifest = load_current(index_dir, DEFAULT_MODEL).manifest
    assert manifest["stated_version"] == index.build.STATED_VERSION


# --- the code-history features of the answer-code ranker --------------------------------------


def test_the_code_features_read_the_code_history(dated: Searcher) -> None:
    from index.code_features import CODE_FEATURE_NAMES, code_table

    question = "we still bill 62311 for a lumbar interlaminar epidural, is that right?"
    parsed, candidates = dated.code_candidates(question)
    rows = {
        c.code: dict(zip(CODE_FEATURE_NAMES, map(float, row), strict=True))
        for c, row in zip(candidates, code_table(parsed, candidates), strict=True)
    }
    # Deleted in 2017 (the year is 2024), but the question's subject: not an answer to avoid.
    assert rows["62311"]["invalid_unasked"] == 0.0
    assert rows["62311"]["named_changed"] == 1.0
    assert rows["62323"]["invalid_unasked"] == 0.0
    assert rows["62323"]["succeeds_named"] == 1.0  # 62311's replacement
    assert rows["62323"]["named_changed"] == 0.0


def test_a_deleted_code_the_question_does_not_name_is_an_answer_to_avoid(dated: Searcher) -> None:
    from index.code_features import CODE_FEATURE_NAMES, code_table

    parsed, candidates = dated.code_candidates("lumbar interlaminar epidural steroid injection")
    rows = {
        c.code: dict(zip(CODE_FEATURE_NAMES, map(float, row), strict=True))
        for c, row in zip(candidates, code_table(parsed, candidates), strict=True)
    }
    assert rows["62311"]["invalid_unasked"] == 1.0  # the 2010 handout's code, deleted in 2017
    assert rows["62323"]["invalid_unasked"] == 0.0
    assert rows["62323"]["succeeds_named"] == 0.0  # the question names no code
