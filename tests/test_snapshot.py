"""Snapshots: manifest checks, corruption, crash safety, locking."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import faiss
import numpy as np
import pytest
from conftest import CORPUS

from index import (
    DEFAULT_MODEL,
    FORMAT_VERSION,
    Embedder,
    IndexBusy,
    build_index,
    current_snapshot_id,
    load_current,
)
from index.search import Searcher
from index.snapshot import index_lock
from ingest import CorpusError, IndexCorrupt, IndexIncompatible, IndexMissing

EXAMPLE = "which fluoro code for occipital nerve block"


def test_manifest_records_model_format_chunker_and_documents(seed_index: Path) -> None:
    snapshot = load_current(seed_index, "all-MiniLM-L6-v2")
    manifest = snapshot.manifest
    assert manifest["model"] == "all-MiniLM-L6-v2"
    assert manifest["dimension"] == 384
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["chunker"]["max_chars"] > 0
    assert set(manifest["documents"]) == {p.name for p in CORPUS.glob("*.txt")}
    assert manifest["counts"]["chunks"] == len(snapshot.store.chunks) == snapshot.dense.ntotal
    assert all(len(d["sha256"]) == 64 for d in manifest["documents"].values())


def test_no_index_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(IndexMissing, match="cptqa ingest"):
        load_current(tmp_path / "nothing-here", "all-MiniLM-L6-v2")


def test_index_built_with_another_model_is_refused_with_the_fix(index_copy: Path) -> None:
    with pytest.raises(IndexIncompatible, match="cptqa ingest --rebuild"):
        load_current(index_copy, "some-other-model")


def test_index_of_another_format_version_is_refused(index_copy: Path) -> None:
    snapshot_dir = index_copy / "snapshots" / current_snapshot_id(index_copy)
    manifest_path = snapshot_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = 999
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexIncompatible, match="format 999"):
        load_current(index_copy, "all-MiniLM-L6-v2")


def test_empty_corpus_publishes_nothing(tmp_path: Path, embedder: Embedder) -> None:
    (tmp_path / "corpus").mkdir()
    with pytest.raises(CorpusError):
        build_index([tmp_path / "corpus"], tmp_path / "index", embedder)
    assert current_snapshot_id(tmp_path / "index") is None


def _rebuild(index_dir: Path, embedder: Embedder, text: str, tmp_path: Path) -> str:
    corpus = tmp_path / "second-corpus"
    corpus.mkdir(exist_ok=True)
    (corpus / "note.txt").write_text(text, encoding="utf-8")
    build_index([corpus], index_dir, embedder)
    snapshot_id = current_snapshot_id(index_dir)
    assert snapshot_id is not None
    return snapshot_id


def test_corrupt_current_snapshot_falls_back_to_the_previous_good_one(
    index_copy: Path, embedder: Embedder, tmp_path: Path
) -> None:
    first = current_snapshot_id(index_copy)
    second = _rebuild(index_copy, embedder, "CPT 62270 is a diagnostic lumbar puncture.", tmp_path)
    assert second != first
    damaged = index_copy / "snapshots" / second / "dense.faiss"
    damaged.write_bytes(damaged.read_bytes()[:100])
    snapshot = load_current(index_copy, "all-MiniLM-L6-v2")
    assert snapshot.id == first
    assert "dense.faiss" in snapshot.fallback_reason
    hits = Searcher(snapshot, embedder).search(EXAMPLE, 3).hits
    assert any("for non-spinal procedures" in h.chunk.text for h in hits)


def test_corrupt_only_snapshot_is_a_clear_error(index_copy: Path) -> None:
    snapshot_dir = index_copy / "snapshots" / current_snapshot_id(index_copy)
    (snapshot_dir / "chunks.sqlite").write_bytes(b"not a database")
    with pytest.raises(IndexCorrupt, match="chunks.sqlite"):
        load_current(index_copy, "all-MiniLM-L6-v2")


def test_crash_mid_write_keeps_the_previous_snapshot(
    index_copy: Path, embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = current_snapshot_id(index_copy)
    real_write = faiss.write_index

    def write_half_then_die(index: faiss.Index, path: str) -> None:
        real_write(index, path)
        Path(path).write_bytes(Path(path).read_bytes()[:64])
        raise KeyboardInterrupt("simulated crash while writing the dense index")

    monkeypatch.setattr(faiss, "write_index", write_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        _rebuild(index_copy, embedder, "77003 is reported per spinal region.", tmp_path)
    monkeypatch.undo()
    assert current_snapshot_id(index_copy) == before
    assert not list(index_copy.glob(".build-*"))
    snapshot = load_current(index_copy, "all-MiniLM-L6-v2")
    assert snapshot.fallback_reason == ""
    hits = Searcher(snapshot, embedder).search(EXAMPLE, 3).hits
    assert any("for non-spinal procedures" in h.chunk.text for h in hits)


def test_leftover_build_directory_is_never_loaded_and_is_cleaned(
    index_copy: Path, embedder: Embedder, tmp_path: Path
) -> None:
    leftover = index_copy / ".build-20000101T000000-deadbeef"
    leftover.mkdir()
    (leftover / "manifest.json").write_text("{")
    assert load_current(index_copy, "all-MiniLM-L6-v2").fallback_reason == ""
    _rebuild(index_copy, embedder, "Use 76942 for ultrasound needle guidance.", tmp_path)
    assert not leftover.exists()


def test_second_concurrent_ingest_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    entered = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with index_lock(tmp_path):
            entered.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait(10)
    try:
        with pytest.raises(IndexBusy, match="another `cptqa ingest`"), index_lock(tmp_path):
            pass
    finally:
        release.set()
        holder.join()


def test_vectors_are_normalised_and_nothing_is_pickled(seed_index: Path) -> None:
    snapshot_dir = seed_index / "snapshots" / current_snapshot_id(seed_index)
    vectors = np.asarray(load_current(seed_index, "all-MiniLM-L6-v2").vectors)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)  # float16 codes
    for path in snapshot_dir.rglob("*"):
        if path.is_file():
            assert path.suffix in {".json", ".sqlite", ".npy", ".faiss", ".onnx"}, path


def test_the_chunk_vectors_are_stored_once_as_float16(seed_index: Path) -> None:
    snapshot = load_current(seed_index, "all-MiniLM-L6-v2")
    directory = snapshot.directory
    chunks, dimension = len(snapshot.store.chunks), snapshot.manifest["dimension"]
    assert not (directory / "vectors.npy").exists()
    # The FAISS file is the one copy: 2 bytes a component and a small header.
    assert chunks * dimension * 2 <= (directory / "dense.faiss").stat().st_size
    assert (directory / "dense.faiss").stat().st_size < chunks * dimension * 2 + 4096
    on_disk = np.load(directory / "sentence_vectors.npy", allow_pickle=False)
    assert on_disk.dtype == np.float16 and on_disk.shape[1] == dimension
    rows = snapshot.vectors[[0, chunks - 1]]
    assert rows.dtype == np.float32 and rows.shape == (2, dimension)
    assert np.array_equal(rows, np.asarray(snapshot.vectors)[[0, chunks - 1]])
    assert np.array_equal(snapshot.vectors[1:3], np.asarray(snapshot.vectors)[1:3])


def test_a_documents_chunks_are_its_own_in_text_order(tmp_path: Path, embedder: Embedder) -> None:
    # "a.txt" is a prefix of "a.txt#notes.txt": the id range must not hand one the other's.
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    paragraph = "Fluoroscopic guidance for a non-spinal needle is 77002, reported once. "
    (corpus / "a.txt").write_text((paragraph * 12 + "\n\n") * 4, encoding="utf-8")
    (corpus / "a.txt#notes.txt").write_text(paragraph * 3, encoding="utf-8")
    build_index([corpus], tmp_path / "index", embedder)
    store = load_current(tmp_path / "index", "all-MiniLM-L6-v2").store
    for document_id in ("a.txt", "a.txt#notes.txt"):
        rows = store.rows_of_document(document_id)
        chunks = [store.chunks[r] for r in rows]
        expected = sorted(
            (c for c in store.chunks if c.document_id == document_id),
            key=lambda c: (c.start, c.end),
        )
        assert rows and [c.id for c in chunks] == [c.id for c in expected]
    assert len(store.rows_of_document("a.txt")) > 1
    assert store.rows_of_document("a.tx") == []


def _resident_bytes(path: Path) -> int:
    """Bytes of `path` in the kernel's page cache (util-linux `fincore`)."""
    import subprocess

    found = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(found.stdout.split()[0])


