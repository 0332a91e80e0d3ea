"""Incremental ingest: only new or changed documents are embedded; deleted ones leave the dense
index, the lexical index and the glossary; an unchanged corpus writes nothing."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from sample_files import forum_page, write_pdf
from typer.testing import CliRunner

from api.cli import app
from index import Embedder, Searcher, build_index, current_snapshot_id, load_current
from index.build import BuildReport
from index.snapshot import FORMAT_VERSION, load_snapshot
from ingest import CorpusError, IndexIncompatible, InvalidInput, UnknownCode

MODEL = "all-MiniLM-L6-v2"
FLUORO = (
    "Fluoroscopic guidance\n\nUse 77002 for fluoroscopic guidance of non-spinal procedures "
    "such as an occipital nerve block. Do not report 77003 for it."
)
PUNCTURE = (
    "Spinal puncture\n\n62270 Spinal puncture, lumbar, diagnostic. 62272 Spinal puncture, "
    "therapeutic, for drainage of cerebrospinal fluid."
)
FACET_PAGES = [
    "Facet joint policy. Injection of a zygapophyseal joint with ultrasound guidance is "
    "reported with 0213T for the first level.",
    "Ultrasound guidance. Report 76942 for ultrasonic guidance for needle placement when the "
    "procedure code does not include it.",
]


class CountingEmbedder:
    """The session's real embedder, handed out by a factory that counts how often it is asked."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.calls = 0

    def __call__(self) -> Embedder:
        self.calls += 1
        return self.embedder


def make_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fluoro.txt").write_text(FLUORO, encoding="utf-8")
    (folder / "puncture.md").write_text(PUNCTURE, encoding="utf-8")
    write_pdf(folder / "facet.pdf", FACET_PAGES)
    page = forum_page([("anne", "A GON block is 64405; bill the guidance with 77002.")])
    (folder / "thread.html").write_text(page, encoding="utf-8")
    return folder


def ingest(paths: list[Path], index_dir: Path, embedder: Embedder, **options) -> BuildReport:
    return build_index(paths, index_dir, embedder, **options)


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    return make_corpus(tmp_path / "corpus")


@pytest.fixture()
def index_dir(tmp_path: Path, corpus: Path, embedder: Embedder) -> Path:
    target = tmp_path / "index"
    report = ingest([corpus], target, embedder)
    assert report.changes.added == ("facet.pdf", "fluoro.txt", "puncture.md", "thread.html")
    assert report.embedded == report.chunks
    return target


def files_of(index_dir: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(index_dir).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in index_dir.rglob("*")
        if p.is_file() and p.name != ".lock"
    }


def test_reingesting_an_unchanged_corpus_writes_nothing_and_loads_no_model(
    corpus: Path, index_dir: Path, embedder: Embedder
) -> None:
    before = files_of(index_dir)
    source = CountingEmbedder(embedder)
    report = build_index([corpus], index_dir, source, model=MODEL)
    assert not report.written
    assert report.changes.unchanged == ("facet.pdf", "fluoro.txt", "puncture.md", "thread.html")
    assert not report.changes.any
    assert source.calls == 0
    assert files_of(index_dir) == before


