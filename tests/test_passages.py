"""Ingest embeds chunks and sentences in batches cut by tokens, and stores them compactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index import DEFAULT_MODEL, build_index, load_current
from index.encoder import OnnxEncoder
from index.passages import TOKEN_BUDGET, encode_texts, token_batches

TEXT = (
    "Lumbar facet injections are reported per level. "
    "Use 64493 for the first lumbar level with imaging guidance. "
    "Add 64494 for the second level."
)


@pytest.mark.parametrize("budget", [64, 512, TOKEN_BUDGET])
def test_token_batches_cover_every_text_once_within_the_budget(budget: int) -> None:
    lengths = [5, 300, 17, 17, 64, 2, 128, 9, 40, 40, 40]
    batches = token_batches(lengths, budget)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= budget
        widths = [lengths[i] for i in batch]
        assert widths == sorted(widths)  # similar lengths together: little padding


def test_bucketed_batches_give_the_vectors_of_a_plain_encode(onnx_encoder: OnnxEncoder) -> None:
    texts = [TEXT, "Bilateral 64494.", TEXT * 3, "Which code for a second lumbar level?"]
    vectors, tokens = encode_texts(onnx_encoder, texts, budget=128)
    assert np.allclose(vectors, onnx_encoder.encode_passages(texts), atol=1e-5)
    assert tokens == sum(len(e.ids) for e in onnx_encoder.tokenizer.encode_batch(texts))


def test_an_onnx_ingest_stores_each_sentence_vector_in_float16(
    tmp_path: Path, onnx_encoder: OnnxEncoder
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "facets.txt").write_text(TEXT + "\n", encoding="utf-8")
    report = build_index([corpus], tmp_path / "index", onnx_encoder, model=DEFAULT_MODEL)
    assert report.embedded == report.chunks == 1
    snapshot = load_current(tmp_path / "index", DEFAULT_MODEL)
    text = snapshot.store.documents[snapshot.store.chunks[0].document_id].text
    sentences = [text[int(s) : int(e)] for s, e in snapshot.sentences.spans]
    assert len(sentences) == 3 and sentences[1].startswith("Use 64493")
    assert snapshot.sentences.vectors.dtype == np.float16  # half of float32 on disk
    expected = onnx_encoder.encode_passages(sentences)
    stored = np.asarray(snapshot.sentences.vectors, dtype=np.float32)
    assert np.allclose(stored, expected, atol=1e-3)  # float16: about 3 significant digits
    assert np.min(np.sum(stored * expected, axis=1)) >= 0.9999
