"""The query encoder: all-MiniLM-L6-v2 (or the configured model) run by ONNX Runtime.

A question must be embedded on every query, and on 2 cores the torch model spends ~15 ms on
it; the same network in ONNX Runtime takes ~6 ms (fp32) or ~3 ms (int8). Serving with ONNX
also never imports torch, which is most of a cold start.

The ONNX file is made here, from the local model folder, by torch's exporter: nothing is
downloaded. The exported graph includes the pooling and the L2 normalisation, so its output is
the sentence vector itself. Exports are cached per model fingerprint in a cache folder
(`CPTQA_CACHE_DIR`, default ~/.cache/cptqa) and linked into each snapshot's `encoder/`
folder, so a published snapshot carries the encoder it was built with and serving needs
nothing outside the snapshot.

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
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from index.embed import ModelUnavailable, resolve_model_path
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


class QueryEncoder(Protocol):
    """What search needs of an encoder: OnnxEncoder here, or the torch Embedder.

    How many threads or sessions a question gets is the encoder's business: the searcher only
    says when a search runs (`busy`) and offers work it could do meanwhile (`start_query`)."""

    name: str

    def encode_query(self, text: str) -> np.ndarray: ...

    def busy(self) -> contextlib.AbstractContextManager[None]:
        """Held for the whole of one search, so the encoder knows which questions overlap."""
        ...

    def start_query(self, text: str) -> Callable[[], np.ndarray] | None:
        """Start encoding `text` while the caller works on; call the result for the vector.
        None when the encoder would rather encode in line (`encode_query`)."""
        ...


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
    encodings = tokenizer.encode_batch(list(texts))
    width = max(len(e.ids) for e in encodings)
    feeds = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in _INPUTS}
    for i, encoding in enumerate(encodings):
        n = len(encoding.ids)
        feeds["input_ids"][i, :n] = encoding.ids
        feeds["attention_mask"][i, :n] = encoding.attention_mask
        feeds["token_type_ids"][i, :n] = encoding.type_ids
    return feeds


class OnnxEncoder:
    """Encodes questions (and passages) with an exported model; safe to share across threads.

    `variant` is "fp32" or "int8"; `threads` is ONNX Runtime's intra-op thread count per call
    (serving wants 1 when questions arrive together: see Embedder.use_threads).

    `solo_threads` above `threads` opens a second session with that many threads, used for a
    question that arrives while no other is being encoded: a lone question on an idle server
    then gets every core (fp32 on 2 cores: 4.8 ms against 7.0 ms), and questions that overlap
    get one thread each, which keeps throughput (230 against 178 encodes/s at 4 callers, where
    two-thread calls fight for the cores). The second session costs one more copy of the
    weights in memory (about 110 MB for all-MiniLM-L6-v2).
    """

    def __init__(
        self,
        directory: Path,
        variant: str = "fp32",
        threads: int = 1,
        batch_size: int = 8,
        solo_threads: int = 0,
        beside: bool | None = None,
    ) -> None:
        meta_path = directory / "encoder.json"
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise EncoderUnavailable(f"no readable encoder in {directory}: {exc}") from exc
        if variant not in VARIANTS:
            raise EncoderUnavailable(
                f"unknown encoder variant {variant!r}; expected one of {', '.join(VARIANTS)}"
            )
        self.name = str(meta["model"])
        self.fingerprint = str(meta["fingerprint"])
        self.dimension = int(meta["dimension"])
        self.variant = variant
        self.directory = directory
        self.batch_size = batch_size
        self.threads = max(1, threads)
        self.solo_threads = solo_threads if solo_threads > self.threads else 0
        # start_query needs a second core for its caller (off when server processes have a
        # core each; None: on with 2 cores or more).
        self.beside = (os.cpu_count() or 1) >= 2 if beside is None else beside
        self._in_flight = 0  # questions being encoded, or searched (see `busy`)
        self._held = threading.local()
        self.solo_calls = 0  # questions encoded alone, on the solo session
        self._count_lock = threading.Lock()
        self._beside: ThreadPoolExecutor | None = None  # see start_query
        self.beside_calls = 0  # questions encoded beside their caller (start_query)
        try:
            if variant == "int8":
                ensure_int8(directory)
            self._session = _session(directory / VARIANTS[variant], self.threads)
            self._solo: Any = None
            self._tokenizer = _tokenizer(directory / "tokenizer.json", int(meta["max_tokens"]))
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EncoderUnavailable(f"cannot open the encoder in {directory}: {exc}") from exc
        self.solo_ready = threading.Event()
        if self.solo_threads:
            # Opened beside the first questions rather than before them: a server is ready
            # 0.6 s sooner, and questions use the one-thread session until then. Not a daemon:
            # a process that ends while ONNX Runtime is still opening it aborts (SIGABRT), so
            # exit waits for it instead.
            path = directory / VARIANTS[variant]
            threading.Thread(
                target=self._open_solo, args=(path,), name="cptqa-solo-encoder"
            ).start()
        else:
            self.solo_ready.set()

    @property
    def session(self) -> Any:
        """The ONNX Runtime session of `threads` threads (ingest runs its own batches on it)."""
        return self._session

    @property
    def tokenizer(self) -> Any:
        """The model's fast tokenizer, truncating at the model's max tokens, unpadded."""
        return self._tokenizer

    def _open_solo(self, path: Path) -> None:
        try:
            self._solo = _session(path, self.solo_threads)
        except Exception:  # the one-thread session keeps answering
            log.warning("the %d-thread encoder session did not open", self.solo_threads)
        finally:
            self.solo_ready.set()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Counts a whole search as in flight, so that a question arriving while another is
        past its encoding (ranking, in Python, on one core) does not take both cores."""
        with self._count_lock:
            self._in_flight += 1
        self._held.count = getattr(self._held, "count", 0) + 1
        try:
            yield
        finally:
            self._held.count -= 1
            with self._count_lock:
                self._in_flight -= 1

    def encode_query(self, text: str) -> np.ndarray:
        """The vector of one question, shape (dimension,)."""
        if self._solo is None:
            return self._run([text])[0]
        own = getattr(self._held, "count", 0)  # this thread's own search
        with self._count_lock:
            alone = self._in_flight == own
            self._in_flight += 1
            self.solo_calls += alone
        try:
            return self._run([text], self._solo if alone else self._session)[0]
        finally:
            with self._count_lock:
                self._in_flight -= 1

    def start_query(self, text: str) -> Callable[[], np.ndarray] | None:
        """Starts encoding one question on the encoder's own thread, with one ONNX thread, so
        that the caller can work on the other core meanwhile; call the returned function for
        the vector. None when another search is in flight (the cores are taken: encode in
        line instead) or `beside` is off.

        Returns once ONNX Runtime has the question: a thread waiting for the interpreter lock
        would otherwise start only when the caller's numpy work yields it."""
        if not self.beside:
            return None
        own = getattr(self._held, "count", 0)
        with self._count_lock:
            if self._in_flight != own:
                return None
            self._in_flight += 1
            self.beside_calls += 1
        try:
            feeds = _feeds(self._tokenizer, [text])
            if self._beside is None:
                self._beside = ThreadPoolExecutor(1, thread_name_prefix="cptqa-encode")
            running = threading.Event()
            future = self._beside.submit(self._run_beside, feeds, running)
        except BaseException:
            self._done()
            raise
        running.wait()
        return lambda: future.result()

    def _run_beside(self, feeds: dict[str, np.ndarray], running: threading.Event) -> np.ndarray:
        try:
            running.set()
            (vectors,) = self._session.run(None, feeds)
            return np.ascontiguousarray(vectors[0], dtype=np.float32)
        finally:
            self._done()

    def _done(self) -> None:
        with self._count_lock:
            self._in_flight -= 1

    def encode_passages(
        self, texts: Sequence[str], progress: bool = False, batch_size: int | None = None
    ) -> np.ndarray:
        """Vectors of passages, batched by similar length, shape (len(texts), dimension)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        size = batch_size or self.batch_size
        starts = range(0, len(order), size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="Batches", unit="batch")
        for start in starts:
            batch = order[start : start + size]
            out[batch] = self._run([texts[i] for i in batch])
        return out

    def _run(self, texts: Sequence[str], session: Any = None) -> np.ndarray:
        feeds = _feeds(self._tokenizer, texts)
        (vectors,) = (session or self._session).run(None, feeds)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _session(path: Path, threads: int) -> Any:
    """An ONNX Runtime CPU session with `threads` intra-op threads."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # The pool's threads spin within a call and stop when it returns. Left spinning after
    # it, they took the other core from the rest of the query: on 10,000 synthetic chunks a
    # query took 35.6 ms against 19.9 ms (a 2-thread session; 23.6 ms on one thread).
    options.add_session_config_entry("session.force_spinning_stop", "1")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def open_encoder(
    directory: Path,
    variant: str = "fp32",
    threads: int = 1,
    solo_threads: int = 0,
    beside: bool | None = None,
) -> OnnxEncoder:
    """`OnnxEncoder`, with a clear error if the snapshot has no encoder folder."""
    if not (directory / "encoder.json").is_file():
        raise ModelUnavailable(
            f"the index has no ONNX encoder in {directory}; rebuild it with "
            "`cptqa ingest --rebuild`, or set CPTQA_ENCODER=torch"
        )
    return OnnxEncoder(directory, variant, threads, solo_threads=solo_threads, beside=beside)
