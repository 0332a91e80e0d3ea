"""Retrieval on the real model and the real FAISS and BM25 indexes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS

from index import Embedder, Searcher, build_index, load_current
from index.rows import best_code_rows, top_rows

EXAMPLE = "which fluoro code for occipital nerve block"
MODEL = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def seed_searcher(seed_index: Path, embedder: Embedder) -> Searcher:
    return Searcher(load_current(seed_index, MODEL), embedder)


@pytest.fixture(scope="module")
def dev_searcher(dev_index: Path, embedder: Embedder) -> Searcher:
    return Searcher(load_current(dev_index, MODEL), embedder)


# The README's example on the default corpus. Beside the first dev corpus alone the learned
# ranker answers it with 64490 first and 77002 second (README, "Ranking": a known miss; with
# every public text indexed 77002 is first again). No rule is added for one question.
@pytest.mark.parametrize("searcher_name", ["seed_searcher"])
def test_example_question_finds_the_non_spinal_passage_with_77002_in_top_3(
    searcher_name: str, request: pytest.FixtureRequest
) -> None:
    searcher: Searcher = request.getfixturevalue(searcher_name)
    hits = searcher.search(EXAMPLE, 3).hits
    answering = [h for h in hits if "for non-spinal procedures" in h.chunk.text]
    assert answering, [h.chunk.text[:80] for h in hits]
    assert "77002" in {m.code for m in answering[0].chunk.codes}


def test_results_are_ranked_and_carry_their_source(seed_searcher: Searcher) -> None:
    result = seed_searcher.search("diagnostic lumbar puncture cpt", 5)
    assert [h.rank for h in result.hits] == [1, 2, 3, 4, 5]
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)
    for hit in result.hits:
        assert hit.document.text[hit.chunk.start : hit.chunk.end] == hit.chunk.text


def test_answer_codes_come_with_evidence_from_the_passages(seed_searcher: Searcher) -> None:
    result = seed_searcher.search(EXAMPLE, 5)
    assert result.codes
    top_passage_ids = {h.chunk.id for h in seed_searcher.search(EXAMPLE, 5).hits}
    for code in result.codes:
        assert code.evidence
        for evidence in code.evidence:
            assert evidence.chunk_id in top_passage_ids
            assert code.code in evidence.text


def test_a_question_that_names_a_code_ranks_passages_citing_it_first(
    dev_searcher: Searcher,
) -> None:
    hits = dev_searcher.search("76001", 3).hits
    assert "76001" in {m.code for m in hits[0].chunk.codes}


def test_k_bounds_the_number_of_passages(dev_searcher: Searcher) -> None:
    assert len(dev_searcher.search(EXAMPLE, 1).hits) == 1
    assert len(dev_searcher.search(EXAMPLE, 12).hits) == 12


def test_ingesting_the_same_files_twice_gives_identical_rankings(
    tmp_path: Path, embedder: Embedder, seed_searcher: Searcher
) -> None:
    build_index([CORPUS], tmp_path / "again", embedder)
    again = Searcher(load_current(tmp_path / "again", MODEL), embedder)
    assert again.snapshot.store.chunks == seed_searcher.snapshot.store.chunks
    for question in (EXAMPLE, "lumbar puncture done with CT guidance", "what is fluoroscopy"):
        first = [h.chunk.id for h in seed_searcher.search(question, 5).hits]
        second = [h.chunk.id for h in again.search(question, 5).hits]
        assert first == second


@pytest.mark.parametrize("searcher_name", ["seed_searcher"])
def test_example_answers_77002_first_not_77003_or_the_asked_about_64405(
    searcher_name: str, request: pytest.FixtureRequest
) -> None:
    searcher: Searcher = request.getfixturevalue(searcher_name)
    codes = [c.code for c in searcher.search(EXAMPLE, 5).codes]
    assert codes[0] == "77002", codes


def test_when_a_kind_of_code_is_asked_for_the_passage_stating_it_leads(
    dev_searcher: Searcher,
) -> None:
    # "fluoroscopic guidance code for ...": the policy passage on epidural codes ranks first
    # by its words, but the passage that states the fluoroscopic guidance code answers.
    result = dev_searcher.search("fluoroscopic guidance code for an epidural steroid injection", 3)
    assert result.codes[0].code == "77003"
    assert "77003" in {m.code for m in result.hits[0].chunk.codes}


def test_the_code_next_to_the_questions_words_wins_within_a_sentence(
    seed_searcher: Searcher,
) -> None:
    # "62270 is purely diagnostic and 62272 is therapeutic (i.e., used to decrease
    # intrathecal pressure)": the words near each code decide between them.
    result = seed_searcher.search("LP used to lower intrathecal pressure, therapeutic", 5)
    ranked = [c.code for c in result.codes]
    assert ranked.index("62272") < ranked.index("62270"), ranked


def test_copies_of_a_passage_do_not_crowd_the_top_k(embedder, tmp_path) -> None:
    from index import build_index, load_current

    rule = "Use 77002 for fluoroscopic guidance of non-spinal needle placement, such as a knee."
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("a", "b", "c"):
        (corpus / f"{name}.txt").write_text(f"Tip sheet {name}\n\n{rule}\n", "utf-8")
    (corpus / "d.txt").write_text("Notes\n\n77003 is for spinal injections.\n", "utf-8")
    build_index([corpus], tmp_path / "store", embedder)
    searcher = Searcher(load_current(tmp_path / "store", embedder.name), embedder)
    texts = [h.chunk.text for h in searcher.search("fluoro for a knee injection", 3).hits]
    assert sum(rule in t for t in texts) == 1, texts
    assert any("77003" in t for t in texts)


@pytest.mark.parametrize("size", [50, 5_000, 100_000, 400_000])
@pytest.mark.parametrize("density", [0.0, 0.002, 0.3])
def test_the_lexical_top_rows_are_the_best_positive_ones(size: int, density: float) -> None:
    # Large arrays take the sampled-floor path; ties (3.0) must still break by row.
    rng = np.random.default_rng(size)
    scores = np.zeros(size, dtype=np.float32)
    hit = rng.random(size) < density
    scores[hit] = rng.random(int(hit.sum())).astype(np.float32) * 10
    scores[hit & (rng.random(size) < 0.3)] = 3.0
    for k in (1, 100, 300):
        positive = np.flatnonzero(scores > 0).tolist()
        expected = sorted(positive, key=lambda row: (-float(scores[row]), row))[:k]
        assert top_rows(scores, k) == expected


@pytest.mark.parametrize("size", [10, 450, 20_000])
def test_rows_citing_named_codes_rank_by_codes_then_bm25_then_row(size: int) -> None:
    # Above 4 k rows only the rows that can make the cut are sorted; the order must not change.
    rng = np.random.default_rng(size)
    rows = np.sort(rng.choice(10 * size, size, replace=False)).astype(np.int64)
    matched = rng.integers(1, 3, size)
    bm25 = np.round(rng.random(size) * 4, 1).astype(np.float32)  # many ties
    for k in (1, 100):
        expected = sorted(range(size), key=lambda i: (-matched[i], -bm25[i], rows[i]))[:k]
        assert best_code_rows(rows, matched, bm25, k) == [int(rows[i]) for i in expected]
