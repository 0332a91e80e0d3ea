"""The ONNX export of the embedding model, made once per model and cached.

The ONNX file is made here, from the local model folder, by torch's exporter: nothing is
downloaded. The exported graph includes the pooling and the L2 normalisation, so its output is
the sentence vector itself. Exports are cached per model fingerprint in a cache folder
(`CPTQA_CACHE_DIR`, default ~/.cache/cptqa) and linked into each snapshot's `encoder/`
folder, so a published snapshot carries the encoder it was built with and serving needs
nothing outside the snapshot (index/encoder.py opens it).

    encoder/
      encoder.json     model name, fingerprint, dimension, max tokens, pooling, variants
      tokenizer.json   the model's fast tokenizer, as shipped with the model
      model.onnx       fp32
      model-int8.onnx  dynamic int8 quantisation (weights per channel), measured in the README;
                       made beside model.onnx the first time it is asked for (CPTQA_ENCODER=
                       onnx-int8), not at export: the default encoder never reads it
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.embed import resolve_model_path
from ingest.errors import CptqaError

log = logging.getLogger(__name__)

ENCODER_DIR = "encoder"
EXPORT_VERSION = 1  # bump when the exported graph changes: the cache key includes it
OPSET = 17
VARIANTS = {"fp32": "model.onnx", "int8": "model-int8.onnx"}
# The files of a sentence-transformers folder that decide the vectors.
_MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "pytorch_model.bin",
    "tokenizer.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
    "modules.json",
)
_export_lock = threading.Lock()


class EncoderUnavailable(CptqaError):
    """The ONNX encoder cannot be made or opened."""


def default_cache_dir() -> Path:
    """~/.cache/cptqa; `cptqa` takes another from CPTQA_CACHE_DIR (api/settings.py)."""
    return Path.home() / ".cache" / "cptqa"


def model_fingerprint(model: str) -> str:
    """A short hash of the model files that decide the vectors, and of the export recipe."""
    path = resolve_model_path(model)
    digest = hashlib.sha256(f"export-{EXPORT_VERSION}-opset-{OPSET}".encode())
    for name in _MODEL_FILES:
        file = path / name
        if file.is_file():
            digest.update(name.encode())
            with open(file, "rb") as handle:
                for block in iter(lambda h=handle: h.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def _read_model_config(path: Path) -> dict[str, Any]:
    """Max tokens and pooling of a sentence-transformers folder (defaults: 256, mean)."""
    config: dict[str, Any] = {"max_tokens": 256, "pooling": "mean"}
    bert = path / "sentence_bert_config.json"
    if bert.is_file():
        config["max_tokens"] = int(json.loads(bert.read_text()).get("max_seq_length", 256))
    pooling = path / "1_Pooling" / "config.json"
    if pooling.is_file():
        modes = json.loads(pooling.read_text())
        if modes.get("pooling_mode_cls_token"):
            config["pooling"] = "cls"
        elif not modes.get("pooling_mode_mean_tokens", True):
            raise EncoderUnavailable(
                f"the model in {path} pools neither by mean nor by CLS; set CPTQA_ENCODER=torch"
            )
    if not (path / "tokenizer.json").is_file():
        raise EncoderUnavailable(
            f"the model in {path} has no tokenizer.json (a fast tokenizer is needed for ONNX "
            "serving); set CPTQA_ENCODER=torch"
        )
    return config


def ensure_export(model: str, cache_dir: Path | None = None) -> Path:
    """The folder holding the ONNX export of `model`, exporting it first if it is not cached.

    The export is written in a temporary folder beside the cache entry and renamed into place,
    so a crash leaves either no entry or a whole one.
    """
    cache_dir = cache_dir or default_cache_dir()
    fingerprint = model_fingerprint(model)
    final = cache_dir / "encoders" / fingerprint
    if (final / "encoder.json").is_file():
        return final
    with _export_lock:
        if (final / "encoder.json").is_file():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".export-{fingerprint}-", dir=final.parent))
        try:
            _export(model, fingerprint, work)
            with contextlib.suppress(FileExistsError, OSError):
                os.replace(work, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if not (final / "encoder.json").is_file():  # pragma: no cover - a rename race lost
            raise EncoderUnavailable(f"could not write the encoder cache in {final}")
    return final


def _export(model: str, fingerprint: str, out: Path) -> None:
    """Export `model` to ONNX (fp32) in `out`. Needs torch and transformers."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    transformers_logging.disable_progress_bar()
    path = resolve_model_path(model)
    config = _read_model_config(path)
    log.info("exporting %s to ONNX (once per model; cached in %s)", model, out.parent)
    network = AutoModel.from_pretrained(
        str(path), local_files_only=True, attn_implementation="eager"
    ).eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            hidden = self.network(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            if config["pooling"] == "cls":
                pooled = hidden[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    shutil.copyfile(path / "tokenizer.json", out / "tokenizer.json")
    tokenizer = _tokenizer(out / "tokenizer.json", config["max_tokens"])
    sample = _feeds(tokenizer, ["a sample question", "a longer sample passage of text here"])
    inputs = tuple(torch.from_numpy(sample[name]) for name in _INPUTS)
    axes = {name: {0: "batch", 1: "tokens"} for name in _INPUTS}
    with torch.no_grad(), warnings_quiet():
        torch.onnx.export(
            Pooled(),
            inputs,
            str(out / VARIANTS["fp32"]),
            input_names=list(_INPUTS),
            output_names=["embedding"],
            dynamic_axes={**axes, "embedding": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    dimension = int(network.config.hidden_size)
    meta = {
        "model": model,
        "fingerprint": fingerprint,
        "dimension": dimension,
        "max_tokens": config["max_tokens"],
        "pooling": config["pooling"],
        "variants": VARIANTS,
        "opset": OPSET,
    }
    (out / "encoder.json").write_text(json.dumps(meta, indent=2) + "\n")


_quantise_lock = threading.Lock()


def ensure_int8(directory: Path) -> None:
    """Make `directory`'s int8 variant from its fp32 model if it is not there yet (written to
    a temporary file and renamed, so a crash leaves no half-written model)."""
    target = directory / VARIANTS["int8"]
    if target.is_file():
        return
    with _quantise_lock:
        if target.is_file():
            return
        from onnxruntime.quantization import QuantType, quantize_dynamic

        log.info("quantising %s to int8 (once)", directory)
        partial = directory / f".{VARIANTS['int8']}.{os.getpid()}.partial"
        try:
            with warnings_quiet(), _quantiser_quiet():
                quantize_dynamic(
                    str(directory / VARIANTS["fp32"]),
                    str(partial),
                    weight_type=QuantType.QInt8,
                    per_channel=True,
                )
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)


@contextlib.contextmanager
def _quantiser_quiet():  # type: ignore[no-untyped-def]
    """ONNX Runtime's quantiser logs a line per tensor ("Quantization parameters for tensor
    ... not specified") and advice ("consider to run pre-processing") on the root logger:
    none of it is for the user of a finished export."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


@contextlib.contextmanager
def warnings_quiet():  # type: ignore[no-untyped-def]
    """The exporter's tracer warnings are about shapes we make dynamic; not for the user."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def link_export(source: Path, target: Path) -> None:
    """Put the export in `source` into `target` (hard links where possible, else copies)."""
    target.mkdir(parents=True, exist_ok=True)
    for file in source.iterdir():
        if not file.is_file():
            continue
        try:
            os.link(file, target / file.name)
        except OSError:
            shutil.copyfile(file, target / file.name)


_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _tokenizer(path: Path, max_tokens: int):  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.no_padding()
    return tokenizer


def _feeds(tokenizer: Any, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """Token ids, mask and type ids of `texts`, padded to the longest."""
    return padded_feeds(tokenizer.encode_batch(list(texts)))


def padded_feeds(encodings: Sequence[Any]) -> dict[str, np.ndarray]:
    """The model's inputs for texts already tokenized, padded to the longest."""
    width = max(len(e.ids) for e in encodings)
    feeds = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in _INPUTS}
    for i, encoding in enumerate(encodings):
        n = len(encoding.ids)
        feeds["input_ids"][i, :n] = encoding.ids
        feeds["attention_mask"][i, :n] = encoding.attention_mask
        feeds["token_type_ids"][i, :n] = encoding.type_ids
    return feeds
