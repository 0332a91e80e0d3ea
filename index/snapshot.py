"""Snapshots on disk: written aside, checked, then published by one atomic pointer swap.

    INDEX_DIR/
      CURRENT                 {"snapshot": "<id>"}: the published snapshot (os.replace'd)
      snapshots/<id>/         manifest.json, chunks.sqlite, dense.faiss (the one copy of the
                              chunk vectors, float16: index/dense.py), lexical/,
                              sentence_{vectors,spans,offsets}.npy, question_share.npy,
                              site_flags.npy, code_{list.json,rows.npy,offsets.npy},
                              encoder/ (the ONNX query encoder: index/encoder.py)
      .build-<id>/            a snapshot being written (never read; removed if a build died)
      .trash-<id>/            an old snapshot being deleted (never read; removed if GC died)
      .lock                   held by the one ingest allowed at a time

A crash at any point before the pointer swap leaves CURRENT naming the previous snapshot,
which is complete and untouched. Nothing is pickled: JSON, SQLite, .npy and FAISS's own file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from index.coderows import FILES as CODE_ROW_FILES
from index.coderows import CodeRows
from index.dense import (
    IndexRows,
    build_dense_index,
    index_params,
    load_dense_index,
    save_dense_index,
)
from index.encoder import ENCODER_DIR, link_export
from index.lexical import STEMMER, LexicalIndex
from index.sentences import FILES as SENTENCE_FILES
from index.sentences import SentenceVectors
from index.signals import FILES as SIGNAL_FILES
from index.signals import SIGNALS_VERSION, compute_signals, load_signals, save_signals
from index.store import ChunkStore
from index.storefile import write_store
from ingest import Chunk, Document, IndexCorrupt, IndexIncompatible, IndexMissing
from ingest.dates import chunk_dates, text_year
from ingest.errors import CptqaError

log = logging.getLogger(__name__)

# 2: glossary table in chunks.sqlite; 3: formats, PDF pages, absolute paths; 4: ONNX encoder,
# approximate search by size, per-chunk signals, rows read on demand; 5: rows by code as
# arrays, IVF above 20,000 chunks; 6: mentions' names_section and the glossary's standalone
# count (range members and section ends are no answer codes, CODING_FACTS.md §2), and the
# year each chunk speaks for and its thread's opening (read by the learned ranker); 7: the
# year each passage speaks for with its words (`dates` table, passage_year.npy) and the code
# changes the corpus states in the glossary (the current rules); 8: sentence vectors as
# float16, chunk vectors only in the FAISS file (float16 codes), no vectors.npy; 9: the
# store keeps each document's text once, in deflated blocks, and reads a chunk's text from it
# by the chunk's offsets; a chunk is keyed by its document's row and number (no id column and
# no unique index on it); mentions are a JSON column of the chunk (no mentions table, no
# indexes by code or row); context lines stored once; sentence spans and offsets int32
FORMAT_VERSION = 9
KEEP_SNAPSHOTS = 3
_FILES = (
    "chunks.sqlite",
    "dense.faiss",
    *SENTENCE_FILES,
    *SIGNAL_FILES.values(),
    *CODE_ROW_FILES,
)
# Files up to this size are checked against their sha256 on load; larger ones by size only
# (and by their readers), so that a cold start stays fast at any corpus size.
_HASH_LIMIT = 32 * 1024 * 1024


class IndexBusy(CptqaError):
    """Another ingest holds the index lock."""


class IndexUnwritable(CptqaError):
    """The index folder cannot be written: read-only, not a folder, or full."""


def unwritable(index_dir: Path, exc: OSError) -> IndexUnwritable:
    """The error for an OSError met while writing `index_dir`, saying what to do."""
    if index_dir.exists() and not index_dir.is_dir():
        why = "it is a file, not a folder"
    else:
        why = exc.strerror or str(exc)
        if exc.filename:
            why += f" ({exc.filename})"
    return IndexUnwritable(
        f"cannot write the index in {index_dir}: {why}; set CPTQA_INDEX_DIR (or --index-dir) "
        "to a folder this user can write"
    )


@dataclass
class Snapshot:
    """A loaded, verified snapshot: everything a search needs, read-only."""

    directory: Path
    manifest: dict[str, Any]
    store: ChunkStore
    vectors: IndexRows  # read back from `dense`, the one copy on disk
    dense: faiss.Index
    lexical: LexicalIndex
    sentences: SentenceVectors
    signals: dict[str, np.ndarray]
    fallback_reason: str = field(default="")

    @property
    def id(self) -> str:
        return str(self.manifest["id"])

    @property
    def encoder_dir(self) -> Path:
        """The snapshot's ONNX query encoder (index/encoder.py)."""
        return self.directory / ENCODER_DIR


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_records(directory: Path) -> dict[str, dict[str, Any]]:
    records = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        name = path.relative_to(directory).as_posix()
        if name == "manifest.json":
            continue
        records[name] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    return records


