"""Loading, cleaning and chunking on the real corpus files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import CORPUS, DEV_CORPUS

from ingest import (
    ChunkerOptions,
    CorpusError,
    chunk_corpus,
    chunk_document,
    chunk_document_open,
    clean_text,
    corpus_codes,
    ingest_paths,
    load_documents,
)


def test_every_chunk_is_its_documents_text_between_its_offsets() -> None:
    result = ingest_paths([CORPUS, DEV_CORPUS])
    documents = {d.id: d for d in result.documents}
    assert len(result.chunks) > 50
    for chunk in result.chunks:
        assert documents[chunk.document_id].text[chunk.start : chunk.end] == chunk.text
        assert chunk.text.strip() == chunk.text and chunk.text


def test_code_mentions_lie_inside_their_chunk() -> None:
    for chunk in ingest_paths([CORPUS, DEV_CORPUS]).chunks:
        for mention in chunk.codes:
            assert chunk.start <= mention.start < mention.end <= chunk.end


def test_ingesting_twice_gives_identical_chunks() -> None:
    assert ingest_paths([CORPUS]).chunks == ingest_paths([CORPUS]).chunks


def test_chunks_respect_the_size_limit() -> None:
    options = ChunkerOptions()
    for chunk in ingest_paths([CORPUS, DEV_CORPUS]).chunks:
        assert len(chunk.text) <= options.hard_max_chars


def test_forum_profile_lines_are_not_content() -> None:
    chunks = ingest_paths([CORPUS]).chunks
    texts = "\n".join(c.text for c in chunks)
    assert "Cape Girardeau" not in texts
    assert "Best answers" not in texts
    assert "mbarker" not in texts
    # ...while the post itself is kept
    assert any("which flouro code would you use" in c.text for c in chunks)


def test_zip_code_in_a_forum_profile_is_not_a_chunk_code() -> None:
    text = (
        "Thread title here\n\nsomeuser\n\nMember\nMessages\n12\nLocation\nHouston, TX 77003\n"
        "Best answers\n0\nWe bill 77002 for a hip injection under fluoroscopy.\n \nTop"
    )
    document = load_documents_from_text(text)
    chunks = chunk_document(document)
    assert [m.code for c in chunks for m in c.codes] == ["77002"]


def test_a_code_stays_with_its_descriptor_and_its_qualifier() -> None:
    chunks = ingest_paths([CORPUS]).chunks
    holder = next(c for c in chunks if "62328 with fluoroscopic or CT guidance" in c.text)
    assert "62270 Spinal puncture, lumbar, diagnostic." in holder.text


def test_quoted_reply_is_not_repeated_as_content() -> None:
    text = (
        "Q about 77012\n\nanne\n\nMember\nMessages\n3\nLocation\nAustin, TX\nBest answers\n0\n"
        "Is CT guidance 77012 for a nerve block billable?\n \nbob said:\n"
        "Is CT guidance 77012 for a nerve block billable?\nClick to expand...\n"
        "Yes, 77012 is a stand-alone code and is billed once per encounter."
    )
    chunks = chunk_document(load_documents_from_text(text))
    joined = "\n".join(c.text for c in chunks)
    assert joined.count("Is CT guidance 77012") == 1
    assert "Click to expand" not in joined


def load_documents_from_text(text: str, tmp: Path | None = None):  # noqa: ANN201
    import tempfile

    folder = Path(tempfile.mkdtemp())
    (folder / "doc.txt").write_text(text, encoding="utf-8")
    return load_documents([folder]).documents[0]


def test_cleaning_normalises_space_and_line_breaks_and_is_idempotent() -> None:
    raw = "A\r\nB\u00a0\u00a0C\t\tD  \n\n\n\nE\x07"
    cleaned = clean_text(raw)
    assert cleaned == "A\nB C D\n\nE"
    assert clean_text(cleaned) == cleaned


def test_binary_empty_and_missing_files_are_skipped_by_name(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("CPT 62270 is a diagnostic lumbar puncture.", "utf-8")
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20)
    (tmp_path / "empty.md").write_text("   \n\n", "utf-8")
    result = ingest_paths([tmp_path, tmp_path / "missing.txt"])
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert [d.id for d in result.documents] == ["good.txt"]
    assert "binary" in reasons["image.txt"]
    assert "no text" in reasons["empty.md"]
    assert "no such file" in reasons["missing.txt"]
    assert any(m.code == "62270" for c in result.chunks for m in c.codes)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a file without permissions")
def test_file_without_read_permission_is_skipped_by_name(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("CPT 62270 is a diagnostic lumbar puncture.", "utf-8")
    locked = tmp_path / "locked.txt"
    locked.write_text("77002", "utf-8")
    locked.chmod(0)
    result = ingest_paths([tmp_path])
    assert [Path(s.path).name for s in result.skipped] == ["locked.txt"]
    assert "cannot be read" in result.skipped[0].reason


def test_dangling_link_is_skipped_by_name_even_for_root(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("CPT 62270 is a diagnostic lumbar puncture.", "utf-8")
    (tmp_path / "moved.txt").symlink_to(tmp_path / "gone" / "moved.txt")
    result = ingest_paths([tmp_path])
    assert [Path(s.path).name for s in result.skipped] == ["moved.txt"]
    assert "cannot be read" in result.skipped[0].reason
    assert [d.id for d in result.documents] == ["good.txt"]


def test_invalid_utf8_without_a_fallback_is_skipped_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("77003 is per spinal region.", "utf-8")
    # 0x81 is undefined in Windows-1252, so this is neither UTF-8 nor cp1252.
    (tmp_path / "bad.txt").write_bytes(b"fluoro \x81\x8d\x8f\x90\x9d guidance")
    result = ingest_paths([tmp_path])
    assert [Path(s.path).name for s in result.skipped] == ["bad.txt"]
    assert "not valid" in result.skipped[0].reason
    assert [d.id for d in result.documents] == ["good.txt"]


def test_windows_1252_text_is_read_not_lost(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_bytes("Use 77002 \u2013 non-spinal guidance.".encode("cp1252"))
    result = ingest_paths([tmp_path])
    assert "\u2013" in result.documents[0].text
    assert not result.skipped


def test_empty_corpus_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="nothing to index"):
        ingest_paths([tmp_path])


def test_corpus_of_only_unusable_files_names_them(tmp_path: Path) -> None:
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(CorpusError, match="blob.txt"):
        ingest_paths([tmp_path])


def test_named_file_of_unsupported_type_is_skipped(tmp_path: Path) -> None:
    good = tmp_path / "a.txt"
    good.write_text("77003 is per spinal region.", "utf-8")
    other = tmp_path / "b.docx"
    other.write_bytes(b"PK\x03\x04")
    result = ingest_paths([good, other])
    assert [s.reason for s in result.skipped][0].startswith("unsupported file type")
    assert len(result.documents) == 1


def test_an_articles_headline_is_every_chunks_context_not_first_passage_text() -> None:
    text = (
        "PAIN BILLING DIGEST\n\n"
        "GENICULAR NERVE BLOCKS: ONE CODE, THREE NERVES\n\n"
        "Most offices code the block once per knee. The three nerves are one injection "
        "service for that knee, so units follow the knee and not the needle count.\n\n"
        "Imaging is separate. Fluoroscopic guidance of the needles adds 77002 once for the "
        "session, whatever the number of needles placed in that knee.\n"
    )
    chunks = chunk_document(load_documents_from_text(text), ChunkerOptions(max_chars=160))
    assert len(chunks) >= 2
    assert not chunks[0].text.startswith("GENICULAR")
    assert all("GENICULAR NERVE BLOCKS: ONE CODE, THREE NERVES" in c.context for c in chunks)


def test_chunking_a_document_alone_gives_the_corpus_chunks_unless_elsewhere_codes_change_it(
    tmp_path: Path,
) -> None:
    """`chunk_document_open` (the Ray ingest's one pass a file): the codes it reports are the
    document's part of `corpus_codes`, and its chunks are the corpus's own except where a code
    written only in other documents turns a footnote-fused token into a code; exactly those
    documents report that code as one that would change them."""
    folder = tmp_path / "fused"
    folder.mkdir()
    (folder / "footnote.txt").write_text("Facet injections.\n\n644901. Per joint, not per nerve.\n")
    (folder / "own.txt").write_text("Report 64490 once.\n\n644901. Per joint, not per nerve.\n")
    documents = load_documents([CORPUS, DEV_CORPUS, folder]).documents
    known = corpus_codes(documents)
    options = ChunkerOptions()
    by_id: dict[str, list] = {}
    for chunk in chunk_corpus(documents, options):
        by_id.setdefault(chunk.document_id, []).append(chunk)
    changed = set()
    for document in documents:
        chunks, written, heads = chunk_document_open(document, options)
        assert written == corpus_codes([document])
        if heads & known:
            changed.add(document.id)
            assert chunk_document(document, options, known) == by_id[document.id]
        else:
            assert chunks == by_id.get(document.id, [])
    assert changed == {d.id for d in documents if d.id.endswith("footnote.txt")}
    assert "64490" in known
