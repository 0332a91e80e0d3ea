"""The scale benchmark's synthetic snapshots are real snapshots: consistent offsets, codes where
the text has them, and searchable by cptqa's own code."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.scale import sqlite_bytes_by_table, synthesise
from index import DEFAULT_MODEL, Searcher, load_current
from index.encoder import OnnxEncoder, ensure_export
from index.snapshot import write_snapshot


def test_a_synthetic_snapshot_is_consistent_and_searchable(
    seed_index: Path, tmp_path: Path, onnx_encoder: OnnxEncoder
) -> None:
    base = load_current(seed_index, DEFAULT_MODEL)
    documents, chunks, vectors, sentences = synthesise(base, 120)
    texts = {d.id: d.text for d in documents}
    assert len(chunks) == len(vectors) == sentences.chunks == 120
    for chunk in chunks:
        assert texts[chunk.document_id][chunk.start : chunk.end] == chunk.text
        for mention in chunk.codes:
            assert texts[chunk.document_id][mention.start : mention.end].startswith(
                mention.code[:4]
            )
    spans = np.asarray(sentences.spans)
    assert np.all(spans[:, 1] > spans[:, 0])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    settings = {k: base.manifest[k] for k in ("model", "chunker", "loader_version")}
    settings["dimension"] = 384
    write_snapshot(
        tmp_path,
        documents,
        chunks,
        vectors,
        sentences,
        settings,
        encoder=ensure_export(DEFAULT_MODEL),
    )
    snapshot = load_current(tmp_path, DEFAULT_MODEL)
    by_table = sqlite_bytes_by_table(snapshot.directory / "chunks.sqlite", 120)
    assert {"chunks", "text_blocks", "documents", "glossary"} <= set(by_table)
    result = Searcher(snapshot, onnx_encoder).search("fluoro code for a knee injection", 3)
    assert result.hits and result.codes
