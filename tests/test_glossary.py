"""The code glossary built from the corpus, and looking a code up over HTTP and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli import app
from index import Embedder, Searcher, load_current
from ingest import ingest_paths
from ingest.glossary import build_glossary, suggest_codes

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


def test_glossary_takes_descriptors_from_the_corpus_with_provenance() -> None:
    result = ingest_paths([CORPUS])
    glossary = build_glossary(result.documents, result.chunks)
    texts = {d.id: d.text for d in result.documents}
    entry = glossary["62272"]
    assert entry.section == "Surgery"
    assert any(d.text.startswith("Spinal puncture, therapeutic") for d in entry.descriptors)
    for descriptor in entry.descriptors:
        chunk = next(c for c in result.chunks if c.id == descriptor.chunk_id)
        assert descriptor.text.split(" ...")[0][:30] in " ".join(chunk.text.split())
        assert descriptor.document_id in texts
    assert dict(entry.related)["62270"] >= 1
    assert glossary["77003"].roles.get("defined", 0) >= 1


def test_overlapping_chunks_do_not_count_a_mention_twice() -> None:
    result = ingest_paths([CORPUS])
    glossary = build_glossary(result.documents, result.chunks)
    for code, entry in glossary.items():
        written = {
            (c.document_id, m.start) for c in result.chunks for m in c.codes if m.code == code
        }
        assert entry.mentions == len(written)


def test_suggestions_are_one_edit_away_most_mentioned_first() -> None:
    known = {"62270": 7, "62272": 5, "62320": 1, "77002": 9}
    assert suggest_codes("62370", known, known) == ["62270", "62320"]
    assert suggest_codes("77020", known, known) == ["77002"]  # two digits swapped
    assert suggest_codes("99999", known, known) == []


def test_code_lookup_over_http(client: TestClient) -> None:
    body = client.get("/v1/codes/77002").json()
    assert body["code"] == "77002" and body["section"] == "Radiology"
    assert body["descriptors"] and all(d["chunk_id"] for d in body["descriptors"])
    assert all("77002" in [c["code"] for c in p["codes"]] for p in body["passages"])
    assert "77003" in [r["code"] for r in body["related"]]


def test_lookup_accepts_the_ways_coders_write_a_code(client: TestClient) -> None:
    assert client.get("/v1/codes/cpt%2077003").json()["code"] == "77003"


def test_malformed_code_is_422(client: TestClient) -> None:
    reply = client.get("/v1/codes/7700")
    assert reply.status_code == 422
    assert reply.json()["error"]["type"] == "invalid_input"


def test_code_the_corpus_lacks_is_404_with_suggestions(client: TestClient) -> None:
    reply = client.get("/v1/codes/62271")
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert error["type"] == "unknown_code"
    assert "62270" in error["suggestions"] and "62272" in error["suggestions"]


def test_62370_mentioned_once_is_shown_with_62270_as_a_hint(client: TestClient) -> None:
    """62370 is a real code (intrathecal pump refill) that the seed mentions once beside
    62270: the corpus's words about it are shown, and 62270 offered as the likely intent."""
    reply = client.get("/v1/codes/62370")
    assert reply.status_code == 200
    info = reply.json()
    assert info["code"] == "62370" and info["mentions"] == 1
    assert info["passages"] and "62370" in info["passages"][0]["text"]
    assert info["suggestions"][0] == "62270"
    assert "62270" in info["note"] and "once" in info["note"]
    assert client.get("/v1/codes/77002").json()["suggestions"] == []


def test_a_code_with_modifiers_is_looked_up_as_the_code(client: TestClient) -> None:
    for asked in ("77002-26", "77002-26-59", "77002 26"):
        reply = client.get(f"/v1/codes/{asked}")
        assert reply.status_code == 200, asked
        assert reply.json()["code"] == "77002"
    bad = client.get("/v1/codes/77002-2")
    assert bad.status_code == 422
    assert "with or without modifiers" in bad.json()["error"]["message"]


def test_cli_codes_show(seed_index: Path) -> None:
    result = CliRunner().invoke(app, ["codes", "show", "62272", "--index-dir", str(seed_index)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["code"] == "62272"
    modified = CliRunner().invoke(
        app, ["codes", "show", "77002-26", "--index-dir", str(seed_index)]
    )
    assert modified.exit_code == 0, modified.output
    assert json.loads(modified.output)["code"] == "77002"
    missing = CliRunner().invoke(app, ["codes", "show", "62271", "--index-dir", str(seed_index)])
    assert missing.exit_code == 4
    assert "did you mean" in missing.output


def test_question_that_is_only_a_code_ranks_its_passages_first(
    seed_index: Path, embedder: Embedder
) -> None:
    searcher = Searcher(load_current(seed_index, embedder.name), embedder)
    result = searcher.search("77003", 3)
    assert all("77003" in [m.code for m in h.chunk.codes] for h in result.hits)
    assert result.codes[0].code == "77003"


def test_a_lookup_needs_no_model(seed_index: Path) -> None:
    searcher = Searcher(load_current(seed_index, "all-MiniLM-L6-v2"), None)
    assert searcher.lookup("77003").passages


def test_glossary_counts_the_mentions_written_on_their_own(tmp_path: Path) -> None:
    from index.store import ChunkStore
    from index.storefile import write_store
    from ingest import Chunk, Document, extract_codes

    text = "Codes 64479-64484 and 70000-79999; report 64483 once. 64483 again."
    document = Document("d", "d.txt", text, "0" * 64)
    chunk = Chunk("d#0", "d", 0, len(text), text, tuple(extract_codes(text)))
    glossary = build_glossary([document], [chunk])
    assert glossary["64483"].mentions == 3 and glossary["64483"].standalone == 2
    assert glossary["64481"].standalone == 0 and glossary["64479"].standalone == 1
    assert glossary["70000"].standalone == 0 and glossary["79999"].standalone == 0
    path = tmp_path / "chunks.sqlite"
    write_store(path, [document], [chunk])
    store = ChunkStore.load(path, rows_by_code=None)  # type: ignore[arg-type]
    assert {"64479", "64483", "64484"} == store.glossary.standalone
    assert store.glossary["70000"].standalone == 0
    assert [m.names_section for m in store.chunks[0].codes] == [
        m.names_section for m in chunk.codes
    ]