def test_a_newer_code_extractor_rewrites_the_mentions_of_an_unchanged_corpus(
    corpus: Path, index_dir: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Roles and mentions are stored in the snapshot: when the rules that read them change,
    # the next ingest must not keep the old reading just because no file changed.
    import index.build

    first = current_snapshot_id(index_dir)
    monkeypatch.setattr(index.build, "EXTRACTOR_VERSION", index.build.EXTRACTOR_VERSION + 1)
    report = build_index([corpus], index_dir, CountingEmbedder(embedder), model=MODEL)
    assert report.written and current_snapshot_id(index_dir) != first
    assert report.embedded == 0  # the vectors of unchanged text are reused
    again = build_index([corpus], index_dir, CountingEmbedder(embedder), model=MODEL)
    assert not again.written


def test_signals_of_another_version_are_refused_then_recomputed_by_ingest(
    corpus: Path, index_dir: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ranking features read the stored per-chunk signals: a snapshot whose signals were
    # computed by other rules must not be served, and a plain ingest (no --rebuild, nothing
    # embedded again) must bring them up to date.
    import index.build
    import index.snapshot

    first = current_snapshot_id(index_dir)
    newer = index.snapshot.SIGNALS_VERSION + 1
    monkeypatch.setattr(index.snapshot, "SIGNALS_VERSION", newer)
    monkeypatch.setattr(index.build, "SIGNALS_VERSION", newer)
    with pytest.raises(IndexIncompatible, match=r"signals of version .*run `cptqa ingest`"):
        load_current(index_dir, MODEL)
    report = build_index([corpus], index_dir, CountingEmbedder(embedder), model=MODEL)
    assert report.written and current_snapshot_id(index_dir) != first
    assert report.embedded == 0
    assert load_current(index_dir, MODEL).manifest["signals_version"] == newer


def test_a_changed_document_alone_is_embedded_again(
    corpus: Path, index_dir: Path, embedder: Embedder
) -> None:
    first = current_snapshot_id(index_dir)
    (corpus / "fluoro.txt").write_text(
        FLUORO + "\n\nFor a trigger point injection use 20552 without separate guidance.", "utf-8"
    )
    report = ingest([corpus], index_dir, embedder)
    assert report.changes.changed == ("fluoro.txt",)
    assert report.changes.unchanged == ("facet.pdf", "puncture.md", "thread.html")
    assert report.written and current_snapshot_id(index_dir) != first
    snapshot = load_current(index_dir, MODEL)
    changed_rows = [c for c in snapshot.store.chunks if c.document_id == "fluoro.txt"]
    assert 0 < report.embedded <= len(changed_rows)
    assert report.reused == report.chunks - report.embedded
    hits = Searcher(snapshot, embedder).search("trigger point injection guidance", 3).hits
    assert "20552" in hits[0].chunk.text


def test_a_deleted_document_leaves_the_dense_and_lexical_indexes_and_the_glossary(
    corpus: Path, index_dir: Path, embedder: Embedder
) -> None:
    before = load_current(index_dir, MODEL)
    assert "0213T" in before.store.glossary
    assert any(t.startswith("zygapophys") for t in before.lexical.vocabulary)
    (corpus / "facet.pdf").unlink()
    report = ingest([corpus], index_dir, embedder)
    assert report.changes.removed == ("facet.pdf",)
    assert report.embedded == 0
    snapshot = load_current(index_dir, MODEL)
    assert "facet.pdf" not in snapshot.store.documents
    assert "facet.pdf" not in snapshot.manifest["documents"]
    assert all(c.document_id != "facet.pdf" for c in snapshot.store.chunks)
    assert snapshot.dense.ntotal == len(snapshot.store.chunks) == snapshot.vectors.shape[0]
    assert snapshot.lexical.size == len(snapshot.store.chunks)
    assert not any(t.startswith("zygapophys") for t in snapshot.lexical.vocabulary)
    assert "0213T" not in snapshot.store.glossary and "76942" not in snapshot.store.glossary
    searcher = Searcher(snapshot, embedder)
    with pytest.raises(UnknownCode):
        searcher.lookup("0213T")
    hits = searcher.search("zygapophyseal joint injection 0213T", 10).hits
    assert all(h.document.id != "facet.pdf" for h in hits)


def test_an_incremental_index_is_the_index_a_rebuild_makes(
    tmp_path: Path, corpus: Path, index_dir: Path, embedder: Embedder
) -> None:
    (corpus / "puncture.md").write_text(PUNCTURE + "\n\nAdd 62328 with guidance.", "utf-8")
    (corpus / "thread.html").unlink()
    write_pdf(corpus / "new.pdf", ["Report 64490 for one facet level.", "64491 second level."])
    incremental = ingest([corpus], index_dir, embedder)
    assert incremental.changes.added == ("new.pdf",)
    assert incremental.changes.changed == ("puncture.md",)
    assert incremental.changes.removed == ("thread.html",)
    rebuilt_dir = tmp_path / "rebuilt"
    ingest([corpus], rebuilt_dir, embedder, rebuild=True)
    a, b = load_current(index_dir, MODEL), load_current(rebuilt_dir, MODEL)
    assert a.store.chunks == b.store.chunks
    assert a.store.documents == b.store.documents
    assert {k: asdict(v) for k, v in a.store.glossary.items()} == {
        k: asdict(v) for k, v in b.store.glossary.items()
    }
    assert a.manifest["documents"] == b.manifest["documents"]
    assert np.allclose(a.vectors, b.vectors, atol=1e-5)
    assert np.array_equal(a.sentences.spans, b.sentences.spans)
    assert np.array_equal(a.sentences.offsets, b.sentences.offsets)
    assert np.allclose(a.sentences.vectors, b.sentences.vectors, atol=1e-5)


def test_a_renamed_file_reuses_its_vectors(
    corpus: Path, index_dir: Path, embedder: Embedder
) -> None:
    (corpus / "fluoro.txt").rename(corpus / "fluoroscopy.txt")
    report = ingest([corpus], index_dir, embedder)
    assert report.changes.added == ("fluoroscopy.txt",)
    assert report.changes.removed == ("fluoro.txt",)
    assert report.embedded == 0


def test_remove_takes_a_file_or_a_folder_out_without_reading_the_rest(
    tmp_path: Path, corpus: Path, index_dir: Path, embedder: Embedder
) -> None:
    source = CountingEmbedder(embedder)
    report = build_index([], index_dir, source, model=MODEL, remove=[corpus / "facet.pdf"])
    assert report.changes.removed == ("facet.pdf",)
    assert report.changes.kept == ("fluoro.txt", "puncture.md", "thread.html")
    assert source.calls == 0  # nothing new to embed: no model loaded
    assert set(load_current(index_dir, MODEL).store.documents) == set(report.changes.kept)
    (corpus / "extra").mkdir()
    (corpus / "extra" / "one.txt").write_text("Use 76000 for fluoroscopy under one hour.", "utf-8")
    ingest([corpus], index_dir, embedder)
    assert "extra/one.txt" in load_current(index_dir, MODEL).store.documents
    report = ingest([], index_dir, embedder, remove=["extra"])  # a folder, by document id
    assert report.changes.removed == ("extra/one.txt",)


def test_removing_what_is_not_indexed_or_everything_is_refused(
    corpus: Path, index_dir: Path, embedder: Embedder
) -> None:
    current = current_snapshot_id(index_dir)
    with pytest.raises(InvalidInput, match="nothing indexed is"):
        ingest([], index_dir, embedder, remove=[corpus / "never-there.pdf"])
    with pytest.raises(CorpusError, match="would leave the index empty"):
        ingest([], index_dir, embedder, remove=[corpus])
    assert current_snapshot_id(index_dir) == current


def test_ingesting_another_folder_keeps_the_documents_of_the_first(
    tmp_path: Path, corpus: Path, index_dir: Path, embedder: Embedder
) -> None:
    other = tmp_path / "policies"
    other.mkdir()
    (other / "fluoro.txt").write_text("Payer note: 77002 is billed once per session.", "utf-8")
    report = ingest([other], index_dir, embedder)
    assert report.changes.kept == ("facet.pdf", "fluoro.txt", "puncture.md", "thread.html")
    # The same file name under another folder gets its path as id, not the other one's id.
    (added,) = report.changes.added
    assert added == (other / "fluoro.txt").absolute().as_posix()
    assert len(load_current(index_dir, MODEL).store.documents) == 5


def test_an_index_of_an_older_format_asks_for_a_rebuild_which_fixes_it(
    corpus: Path, index_dir: Path, embedder: Embedder
) -> None:
    manifest_path = index_dir / "snapshots" / str(current_snapshot_id(index_dir)) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    # The format before this one (8: chunk texts in their own column, a mentions table).
    manifest["format_version"] = FORMAT_VERSION - 1
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexIncompatible, match="cptqa ingest --rebuild"):
        ingest([corpus], index_dir, embedder)
    report = ingest([corpus], index_dir, embedder, rebuild=True)
    assert report.written and report.reused == 0 and report.embedded == report.chunks
    assert report.changes.added == ("facet.pdf", "fluoro.txt", "puncture.md", "thread.html")
    load_current(index_dir, MODEL)


def test_a_damaged_current_snapshot_is_replaced_by_the_next_ingest(
    corpus: Path, index_dir: Path, embedder: Embedder
) -> None:
    (corpus / "fluoro.txt").write_text(FLUORO + "\n\nSecond edition.", "utf-8")
    ingest([corpus], index_dir, embedder)
    damaged = index_dir / "snapshots" / str(current_snapshot_id(index_dir)) / "dense.faiss"
    damaged.write_bytes(damaged.read_bytes()[:50])
    assert load_current(index_dir, MODEL).fallback_reason
    report = ingest([corpus], index_dir, embedder)  # the files match the damaged snapshot
    assert report.written
    assert load_current(index_dir, MODEL).fallback_reason == ""


def test_cli_ingest_reports_added_changed_removed_unchanged(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CPTQA_INDEX_DIR", str(tmp_path / "cli-index"))
    runner = CliRunner()
    first = runner.invoke(app, ["ingest", str(corpus)])
    assert first.exit_code == 0, first.output
    assert "added 4, changed 0, removed 0, unchanged 0" in first.output
    assert "indexed 4 documents (1 html, 1 markdown, 1 pdf, 1 text)" in first.output
    again = runner.invoke(app, ["ingest", str(corpus)])
    assert "added 0, changed 0, removed 0, unchanged 4" in again.output
    assert "nothing changed" in again.output and "nothing written" in again.output
    (corpus / "thread.html").unlink()
    shutil.copy(corpus / "fluoro.txt", corpus / "copy.txt")
    os.utime(corpus / "puncture.md")  # touched, same bytes: unchanged
    third = runner.invoke(app, ["ingest", str(corpus)])
    assert "  + copy.txt" in third.output and "  - thread.html" in third.output
    assert "added 1, changed 0, removed 1, unchanged 3" in third.output
    removed = runner.invoke(app, ["ingest", "--remove", str(corpus / "copy.txt")])
    assert removed.exit_code == 0, removed.output
    assert "removed 1, unchanged 3 (3 indexed from other paths, kept)" in removed.output
    missing = runner.invoke(app, ["ingest", "--remove", str(corpus / "nope.txt")])
    assert missing.exit_code == 2 and "nothing indexed is" in missing.output
    rebuilt = runner.invoke(app, ["ingest", "--rebuild", str(corpus)])
    assert "0 reused" in rebuilt.output


def test_old_snapshots_are_collected_and_a_half_deleted_one_is_never_left_in_place(
    corpus: Path, index_dir: Path, embedder: Embedder
) -> None:
    # What a garbage collection killed mid-delete leaves: a renamed, partial snapshot.
    leftover = index_dir / ".trash-20000101T000000-deadbeef"
    leftover.mkdir()
    (leftover / "manifest.json").write_text("{", encoding="utf-8")
    for edition in range(4):
        (corpus / "fluoro.txt").write_text(f"{FLUORO}\n\nEdition {edition}.", "utf-8")
        ingest([corpus], index_dir, embedder)
    snapshots = sorted(p.name for p in (index_dir / "snapshots").iterdir())
    assert len(snapshots) == 3 and snapshots[-1] == current_snapshot_id(index_dir)
    assert not list(index_dir.glob(".trash-*")) and not list(index_dir.glob(".build-*"))
    for name in snapshots:
        load_snapshot(index_dir / "snapshots" / name, MODEL)