@contextlib.contextmanager
def index_lock(index_dir: Path) -> Iterator[None]:
    """Hold the ingest lock of `index_dir`, or fail at once with a clear message."""
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        handle = open(index_dir / ".lock", "a+")  # noqa: SIM115 - held for the whole block
    except OSError as exc:
        raise unwritable(index_dir, exc) from exc
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IndexBusy(
                f"another `cptqa ingest` is writing {index_dir}; wait for it to finish"
            ) from exc
        yield
    finally:
        handle.close()


def write_snapshot(
    index_dir: Path,
    documents: list[Document],
    chunks: list[Chunk],
    vectors: np.ndarray,
    sentences: SentenceVectors,
    settings: dict[str, Any],
    keep: int = KEEP_SNAPSHOTS,
    encoder: Path | None = None,
) -> Path:
    """Write, verify and publish a snapshot; return its directory.

    `settings` (model, dimension, chunker options) goes into the manifest; `encoder` is an
    ONNX export folder (index/encoder.py) to carry in the snapshot. The caller holds
    `index_lock`. Any failure before the pointer swap leaves the previous snapshot current.
    """
    snapshot_id = _new_snapshot_id()
    try:
        return _write_snapshot(
            index_dir, snapshot_id, documents, chunks, vectors, sentences, settings, keep, encoder
        )
    except OSError as exc:
        raise unwritable(index_dir, exc) from exc


def _write_snapshot(
    index_dir: Path,
    snapshot_id: str,
    documents: list[Document],
    chunks: list[Chunk],
    vectors: np.ndarray,
    sentences: SentenceVectors,
    settings: dict[str, Any],
    keep: int,
    encoder: Path | None,
) -> Path:
    _remove_dead_builds(index_dir)
    build = index_dir / f".build-{snapshot_id}"
    build.mkdir(parents=True)
    try:
        dates = chunk_dates(chunks, documents)
        write_store(build / "chunks.sqlite", documents, chunks, dates)
        dense = build_dense_index(vectors)
        save_dense_index(dense, build / "dense.faiss")
        sentences.save(build)
        save_signals(compute_signals(chunks, documents, dates), build)
        CodeRows.build(chunks).save(build)
        LexicalIndex.build([embedding_text(c) for c in chunks]).save(build / "lexical")
        if encoder is not None:
            link_export(encoder, build / ENCODER_DIR)
        settings = {**settings, "dense_index": index_params(dense)}
        settings["encoder"] = _encoder_meta(build / ENCODER_DIR)
        manifest = _manifest(snapshot_id, documents, chunks, settings, build)
        _write_json(build / "manifest.json", manifest)
        _make_read_only(build)
        for path in build.rglob("*"):
            if path.is_file():
                _fsync_file(path)
        _fsync_dir(build)
        # Never publish what cannot be read back.
        load_snapshot(build, settings["model"], FORMAT_VERSION)
        final = index_dir / "snapshots" / snapshot_id
        final.parent.mkdir(exist_ok=True)
        os.replace(build, final)
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    _publish(index_dir, snapshot_id)
    _collect_garbage(index_dir, keep)
    return final


def _make_read_only(build: Path) -> None:
    """Published snapshots are immutable: their files are mapped into every server process,
    and one truncated in place would kill them (SIGBUS). The encoder's files are links into
    the export cache and keep their mode; folders stay writable so that old snapshots can be
    deleted."""
    for path in build.rglob("*"):
        if path.is_file() and not path.relative_to(build).as_posix().startswith(ENCODER_DIR):
            path.chmod(0o444)


def changed_files(snapshot: Snapshot) -> str | None:
    """Why a loaded snapshot's files no longer match its manifest (a file missing or of another
    size), or None. Cheap (a stat a file): run before each use of the mapped files, since a
    mapped page cut off by a truncation kills the process when it is read."""
    for name, record in snapshot.manifest.get("files", {}).items():
        if name.startswith(ENCODER_DIR):
            continue  # read into memory at load, never mapped
        try:
            size = os.stat(snapshot.directory / name).st_size
        except OSError:
            return f"{snapshot.directory}: {name} is missing"
        if size != record["bytes"]:
            return (
                f"{snapshot.directory}: {name} is {size} bytes, the manifest says {record['bytes']}"
            )
    return None


# Files a search reads scattered, first: the chunk store, the sentence vectors, the dense
# index; then the rest (bm25s's arrays, signals) in the manifest's order.
_PREFETCH_FIRST = ("chunks.sqlite", "sentence_vectors.npy", "dense.faiss")
_PREFETCH_BLOCK = 8 << 20


