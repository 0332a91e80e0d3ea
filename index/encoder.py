"""The query encoder: all-MiniLM-L6-v2 (or the configured model) run by ONNX Runtime.

A question must be embedded on every query, and on 2 cores the torch model spends ~15 ms on
it; the same network in ONNX Runtime takes ~6 ms (fp32) or ~3 ms (int8). Serving with ONNX
also never imports torch, which is most of a cold start.

This module opens an export's sessions and shares them across threads (`OnnxEncoder`: a
second, many-threaded session for a lone question, a question encoded beside its caller's BM25
work); the export itself, its cache and its `encoder/` folder are index/onnx_export.py's, and
their names stay importable from here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from index.embed import ModelUnavailable
from index.onnx_export import (
    ENCODER_DIR,
    EXPORT_VERSION,
    OPSET,
    VARIANTS,
    EncoderUnavailable,
    _feeds,
    _tokenizer,
    default_cache_dir,
    ensure_export,
    ensure_int8,
    link_export,
    model_fingerprint,
    warnings_quiet,
)

__all__ = [
    "ENCODER_DIR",
    "EXPORT_VERSION",
    "OPSET",
    "VARIANTS",
    "EncoderUnavailable",
    "OnnxEncoder",
    "QueryEncoder",
    "_feeds",
    "default_cache_dir",
    "ensure_export",
    "ensure_int8",
    "link_export",
    "model_fingerprint",
    "open_encoder",
    "warnings_quiet",
]

log = logging.getLogger(__name__)


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