def test_prefetch_reads_every_file_but_the_encoder_into_the_page_cache(index_copy: Path) -> None:
    import os
    import shutil

    from index.snapshot import prefetch

    if shutil.which("fincore") is None or not hasattr(os, "posix_fadvise"):
        pytest.skip("needs util-linux fincore and posix_fadvise")
    snapshot = load_current(index_copy, DEFAULT_MODEL)
    files = [
        snapshot.directory / name
        for name in snapshot.manifest["files"]
        if not name.startswith("encoder")
    ]
    for path in files:  # out of the page cache (written, so flushed first)
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    store = snapshot.directory / "chunks.sqlite"
    before = _resident_bytes(store)
    assert prefetch(snapshot) == sum(p.stat().st_size for p in files)
    assert _resident_bytes(store) == store.stat().st_size > before


def test_prefetch_skips_files_that_vanished(index_copy: Path) -> None:
    from index.snapshot import prefetch

    snapshot = load_current(index_copy, DEFAULT_MODEL)
    gone = snapshot.directory / "sentence_vectors.npy"
    size = gone.stat().st_size
    everything = prefetch(snapshot)
    gone.unlink()
    assert prefetch(snapshot) == everything - size


def test_a_server_prefetches_the_snapshot_it_serves_unless_told_not_to(
    seed_index: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from conftest import make_settings

    from api.service import Service

    for prefetching in (True, False):
        service = Service(make_settings(seed_index, prefetch=prefetching))
        service.load()
        with caplog.at_level(logging.INFO, logger="api.service"):
            thread = service.start_prefetch()
            if thread is not None:
                thread.join(timeout=60)
        said = [r.getMessage() for r in caplog.records if "page cache" in r.getMessage()]
        assert (thread is not None) == prefetching
        assert bool(said) == prefetching
        caplog.clear()