def prefetch(snapshot: Snapshot) -> int:
    """Read the snapshot's files once, so that the kernel holds them in its page cache (never
    pinned: given back under memory pressure); the bytes read. A search reads about a hundred
    chunks scattered over the store, and their sentence vectors: from disk a chunk took
    135-240 µs against 14 µs from the page cache, and at 1,000,000 chunks the first questions
    after a start took 53 ms at the median against 15-20 ms (README, "Speed and scale").
    `posix_fadvise(WILLNEED)` alone read a few MB of gigabytes on our machine, so the bytes
    are read here, a block at a time into one buffer. Files that vanish meanwhile (a snapshot
    collected) are skipped."""
    names = [n for n in snapshot.manifest.get("files", {}) if not n.startswith(ENCODER_DIR)]
    names.sort(key=lambda n: _PREFETCH_FIRST.index(n) if n in _PREFETCH_FIRST else 99)
    buffer = bytearray(_PREFETCH_BLOCK)
    done = 0
    for name in names:
        try:
            with open(snapshot.directory / name, "rb", buffering=0) as handle:
                while read := handle.readinto(buffer):
                    done += read
        except OSError:
            continue
    return done


def _new_snapshot_id() -> str:
    """A name that sorts by creation time, to the microsecond: garbage collection and the
    fallback to an older snapshot both take "newest" to mean "last in name order"."""
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now % 1 * 1e6):06d}"
    return stamp + "-" + uuid.uuid4().hex[:8]


def embedding_text(chunk: Chunk) -> str:
    """What is embedded and indexed for a chunk: its context line, then its text."""
    return f"{chunk.context}\n{chunk.text}" if chunk.context else chunk.text


def _manifest(
    snapshot_id: str,
    documents: list[Document],
    chunks: list[Chunk],
    settings: dict[str, Any],
    build: Path,
) -> dict[str, Any]:
    per_document: dict[str, int] = {}
    for chunk in chunks:
        per_document[chunk.document_id] = per_document.get(chunk.document_id, 0) + 1
    return {
        "format_version": FORMAT_VERSION,
        "id": snapshot_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **settings,
        "signals_version": SIGNALS_VERSION,
        "stemmer": STEMMER,
        "counts": {
            "documents": len(documents),
            "chunks": len(chunks),
            "codes": len({m.code for c in chunks for m in c.codes}),
        },
        "documents": {
            d.id: {
                "path": d.path,
                "sha256": d.sha256,
                "format": d.format,
                "pages": len(d.page_starts),
                "chunks": per_document.get(d.id, 0),
                **_document_date(d),
            }
            for d in documents
        },
        "files": _file_records(build),
    }


def _document_date(document: Document) -> dict[str, Any]:
    """The year a document speaks for and the words it was read from (ingest/dates.py)."""
    dated = text_year(document.text)
    return {"year": dated.year, "year_words": dated.words}


