"""Ingest embeds a chunk once: its sentences' vectors are pooled from the chunk's own pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index import DEFAULT_MODEL, build_index, load_current, resolve_model_path
from index.encoder import OnnxEncoder
from index.passages import TOKEN_BUDGET, encode_texts, encode_with_sentences, token_batches

TEXT = (
    "Lumbar facet injections are reported per level. "
    "Use 64493 for the first lumbar level with imaging guidance. "
    "Add 64494 for the second level."
)


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for end in [i + 1 for i, c in enumerate(text) if c == "."]:
        while text[start] == " ":
            start += 1
        spans.append((start, end))
        start = end
    return spans


def _torch_pooled(text: str, span: tuple[int, int]) -> np.ndarray:
    """The definition, computed apart: the mean of the torch model's last hidden states over
    the tokens inside `span`, L2-normalised."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model_path(DEFAULT_MODEL)
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
    inputs = tokenizer(text, return_tensors="pt", return_offsets_mapping=True, truncation=True)
    offsets = inputs.pop("offset_mapping")[0].numpy()
    with torch.no_grad():
        states = model(**inputs).last_hidden_state[0].numpy()
    inside = (offsets[:, 0] >= span[0]) & (offsets[:, 1] <= span[1]) & (offsets[:, 1] > 0)
    mean = states[inside].mean(axis=0)
    return mean / np.linalg.norm(mean)


def test_pooled_sentence_vectors_are_the_mean_token_states_of_their_span(
    onnx_encoder: OnnxEncoder,
) -> None:
    spans = _sentence_spans(TEXT)
    encoded = encode_with_sentences(onnx_encoder, [TEXT], [spans])
    assert encoded.alone == 0 and encoded.sentences[0].shape == (3, 384)
    for vector, span in zip(encoded.sentences[0], spans, strict=True):
        assert float(vector @ _torch_pooled(TEXT, span)) >= 0.9999
    # The chunk vector is the export's own pooled output, as a plain encode gives it.
    alone = onnx_encoder.encode_passages([TEXT])[0]
    assert float(encoded.vectors[0] @ alone) >= 0.99999


def test_a_sentence_past_the_max_tokens_is_encoded_on_its_own(onnx_encoder: OnnxEncoder) -> None:
    filler = "The modifier applies to the bilateral procedure. " * 40  # about 360 tokens
    last = "Report 77003 for fluoroscopic guidance."
    text = filler + last
    spans = [(0, 48), (len(filler), len(text))]
    encoded = encode_with_sentences(onnx_encoder, [text], [spans])
    assert encoded.alone == 1
    expected = onnx_encoder.encode_passages([last])[0]
    assert np.allclose(encoded.sentences[0][1], expected, atol=1e-5)


@pytest.mark.parametrize("budget", [64, 512, TOKEN_BUDGET])
def test_token_batches_cover_every_text_once_within_the_budget(budget: int) -> None:
    lengths = [5, 300, 17, 17, 64, 2, 128, 9, 40, 40, 40]
    batches = token_batches(lengths, budget)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= budget


def test_bucketed_batches_give_the_vectors_of_a_plain_encode(onnx_encoder: OnnxEncoder) -> None:
    texts = [TEXT, "Bilateral 64494.", TEXT * 3, "Which code for a second lumbar level?"]
    vectors, tokens = encode_texts(onnx_encoder, texts, budget=128)
    assert np.allclose(vectors, onnx_encoder.encode_passages(texts), atol=1e-5)
    assert tokens == sum(len(e.ids) for e in onnx_encoder.tokenizer.encode_batch(texts))


def test_an_onnx_ingest_stores_pooled_sentences_and_embeds_each_chunk_once(
    tmp_path: Path, onnx_encoder: OnnxEncoder
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "facets.txt").write_text(TEXT + "\n", encoding="utf-8")
    report = build_index([corpus], tmp_path / "index", onnx_encoder, model=DEFAULT_MODEL)
    assert report.embedded == report.chunks == 1
    snapshot = load_current(tmp_path / "index", DEFAULT_MODEL)
    text = snapshot.store.documents[snapshot.store.chunks[0].document_id].text
    spans = [tuple(int(x) for x in s) for s in snapshot.sentences.spans]
    assert [text[s:e] for s, e in spans] == [TEXT[s:e] for s, e in _sentence_spans(TEXT)]
    stored = np.asarray(snapshot.sentences.vectors, dtype=np.float32)
    assert snapshot.sentences.vectors.dtype == np.float16  # half of float32 on disk
    # The chunk's context line comes first in its embedding text; spans are shifted past it.
    chunk = snapshot.store.chunks[0]
    context = chunk.context
    shift = (len(context) + 1 if context else 0) - chunk.start
    embedded = f"{context}\n{chunk.text}" if context else chunk.text
    for vector, (s, e) in zip(stored, spans, strict=True):
        expected = _torch_pooled(embedded, (s + shift, e + shift))
        assert float(vector @ expected) >= 0.999  # float16 rounding, and ONNX against torch
