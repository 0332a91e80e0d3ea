"""Build a snapshot from corpus paths: ingest, embed, index, publish."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from index.embed import Embedder
from index.sentences import build_sentence_vectors
from index.snapshot import embedding_text, index_lock, write_snapshot
from ingest import ChunkerOptions, Skipped, ingest_paths

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildReport:
    snapshot: Path
    documents: int
    chunks: int
    skipped: list[Skipped]
    seconds: float


def build_index(
    paths: Iterable[str | Path],
    index_dir: Path,
    embedder: Embedder,
    options: ChunkerOptions | None = None,
    progress: bool = False,
) -> BuildReport:
    """Index every supported file under `paths` into a new published snapshot in `index_dir`.

    Raises `CorpusError` (and publishes nothing) when there is nothing to index, and
    `IndexBusy` when another ingest is writing the same index.
    """
    started = time.perf_counter()
    options = options or ChunkerOptions()
    with index_lock(index_dir):
        result = ingest_paths(paths, options)
        vectors = embedder.encode_passages(
            [embedding_text(c) for c in result.chunks], progress=progress
        )
        sentences = build_sentence_vectors(
            result.documents,
            result.chunks,
            lambda texts: embedder.encode_passages(texts, progress=progress),
            embedder.dimension,
        )
        settings = {
            "model": embedder.name,
            "dimension": embedder.dimension,
            "chunker": options.as_dict(),
        }
        snapshot = write_snapshot(
            index_dir, result.documents, result.chunks, vectors, sentences, settings
        )
    seconds = time.perf_counter() - started
    log.info("indexed %d chunks from %d documents", len(result.chunks), len(result.documents))
    return BuildReport(snapshot, len(result.documents), len(result.chunks), result.skipped, seconds)