def _encoder_meta(directory: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((directory / "encoder.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return {"fingerprint": meta["fingerprint"], "variants": sorted(meta["variants"])}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")


def _publish(index_dir: Path, snapshot_id: str) -> None:
    pointer = index_dir / "CURRENT"
    temporary = index_dir / f".CURRENT-{snapshot_id}"
    _write_json(temporary, {"snapshot": snapshot_id})
    _fsync_file(temporary)
    os.replace(temporary, pointer)
    _fsync_dir(index_dir)
    log.info("published snapshot %s", snapshot_id)


def _remove_dead_builds(index_dir: Path) -> None:
    # Only called under the ingest lock, so any build directory left here is from a dead run.
    for path in index_dir.glob(".build-*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in index_dir.glob(".CURRENT-*"):
        path.unlink(missing_ok=True)
    for path in index_dir.glob(".trash-*"):
        shutil.rmtree(path, ignore_errors=True)


def _collect_garbage(index_dir: Path, keep: int) -> None:
    current = current_snapshot_id(index_dir)
    snapshots = sorted((index_dir / "snapshots").iterdir(), reverse=True)
    for old in snapshots[keep:]:
        if old.name != current:
            # Renamed out of snapshots/ first, so that a crash mid-delete never leaves a
            # half-deleted snapshot where a fallback would look for a good one.
            trash = index_dir / f".trash-{old.name}"
            os.replace(old, trash)
            shutil.rmtree(trash, ignore_errors=True)


def current_snapshot_id(index_dir: Path) -> str | None:
    pointer = index_dir / "CURRENT"
    try:
        return str(json.loads(pointer.read_text(encoding="utf-8"))["snapshot"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexCorrupt(
            f"{pointer} is damaged; run `cptqa ingest --rebuild` to write a new index"
        ) from exc


def load_snapshot(
    directory: Path,
    model: str,
    format_version: int = FORMAT_VERSION,
    check_signals: bool = True,
) -> Snapshot:
    """Load and verify one snapshot directory against the running model and format.

    `check_signals`: also refuse per-chunk signals computed by another version (ranking reads
    them); an ingest starting from the snapshot passes False, since it recomputes them."""
    manifest_path = directory / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexCorrupt(f"{directory} has no manifest.json") from exc
    except ValueError as exc:
        raise IndexCorrupt(f"{manifest_path} is not valid JSON") from exc
    _check_compatible(manifest, model, format_version, directory)
    if check_signals:
        _check_signals(manifest, directory)
    _check_files(directory, manifest)
    try:
        store = ChunkStore.load(directory / "chunks.sqlite", CodeRows.load(directory))
        dense = load_dense_index(directory / "dense.faiss", manifest.get("dense_index"))
        vectors = IndexRows(dense)
        lexical = LexicalIndex.load(directory / "lexical")
        sentences = SentenceVectors.load(directory)
        signals = load_signals(directory)
    except Exception as exc:
        raise IndexCorrupt(f"{directory} cannot be read ({exc})") from exc
    sizes = {
        len(store.chunks),
        int(vectors.shape[0]),
        int(dense.ntotal),
        lexical.size,
        sentences.chunks,
        *(len(a) for a in signals.values()),
    }
    if sizes != {manifest["counts"]["chunks"]}:
        raise IndexCorrupt(f"{directory} has parts of different sizes {sorted(sizes)}")
    return Snapshot(directory, manifest, store, vectors, dense, lexical, sentences, signals)


def _check_compatible(
    manifest: dict[str, Any], model: str, format_version: int, directory: Path
) -> None:
    found_format = manifest.get("format_version")
    if found_format != format_version:
        raise IndexIncompatible(
            f"index {directory} has format {found_format}, this cptqa reads format "
            f"{format_version}: run `cptqa ingest --rebuild`"
        )
    if manifest.get("model") != model:
        raise IndexIncompatible(
            f"index {directory} was built with model {manifest.get('model')!r} but the "
            f"configured model is {model!r}: run `cptqa ingest --rebuild` (or set CPTQA_MODEL "
            "back)"
        )


def _check_signals(manifest: dict[str, Any], directory: Path) -> None:
    found = manifest.get("signals_version")
    if found != SIGNALS_VERSION:
        raise IndexIncompatible(
            f"index {directory} holds per-chunk signals of version {found}, this cptqa reads "
            f"version {SIGNALS_VERSION}: run `cptqa ingest` (it recomputes them without "
            "embedding again)"
        )


def _check_files(directory: Path, manifest: dict[str, Any]) -> None:
    records: dict[str, dict[str, Any]] = manifest.get("files", {})
    for name in _FILES:
        if name not in records:
            raise IndexCorrupt(f"{directory}: manifest does not list {name}")
    for name, record in records.items():
        path = directory / name
        if not path.is_file():
            raise IndexCorrupt(f"{directory}: {name} is missing")
        size = path.stat().st_size
        if size != record["bytes"]:
            raise IndexCorrupt(
                f"{directory}: {name} is {size} bytes, the manifest says {record['bytes']}"
            )
        if size <= _HASH_LIMIT and _sha256(path) != record["sha256"]:
            raise IndexCorrupt(f"{directory}: {name} does not match its checksum")


def load_current(
    index_dir: Path,
    model: str,
    unhealthy: dict[str, str] | None = None,
    check_signals: bool = True,
) -> Snapshot:
    """Load the published snapshot; if it is damaged, fall back to the newest good one.

    A fallback is logged and recorded in `Snapshot.fallback_reason`. A snapshot built by
    another model or format is an error (IndexIncompatible), never a silent fallback.
    `unhealthy` maps ids of snapshots known to be damaged (a read failed while serving) to
    why; they are passed over like ones that fail their checks.
    """
    unhealthy = unhealthy or {}
    current = current_snapshot_id(index_dir)
    if current is None:
        raise IndexMissing(f"no index in {index_dir}: run `cptqa ingest` to build one")
    snapshots = index_dir / "snapshots"
    try:
        if current in unhealthy:
            raise IndexCorrupt(unhealthy[current])
        return load_snapshot(snapshots / current, model, check_signals=check_signals)
    except IndexCorrupt as exc:
        reason = str(exc)
        log.error("current index snapshot is damaged: %s", reason)
    for older in sorted(snapshots.iterdir(), reverse=True):
        if older.name == current or older.name in unhealthy:
            continue
        try:
            snapshot = load_snapshot(older, model, check_signals=check_signals)
        except (IndexCorrupt, IndexIncompatible) as exc:
            log.warning("snapshot %s cannot be used either: %s", older.name, exc)
            continue
        log.warning("serving the previous snapshot %s instead", older.name)
        snapshot.fallback_reason = reason
        return snapshot
    raise IndexCorrupt(f"{reason}; no earlier snapshot is usable: run `cptqa ingest --rebuild`")
