"""The chunk store keeps each document's text once: chunks read back exactly as written."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from index import load_current
from index.coderows import CodeRows
from index.sentences import SentenceVectors
from index.store import ChunkStore
from index.storefile import write_store
from index.textblocks import BLOCK_CHARS, join_blocks, split_blocks
from ingest import Chunk, Document, chunk_corpus
from ingest.dates import chunk_dates

# Accents, CJK, an astral emoji and a musical symbol (two UTF-16 units, four UTF-8 bytes):
# SQLite counts characters of TEXT, Python code points, UTF-8 bytes differ from both.
_PIECES = [
    "Fluoroscopic guidance 77003 for the épidurale injection at L4–L5. ",
    "Le médecin a codé 64483 et 64484 × 2 niveaux. ",
    "患者 was billed 99213-25 😀 then 20610 𝄞 with ultrasound 76942. ",
    "Plain ASCII follows: report 62323 once per session, not per level. ",
    "Codes 64479-64484 and CPT codes 70000-79999; 62311 was deleted in 2017. ",
]


def _text(length: int) -> str:
    text, i = "", 0
    while len(text) < length:
        text += _PIECES[i % len(_PIECES)]
        i += 1
    return text


def _documents() -> list[Document]:
    long = _text(5 * BLOCK_CHARS + 17)
    # An astral character exactly at a block boundary, on both sides of it.
    edge = "x" * (BLOCK_CHARS - 1) + "😀𝄞" + "y" * (BLOCK_CHARS - 1) + "😀 77003 done."
    return [
        Document("notes/long.txt", "/c/notes/long.txt", long, "a" * 64, "Long"),
        Document("edge#1.md", "/c/edge#1.md", edge, "b" * 64, "Edge", "markdown"),
        Document("empty.txt", "/c/empty.txt", "", "c" * 64),
        Document("p.pdf", "/c/p.pdf", _text(3000), "d" * 64, "P", "pdf", (0, 1200, 2500)),
    ]


def _chunks(documents: list[Document]) -> list[Chunk]:
    chunks = chunk_corpus(documents)
    # Spans the chunker would not make: one on a block boundary, one empty, one whole text.
    edge = documents[1]
    at = BLOCK_CHARS - 1
    own = len([c for c in chunks if c.document_id == edge.id])
    for n, (start, end) in enumerate([(at, at + 2), (at + 1, at + 1), (0, len(edge.text))]):
        text = edge.text[start:end]
        chunks.append(Chunk(f"{edge.id}#{own + n}", edge.id, start, end, text, (), "ctx é"))
    return chunks


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Document], list[Chunk]]:
    documents = _documents()
    chunks = _chunks(documents)
    path = tmp_path_factory.mktemp("store") / "chunks.sqlite"
    write_store(path, documents, chunks, chunk_dates(chunks, documents))
    return path, documents, chunks


def _store(path: Path, chunks: list[Chunk]) -> ChunkStore:
    return ChunkStore.load(path, CodeRows.build(chunks))


def test_text_blocks_round_trip_code_points() -> None:
    for text in ["", "a", "😀" * (BLOCK_CHARS + 1), _text(3 * BLOCK_CHARS)]:
        blocks = split_blocks(text)
        assert join_blocks(blocks) == text
        assert len(blocks) == -(-len(text) // BLOCK_CHARS)


def test_every_chunk_reads_back_as_written(written) -> None:  # type: ignore[no-untyped-def]
    path, documents, chunks = written
    store = _store(path, chunks)
    mentions = [m for c in chunks for m in c.codes]
    # Every field of a mention away from its default somewhere, so that none is lost.
    assert any(m.modifiers for m in mentions) and any(m.from_range for m in mentions)
    assert any(m.names_section for m in mentions)
    assert any(m.role != "mentioned" for m in mentions)
    assert any(ord(ch) > 0xFFFF for c in chunks for ch in c.text)
    assert [store.chunks[row] for row in range(len(chunks))] == chunks
    assert list(store.chunks) == chunks
    assert store.chunks[-1] == chunks[-1]
    assert store.chunks[1:3] == chunks[1:3]


def test_documents_read_back_as_written(written) -> None:  # type: ignore[no-untyped-def]
    path, documents, chunks = written
    store = _store(path, chunks)
    assert list(store.documents) == [d.id for d in documents]
    assert store.documents.values() == documents
    assert all(store.documents[d.id] == d for d in documents)
    # Read on demand, the text too; `replace` makes an ordinary copy.
    assert all(store.documents[d.id].text == d.text for d in documents)
    assert replace(store.documents[documents[0].id], id="x") == replace(documents[0], id="x")
    for chunk in chunks:
        document = store.documents[chunk.document_id]
        assert document.text[chunk.start : chunk.end] == store.chunks[chunks.index(chunk)].text


def test_query_paths_of_the_store(written) -> None:  # type: ignore[no-untyped-def]
    path, documents, chunks = written
    store = _store(path, chunks)
    for document in documents:
        expected = sorted(
            (i for i, c in enumerate(chunks) if c.document_id == document.id),
            key=lambda i: (chunks[i].start, chunks[i].end),
        )
        assert store.rows_of_document(document.id) == expected
    assert store.rows_of_document("no such document") == []
    dates = chunk_dates(chunks, documents)
    wanted = [c.id for c in chunks] + ["edge#1.md#999", "nothing#0", "no number"]
    found = store.dates_of(wanted)
    assert found == {c.id: d for c, d in zip(chunks, dates, strict=True)}
    assert "77003" in store.glossary and store.glossary["77003"].mentions >= 2
    rows = store.rows_by_code.get("77003")
    assert len(rows) and all(any(m.code == "77003" for m in store.chunks[r].codes) for r in rows)


def test_the_store_has_no_copy_of_chunk_texts(written) -> None:  # type: ignore[no-untyped-def]
    path, _, _ = written
    connection = sqlite3.connect(path)
    try:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master")}
        columns = {row[1] for row in connection.execute("PRAGMA table_info(chunks)")}
    finally:
        connection.close()
    assert "mentions" not in tables and "text" not in columns


@pytest.mark.parametrize(
    ("chunk_id", "text_shift", "message"),
    [("d-0", 0, "is not"), ("d#01", 0, "is not"), ("e#0", 0, "is not"), ("d#0", 1, "text at")],
)
def test_a_chunk_the_store_cannot_rebuild_is_refused(
    tmp_path: Path, chunk_id: str, text_shift: int, message: str
) -> None:
    document = Document("d", "/c/d", "some text 77003 here", "e" * 64)
    chunk = Chunk(chunk_id, "d", text_shift, 9 + text_shift, document.text[:9])
    with pytest.raises(ValueError, match=message):
        write_store(tmp_path / "chunks.sqlite", [document], [chunk])


def test_a_published_snapshot_reads_its_chunks_from_the_documents(seed_index: Path) -> None:
    snapshot = load_current(seed_index, "all-MiniLM-L6-v2")
    store = snapshot.store
    for row, chunk in enumerate(store.chunks):
        assert store.documents[chunk.document_id].text[chunk.start : chunk.end] == chunk.text
        assert store.chunks[row] == chunk


def test_sentence_spans_and_offsets_keep_their_values_in_half_the_bytes(tmp_path: Path) -> None:
    vectors = np.eye(3, 4, dtype=np.float32)
    spans = np.array([[0, 10], [12, 40], [2**31 - 5, 2**31 - 1]], dtype=np.int64)
    offsets = np.array([0, 2, 3], dtype=np.int64)
    SentenceVectors(vectors, spans, offsets).save(tmp_path)
    loaded = SentenceVectors.load(tmp_path)
    assert loaded.spans.dtype == np.int32 and loaded.offsets.dtype == np.int32
    assert np.array_equal(loaded.spans, spans) and np.array_equal(loaded.offsets, offsets)
    # A document past 2**31 characters keeps 64 bits.
    far = spans + np.array([[0, 0], [0, 0], [1, 1]])
    SentenceVectors(vectors, far, offsets).save(tmp_path)
    assert np.array_equal(SentenceVectors.load(tmp_path).spans, far)
    assert SentenceVectors.load(tmp_path).spans.dtype == np.int64
