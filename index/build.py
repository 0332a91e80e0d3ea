"""Build a snapshot from corpus paths: ingest, embed what is new, index, publish.

An ingest is incremental: it starts from the current snapshot, parses only files whose bytes
changed, embeds only text never embedded before (index/reuse.py), and rebuilds the dense and
lexical indexes and the glossary from all chunks (cheap beside embedding). When no document
was added, changed or removed and the settings are the same, nothing is written. `rebuild`
ignores the current snapshot and builds from scratch.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.embed import Embedder
from index.encoder import EncoderUnavailable, OnnxEncoder, ensure_export
from index.passages import embed_chunks
from index.reuse import VectorCache
from index.signals import SIGNALS_VERSION
from index.snapshot import Snapshot, index_lock, load_current, write_snapshot
from ingest import (
    EXTRACTOR_VERSION,
    LOADER_VERSION,
    Chunk,
    ChunkerOptions,
    CorpusChanges,
    CorpusError,
    Document,
    FileReader,
    IndexCorrupt,
    IndexMissing,
    ReadLimits,
    Skipped,
    chunk_corpus,
    update_corpus,
)
from ingest.stated import STATED_VERSION

log = logging.getLogger(__name__)

# An Embedder, or a function that makes one: the model is then loaded only if there is text
# to embed, so an ingest that changes nothing does not pay for loading it.
# The factory may return the ONNX encoder instead (index/encoder.py): anything with
# `encode_passages(texts, progress=...)`.
EmbedderSource = Embedder | OnnxEncoder | Callable[[], Embedder | OnnxEncoder]


@dataclass(frozen=True)
class IngestStages:
    """Where reading files and chunking run: here by default; index/ray_build.py runs them on
    a Ray cluster (the embedding stage is the `embedder`). Each gives what the local one
    gives for the same input."""

    read: FileReader | None = None  # None: ingest/load.py's `read_files`, here
    chunk: Callable[[list[Document], ChunkerOptions], list[Chunk]] = chunk_corpus


@dataclass(frozen=True)
class BuildReport:
    snapshot: Path
    documents: int
    chunks: int
    skipped: list[Skipped]
    seconds: float
    changes: CorpusChanges = field(default_factory=CorpusChanges)
    written: bool = True  # False: nothing changed, `snapshot` is the current one, untouched
    embedded: int = 0  # distinct passage texts embedded by this ingest
    reused: int = 0  # passages whose vectors came from the previous snapshot
    formats: dict[str, int] = field(default_factory=dict)  # documents by format


def build_index(
    paths: Iterable[str | Path],
    index_dir: Path,
    embedder: EmbedderSource,
    options: ChunkerOptions | None = None,
    progress: bool = False,
    *,
    rebuild: bool = False,
    remove: Iterable[str | Path] = (),
    model: str | None = None,
    encoder_cache: Path | None = None,
    limits: ReadLimits | None = None,
    stages: IngestStages | None = None,
) -> BuildReport:
    """Bring the index in `index_dir` in line with `paths` (see ingest/changes.py), minus
    `remove`, and publish a new snapshot if anything changed.

    `model` names the embedder's model when `embedder` is a factory. The snapshot carries the
    model's ONNX export, made once per model into `encoder_cache` (index/encoder.py). Raises
    `CorpusError` (publishing nothing) when nothing would be indexed, `IndexBusy` when another
    ingest holds the index, and `IndexIncompatible` when the current snapshot was made by
    another model or format (unless `rebuild`).
    """
    started = time.perf_counter()
    options = options or ChunkerOptions()
    stages = stages or IngestStages()
    model = model or getattr(embedder, "name", None)
    if model is None:
        raise TypeError("build_index needs `model` when `embedder` is a factory")
    settings: dict[str, Any] = {
        "model": model,
        "chunker": options.as_dict(),
        "loader_version": LOADER_VERSION,
        "extractor_version": EXTRACTOR_VERSION,
        "signals_version": SIGNALS_VERSION,
        "stated_version": STATED_VERSION,
    }
    with index_lock(index_dir):
        previous = None if rebuild else _previous_snapshot(index_dir, model)
        old_documents = list(previous.store.documents.values()) if previous else []
        same_loaders = previous is not None and _same(previous.manifest, settings, "loader_version")
        update = update_corpus(
            paths,
            old_documents,
            remove,
            reuse_text=same_loaders,
            limits=limits or ReadLimits(),
            read=stages.read,
        )
        formats = dict(Counter(d.format for d in update.documents))
        if previous is not None and not _needs_write(previous, update.changes, settings):
            log.info("nothing changed; snapshot %s stays current", previous.id)
            return BuildReport(
                previous.directory,
                len(update.documents),
                len(previous.store.chunks),
                update.skipped,
                time.perf_counter() - started,
                update.changes,
                written=False,
                reused=len(previous.store.chunks),
                formats=formats,
            )
        chunks = stages.chunk(update.documents, options)
        if not chunks:
            raise CorpusError(
                "nothing to index: the documents have no passages (only page furniture); "
                "nothing was published"
            )
        source = _LazyEmbedder(embedder)
        cache = VectorCache(previous)
        embedded = embed_chunks(update.documents, chunks, cache, source.get, progress)
        settings["dimension"] = int(embedded.vectors.shape[1])
        snapshot = write_snapshot(
            index_dir,
            update.documents,
            chunks,
            embedded.vectors,
            embedded.sentences,
            settings,
            encoder=_export_or_none(model, encoder_cache),
        )
    seconds = time.perf_counter() - started
    log.info(
        "indexed %d chunks from %d documents (%d passages embedded, %d reused)",
        len(chunks),
        len(update.documents),
        embedded.embedded,
        embedded.reused,
    )
    return BuildReport(
        snapshot,
        len(update.documents),
        len(chunks),
        update.skipped,
        seconds,
        update.changes,
        embedded=embedded.embedded,
        reused=embedded.reused,
        formats=formats,
    )


def _export_or_none(model: str, cache: Path | None) -> Path | None:
    """The model's ONNX export, or None (logged) for a model that cannot be exported: such a
    snapshot is served by the torch encoder."""
    try:
        return ensure_export(model, cache)
    except EncoderUnavailable as exc:
        log.warning("no ONNX encoder in this snapshot: %s", exc.message)
        return None


def _previous_snapshot(index_dir: Path, model: str) -> Snapshot | None:
    """The snapshot to start from, or None. A damaged index is rebuilt from scratch; one made
    by another model or format is an error naming `--rebuild` (never a silent rebuild)."""
    try:
        # Signals of another version are recomputed by this build: no reason to start over.
        return load_current(index_dir, model, check_signals=False)
    except IndexMissing:
        return None
    except IndexCorrupt as exc:
        log.warning("no usable snapshot to start from (%s); indexing from scratch", exc)
        return None


def _same(manifest: dict[str, Any], settings: dict[str, Any], key: str) -> bool:
    return bool(manifest.get(key) == settings[key])


def _needs_write(previous: Snapshot, changes: CorpusChanges, settings: dict[str, Any]) -> bool:
    return (
        changes.any
        or bool(previous.fallback_reason)  # the current snapshot is damaged: replace it
        or not _same(previous.manifest, settings, "chunker")
        or not _same(previous.manifest, settings, "loader_version")
        or not _same(previous.manifest, settings, "extractor_version")
        or not _same(previous.manifest, settings, "signals_version")
        # The glossary's stated changes and the dates are recomputed from the chunks.
        or not _same(previous.manifest, settings, "stated_version")
    )


class _LazyEmbedder:
    def __init__(self, source: EmbedderSource) -> None:
        self._source = source
        self._embedder: Embedder | OnnxEncoder | None = (
            source if isinstance(source, Embedder | OnnxEncoder) else None
        )

    def get(self) -> Embedder | OnnxEncoder:
        if self._embedder is None:
            self._embedder = self._source()  # type: ignore[operator]
        return self._embedder
