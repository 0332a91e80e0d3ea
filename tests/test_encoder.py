"""The ONNX query encoder: the same vectors and the same rankings as the torch model, made
offline from the packaged model, cached, carried in each snapshot, and served without torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from api import Settings
from api.service import Service
from index import DEFAULT_MODEL, Embedder, Searcher, build_index, load_current, resolve_model_path
from index.encoder import VARIANTS, OnnxEncoder, ensure_export, model_fingerprint
from tests.conftest import CORPUS, DATA, read_jsonl

QUESTIONS = [
    row["question"]
    for name in ("dev_questions.jsonl", "dev_questions_extra.jsonl")
    for row in read_jsonl(DATA / name)
]


def _sample_texts() -> list[str]:
    passages = [p.read_text(encoding="utf-8")[:2000] for p in sorted(CORPUS.iterdir())]
    return [*QUESTIONS, *passages, "77002", "x", "word " * 400]  # short, code-only, truncated


def test_onnx_vectors_match_the_torch_model(embedder: Embedder, onnx_encoder: OnnxEncoder) -> None:
    texts = _sample_texts()
    torch_vectors = embedder.encode_passages(texts)
    one_by_one = np.vstack([onnx_encoder.encode_query(t) for t in texts])
    batched = onnx_encoder.encode_passages(texts, batch_size=8)
    assert one_by_one.shape == torch_vectors.shape == (len(texts), 384)
    assert np.min(np.sum(torch_vectors * one_by_one, axis=1)) >= 0.999
    assert np.min(np.sum(torch_vectors * batched, axis=1)) >= 0.999
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-4)


def test_onnx_ranks_the_dev_questions_exactly_as_torch_does(
    dev_index: Path, embedder: Embedder, onnx_encoder: OnnxEncoder
) -> None:
    snapshot = load_current(dev_index, DEFAULT_MODEL)
    by_torch, by_onnx = Searcher(snapshot, embedder), Searcher(snapshot, onnx_encoder)
    for question in QUESTIONS:
        torch_ids = [h.chunk.id for h in by_torch.search(question, 5).hits]
        onnx_ids = [h.chunk.id for h in by_onnx.search(question, 5).hits]
        assert onnx_ids == torch_ids, question


def test_the_int8_variant_is_smaller_and_close(embedder: Embedder) -> None:
    export = ensure_export(DEFAULT_MODEL)
    int8 = OnnxEncoder(export, "int8")
    sizes = {v: (export / f).stat().st_size for v, f in VARIANTS.items()}
    assert sizes["int8"] < sizes["fp32"] / 3
    vectors = np.vstack([int8.encode_query(q) for q in QUESTIONS])
    cosines = np.sum(embedder.encode_passages(QUESTIONS) * vectors, axis=1)
    # Close, but not the same: README "Speed" has the eval figures that kept it off by default.
    assert 0.95 <= float(np.min(cosines)) < 0.9999


def test_the_export_is_cached_by_fingerprint_and_written_whole(tmp_path: Path) -> None:
    first = ensure_export(DEFAULT_MODEL)
    stamp = (first / "model.onnx").stat().st_mtime_ns
    assert ensure_export(DEFAULT_MODEL) == first
    assert (first / "model.onnx").stat().st_mtime_ns == stamp  # not exported again
    meta = json.loads((first / "encoder.json").read_text())
    assert meta["fingerprint"] == first.name == model_fingerprint(DEFAULT_MODEL)
    assert not list(first.parent.glob(".export-*"))  # no half-written export left behind


def test_every_snapshot_carries_its_encoder(seed_index: Path) -> None:
    snapshot = load_current(seed_index, DEFAULT_MODEL)
    export = ensure_export(DEFAULT_MODEL)
    assert snapshot.manifest["encoder"]["fingerprint"] == export.name
    # The int8 variant is made on first use, not at export (ensure_int8): only what every
    # export has is carried by every snapshot.
    for name in ("encoder.json", "tokenizer.json", VARIANTS["fp32"]):
        carried = snapshot.encoder_dir / name
        assert carried.read_bytes() == (export / name).read_bytes()
        assert f"encoder/{name}" in snapshot.manifest["files"]


def test_serving_encodes_questions_without_importing_torch(seed_index: Path) -> None:
    script = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from api import Settings\n"
        "from api.service import Service\n"
        f"service = Service(Settings(index_dir=Path({str(seed_index)!r})))\n"
        "service.load()\n"
        "result = service.search('which fluoro code for occipital nerve block', 3)\n"
        "print(json.dumps({'torch': 'torch' in sys.modules,\n"
        "                  'encoder': type(service.searcher.embedder).__name__,\n"
        "                  'first': result.codes[0].code}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    assert reply == {"torch": False, "encoder": "OnnxEncoder", "first": "77002"}


def test_the_encoder_setting_picks_the_variant(seed_index: Path, embedder: Embedder) -> None:
    for setting, expected in (("onnx", "fp32"), ("onnx-int8", "int8")):
        service = Service(Settings(index_dir=seed_index, encoder=setting), embedder)
        service.load()
        assert isinstance(service.searcher.embedder, OnnxEncoder)
        assert service.searcher.embedder.variant == expected
    service = Service(Settings(index_dir=seed_index, encoder="torch"), embedder)
    service.load()
    assert service.searcher.embedder is embedder


def test_a_model_that_cannot_be_exported_is_served_by_torch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A local model folder without the fast tokenizer file: sentence-transformers still loads
    # it (from vocab.txt), the ONNX path cannot, so the snapshot has no encoder.
    model = tmp_path / "model"
    shutil.copytree(resolve_model_path(DEFAULT_MODEL), model)
    (model / "tokenizer.json").unlink()
    settings = Settings(index_dir=tmp_path / "index", model=str(model), cache_dir=tmp_path / "c")
    service = Service(settings)
    with caplog.at_level("WARNING"):
        service.build([CORPUS])
        snapshot = service.load()
    assert snapshot.manifest["encoder"] is None
    assert not snapshot.encoder_dir.exists()
    assert isinstance(service.searcher.embedder, Embedder)
    assert service.search("which fluoro code for occipital nerve block", 3).codes[0].code == "77002"
    assert "tokenizer.json" in caplog.text


def test_a_build_links_the_cached_export_into_the_snapshot(
    tmp_path: Path, embedder: Embedder
) -> None:
    cache = tmp_path / "cache"
    report = build_index([CORPUS], tmp_path / "index", embedder, encoder_cache=cache)
    cached = next((cache / "encoders").iterdir())
    carried = report.snapshot / "encoder" / "model.onnx"
    assert carried.stat().st_ino == (cached / "model.onnx").stat().st_ino  # a hard link


def test_ingest_embeds_with_onnx_without_loading_torch(tmp_path: Path, seed_index: Path) -> None:
    service = Service(Settings(index_dir=tmp_path / "index", corpus_dir=CORPUS))
    service.build()
    assert service.loaded_embedder is None  # the torch model was never loaded
    by_onnx = load_current(tmp_path / "index", DEFAULT_MODEL)
    by_torch = load_current(seed_index, DEFAULT_MODEL)  # built with the torch model
    assert list(by_onnx.store.chunks) == list(by_torch.store.chunks)
    cosines = np.sum(np.asarray(by_onnx.vectors) * np.asarray(by_torch.vectors), axis=1)
    assert float(np.min(cosines)) >= 0.999
    sentences = np.sum(
        np.asarray(by_onnx.sentences.vectors) * np.asarray(by_torch.sentences.vectors), axis=1
    )
    assert float(np.min(sentences)) >= 0.999


def test_a_lone_question_gets_every_core_and_overlapping_ones_get_one_each() -> None:
    export = ensure_export(DEFAULT_MODEL)
    assert OnnxEncoder(export, "fp32", threads=2, solo_threads=2).solo_threads == 0  # off
    encoder = OnnxEncoder(export, "fp32", threads=1, solo_threads=2)
    assert encoder.solo_ready.wait(60)  # opened in the background
    expected = {q: encoder.encode_query(q) for q in QUESTIONS}  # one at a time: all solo
    assert encoder.solo_calls == len(QUESTIONS)

    def encode_all(offset: int) -> list[tuple[str, np.ndarray]]:
        order = QUESTIONS[offset:] + QUESTIONS[:offset]
        return [(q, encoder.encode_query(q)) for q in order * 3]

    with ThreadPoolExecutor(4) as pool:
        results = [pair for batch in pool.map(encode_all, range(4)) for pair in batch]
    overlapped = len(results) - (encoder.solo_calls - len(QUESTIONS))
    assert overlapped > 0  # some questions met others in flight and took the one-thread session
    for question, vector in results:  # either session gives the same vector
        assert float(np.dot(vector, expected[question])) >= 0.99999, question


def test_serving_turns_the_solo_session_on_by_default_and_off_by_setting(
    seed_index: Path,
) -> None:
    cores = os.cpu_count() or 1
    cases = [  # (setting, workers, expected threads; 0 = no solo session)
        (0, 1, cores if cores > 1 else 0),
        (0, cores, 0),  # one worker per core: no core to spare
        (1, 1, 0),
        (2, cores, 2),  # asked for explicitly
    ]
    for setting, workers, expected in cases:
        settings = Settings(index_dir=seed_index, solo_query_threads=setting, workers=workers)
        service = Service(settings)
        service.load()
        encoder = service.searcher.embedder
        assert encoder.solo_threads == expected, (setting, workers)
        # BM25 beside the encoder only with a second core of the process's own
        assert encoder.beside == (cores // workers >= 2), (setting, workers)


def test_a_question_asked_while_another_search_runs_takes_one_thread() -> None:
    encoder = OnnxEncoder(ensure_export(DEFAULT_MODEL), "fp32", threads=1, solo_threads=2)
    assert encoder.solo_ready.wait(60)
    with encoder.busy():  # this thread's own search does not count against it
        encoder.encode_query(QUESTIONS[0])
    assert encoder.solo_calls == 1
    started, finish = threading.Event(), threading.Event()

    def another_search() -> None:
        with encoder.busy():  # ranking in another thread, past its own encoding
            started.set()
            finish.wait(30)

    other = threading.Thread(target=another_search)
    other.start()
    assert started.wait(30)
    encoder.encode_query(QUESTIONS[1])
    assert encoder.solo_calls == 1  # one thread: the other search is using a core
    finish.set()
    other.join()
    encoder.encode_query(QUESTIONS[2])
    assert encoder.solo_calls == 2


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="encoding beside the caller needs 2 cores")
def test_a_question_encoded_beside_the_caller_gets_the_same_vector() -> None:
    encoder = OnnxEncoder(ensure_export(DEFAULT_MODEL), "fp32", threads=1)
    for question in QUESTIONS[:5]:
        with encoder.busy():  # as a search: its own search does not count against it
            pending = encoder.start_query(question)
            assert pending is not None
            vector = pending()
        assert np.array_equal(vector, encoder.encode_query(question))
    assert encoder._in_flight == 0  # counted while it ran, released after
    started, finish = threading.Event(), threading.Event()

    def another_search() -> None:
        with encoder.busy():
            started.set()
            finish.wait(30)

    other = threading.Thread(target=another_search)
    other.start()
    assert started.wait(30)
    with encoder.busy():
        assert encoder.start_query(QUESTIONS[0]) is None  # the other core is taken
    finish.set()
    other.join()


def test_search_gives_the_same_results_with_bm25_beside_the_encoder(
    dev_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import index.search

    snapshot = load_current(dev_index, DEFAULT_MODEL)
    encoder = OnnxEncoder(snapshot.encoder_dir, "fp32")
    searcher = Searcher(snapshot, encoder)

    def answers() -> list[tuple[list[str], list[str]]]:
        results = [searcher.search(q, 5) for q in QUESTIONS]
        return [([h.chunk.id for h in r.hits], [c.code for c in r.codes]) for r in results]

    monkeypatch.setattr(index.search, "OVERLAP_POSTINGS", 10**12)  # never beside
    in_line = answers()
    assert encoder.beside_calls == 0
    monkeypatch.setattr(index.search, "OVERLAP_POSTINGS", 0)  # always, on 2 cores or more
    assert answers() == in_line
    if (os.cpu_count() or 1) >= 2:
        assert encoder.beside_calls == len(QUESTIONS)  # asked one at a time: all beside
