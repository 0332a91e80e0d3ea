"""The dense index chosen by size: exact below the threshold, IVF above it with a measured
recall, and the on-demand chunk store behind both."""

from __future__ import annotations

import threading
from pathlib import Path

import faiss
import numpy as np

from index import DEFAULT_MODEL, load_current
from index.dense import (
    FLAT,
    IVF,
    IVF_THRESHOLD,
    IndexRows,
    build_dense_index,
    choose_kind,
    dense_scores,
    exact_neighbours,
    index_params,
    load_dense_index,
    recall_at,
    sample_queries,
    save_dense_index,
)


def _synthetic(base: np.ndarray, count: int, seed: int = 1) -> np.ndarray:
    """Mixtures of three real vectors plus noise: a corpus-like cloud around real chunks."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(base), (count, 3))
    weights = rng.dirichlet([1.0, 1.0, 1.0], count).astype(np.float32)
    mixed = (base[picks] * weights[:, :, None]).sum(1)
    mixed += rng.normal(0, 0.03, mixed.shape).astype(np.float32)
    return (mixed / np.linalg.norm(mixed, axis=1, keepdims=True)).astype(np.float32)


def test_the_kind_follows_the_size() -> None:
    assert choose_kind(IVF_THRESHOLD - 1) == FLAT
    assert choose_kind(IVF_THRESHOLD) == IVF


def test_ivf_reaches_its_recall_and_survives_a_round_trip(seed_index: Path, tmp_path: Path) -> None:
    base = np.asarray(load_current(seed_index, DEFAULT_MODEL).vectors)
    vectors = _synthetic(base, 8000)
    index = build_dense_index(vectors, IVF)
    params = index_params(index)
    assert params["kind"] == IVF and params["cells"] >= 64 and params["nprobe"] >= 8
    queries = sample_queries(vectors, 100, seed=7)  # not the calibration sample
    truth = exact_neighbours(vectors, queries, 10)
    assert recall_at(index.search(queries, 10)[1], truth) >= 0.95
    save_dense_index(index, tmp_path / "dense.faiss")
    loaded = load_dense_index(tmp_path / "dense.faiss", params)
    assert isinstance(loaded, faiss.IndexIVF)
    assert loaded.nprobe == params["nprobe"]
    lists = faiss.downcast_InvertedLists(loaded.invlists)
    assert isinstance(lists, faiss.OnDiskInvertedLists)  # memory-mapped, not read into memory
    assert lists.prefetch_nthread == 0  # no disk-prefetch threads for a page-cached file
    assert recall_at(loaded.search(queries, 10)[1], truth) >= 0.95
    ids, scores = dense_scores(loaded, queries[0], 100)
    assert len(ids) == 100 and np.all(np.diff(scores) <= 1e-6)
    # The index is the one copy of the vectors: rows read back from it (float16 residuals).
    rows = IndexRows(loaded)
    picked = np.array([0, 17, len(vectors) - 1])
    assert np.allclose(rows[picked], vectors[picked], atol=1e-3)
    assert np.asarray(rows).shape == vectors.shape
    # The same vectors train the same cells: a rebuild gives the same neighbours.
    again = build_dense_index(vectors, IVF)
    assert np.array_equal(again.search(queries, 10)[1], index.search(queries, 10)[1])


def test_a_small_corpus_gets_the_exact_index(seed_index: Path) -> None:
    snapshot = load_current(seed_index, DEFAULT_MODEL)
    assert snapshot.manifest["dense_index"] == {"kind": FLAT, "codes": "fp16"}
    query = np.asarray(snapshot.vectors[3])
    ids, scores = dense_scores(snapshot.dense, query, 5)
    assert ids[0] == 3 and abs(scores[0] - 1.0) < 1e-3  # float16 codes


def test_the_store_reads_chunks_on_demand(seed_index: Path) -> None:
    store = load_current(seed_index, DEFAULT_MODEL).store
    every = list(store.chunks)
    assert len(every) == len(store.chunks) > 0
    assert [store.chunks[i] for i in range(len(store.chunks))] == every
    assert store.chunks[-1] == every[-1] and store.chunks[1:3] == every[1:3]
    assert sum(len(c.codes) for c in every) > 0
    for bad in (len(every), -len(every) - 1):
        try:
            store.chunks[bad]
        except IndexError:
            pass
        else:
            raise AssertionError(f"row {bad} should be out of range")
    rows = list(store.rows_by_code.get("77002", []))
    assert rows == sorted(rows) and rows == [
        r for r, chunk in enumerate(every) if any(m.code == "77002" for m in chunk.codes)
    ]
    assert list(store.rows_by_code.get("99999", [])) == []
    assert set(store.glossary) == {m.code for c in every for m in c.codes}
    assert store.glossary.counts["77002"] == store.glossary["77002"].mentions


def test_the_store_serves_many_threads(seed_index: Path) -> None:
    store = load_current(seed_index, DEFAULT_MODEL).store
    expected = list(store.chunks)
    failures: list[BaseException] = []

    def read(offset: int) -> None:
        try:
            for i in range(len(expected)):
                row = (i + offset) % len(expected)
                assert store.chunks[row] == expected[row]
                assert store.documents[expected[row].document_id].id == expected[row].document_id
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=read, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
