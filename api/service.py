"""The service object shared by the HTTP app, the CLI and the MCP tools.

It owns the embedder and the loaded snapshot, and checks a question the same way whichever
door it came through.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from api.settings import Settings
from index import (
    BuildReport,
    CodeLookup,
    Embedder,
    Searcher,
    SearchResult,
    Snapshot,
    build_index,
    current_snapshot_id,
    load_current,
)
from index.encoder import (
    EncoderUnavailable,
    OnnxEncoder,
    QueryEncoder,
    ensure_export,
    open_encoder,
)
from index.ray_build import RayIngest
from index.snapshot import changed_files, prefetch
from ingest import CptqaError, IndexCorrupt, IndexMissing, InvalidInput, ReadLimits

log = logging.getLogger(__name__)

T = TypeVar("T")
# What a read of a damaged snapshot raises at query time (garbage in chunks.sqlite: "database
# disk image is malformed"; a file gone: OSError).
_READ_ERRORS = (sqlite3.DatabaseError, OSError)


def check_query(question: object, k: object, settings: Settings) -> tuple[str, int]:
    """The cleaned question and k, or `InvalidInput` saying what is wrong."""
    if not isinstance(question, str):
        raise InvalidInput("question must be text: send the question as a string")
    question = " ".join(question.split())
    if not _is_unicode_text(question):
        raise InvalidInput(
            "the question is not valid Unicode text (a lone surrogate, or bytes that are not "
            "UTF-8): send it as UTF-8 text"
        )
    if not question:
        raise InvalidInput(
            "the question is empty: type a question, such as 'fluoro code for a GON block'"
        )
    if len(question) > settings.max_question_chars:
        raise InvalidInput(
            f"the question has {len(question)} characters and the limit is "
            f"{settings.max_question_chars}: ask a shorter question"
        )
    if k is None:
        k = settings.default_k
    if isinstance(k, bool) or not isinstance(k, int):
        raise InvalidInput(f"k must be a whole number of passages from 1 to {settings.max_k}")
    if not 1 <= k <= settings.max_k:
        raise InvalidInput(f"k is {k}: send a whole number of passages from 1 to {settings.max_k}")
    return question, k


def _is_unicode_text(text: str) -> bool:
    """False for a string holding a lone surrogate: a JSON escape like "\\ud800", or the
    stand-in Python puts for a byte of a command-line argument that is not UTF-8. Neither can
    be encoded, so the tokenizer fails on them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class ReloadReport:
    """What a reload did: the snapshot before and after, and how long loading took."""

    previous: str | None
    current: str | None
    reloaded: bool
    seconds: float
    error: str | None


class Service:
    """Model + current snapshot; `search` is safe to call from many threads."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._searcher: Searcher | None = None
        self.load_error: CptqaError | None = None
        self.reload_error: str | None = None
        self._failed_snapshot: str | None = None  # a published id that would not load
        self._unhealthy: dict[str, str] = {}  # snapshots whose reads failed while serving
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._encoders: dict[tuple[str, str], OnnxEncoder] = {}

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = Embedder(self.settings.model, batch_size=self.settings.batch_size)
            return self._embedder

    def passage_encoder(self) -> Embedder | OnnxEncoder:
        """What embeds passages at ingest (called only when there is text to embed).

        The model's ONNX export on every core: the same vectors as torch (cosine >= 0.999),
        about 20% faster (bench/scale.py), and no torch model to load once the export is
        cached. Torch when it was handed in, when CPTQA_ENCODER=torch, or when the model
        cannot be exported.
        """
        if self._embedder is not None or self.settings.encoder == "torch":
            return self.embedder
        try:
            export = ensure_export(self.settings.model, self.settings.cache_dir)
        except EncoderUnavailable as exc:
            log.warning("embedding with torch: %s", exc.message)
            return self.embedder
        return OnnxEncoder(
            export, "fp32", threads=os.cpu_count() or 1, batch_size=self.settings.batch_size
        )

    @property
    def loaded_embedder(self) -> Embedder | None:
        """The torch model if something already loaded it, else None (never loads it)."""
        return self._embedder

    @property
    def index_dir(self) -> Path:
        return self.settings.index_dir

    def has_index(self) -> bool:
        return current_snapshot_id(self.index_dir) is not None

    def build(
        self,
        paths: list[Path] | None = None,
        progress: bool = False,
        *,
        rebuild: bool = False,
        remove: list[Path] | None = None,
        ray_address: str | None = None,
    ) -> BuildReport:
        """Index `paths` (default: the corpus folder, unless only removing) and publish a new
        snapshot if anything changed; the model loads only if there is text to embed. With a
        Ray address (or CPTQA_RAY_ADDRESS) the stages run on that cluster (index/ray_build.py)."""
        targets = list(paths) if paths else ([] if remove else [self.settings.corpus_dir])
        address = ray_address or self.settings.ray_address
        encoder: Callable[[], Any] = self.passage_encoder
        stages = None
        if address:
            ray = RayIngest.join(address)
            encoder, stages = (
                ray.encoder(self.settings.model, self.settings.cache_dir),
                ray.stages(),
            )
        return build_index(
            targets,
            self.index_dir,
            encoder,
            progress=progress,
            rebuild=rebuild,
            remove=remove or (),
            model=self.settings.model,
            encoder_cache=self.settings.cache_dir,
            limits=ReadLimits(self.settings.pdf_max_pages, self.settings.parse_timeout),
            stages=stages,
        )

    @property
    def solo_threads(self) -> int:
        """Threads for a question asked alone (CPTQA_SOLO_QUERY_THREADS); by default this
        process's share of the cores. Server processes share them: with one core taken by
        another process, a 2-thread encode took 8.8 ms against 7.1 ms on one thread."""
        if self.settings.solo_query_threads:
            return self.settings.solo_query_threads
        return max(1, self._core_share)

    @property
    def _core_share(self) -> int:
        return (os.cpu_count() or 1) // max(1, self.settings.workers)

    def query_encoder(self, snapshot: Snapshot) -> QueryEncoder:
        """The encoder that turns questions into vectors for `snapshot` (CPTQA_ENCODER).

        ONNX by default, from the snapshot's own export, with no torch import; the torch model
        when asked for, or (with a warning) when the snapshot has no export.
        """
        if self.settings.encoder != "torch":
            variant = "int8" if self.settings.encoder == "onnx-int8" else "fp32"
            fingerprint = (snapshot.manifest.get("encoder") or {}).get("fingerprint")
            if fingerprint:
                key = (str(fingerprint), variant)
                with self._lock:
                    if key not in self._encoders:
                        self._encoders[key] = open_encoder(
                            snapshot.encoder_dir,
                            variant,
                            self.settings.query_threads,
                            self.solo_threads,
                            # BM25 beside the encoder (index/search.py) takes a second core
                            beside=self._core_share >= 2,
                        )
                    return self._encoders[key]
            log.warning(
                "snapshot %s has no ONNX encoder; questions are encoded by torch", snapshot.id
            )
        embedder = self.embedder
        embedder.use_threads(self.settings.query_threads)
        return embedder

    def load(self) -> Snapshot:
        """Load the current snapshot (raises IndexMissing / IndexCorrupt / IndexIncompatible)."""
        try:
            snapshot = load_current(self.index_dir, self.settings.model)
        except CptqaError as exc:
            self.load_error = exc
            raise
        try:
            encoder = self.query_encoder(snapshot)
        except EncoderUnavailable as exc:
            self.load_error = exc
            raise
        self._searcher = self._open(snapshot, encoder)
        self.load_error = None
        return snapshot

    def _open(self, snapshot: Snapshot, encoder: QueryEncoder) -> Searcher:
        return Searcher(snapshot, encoder, as_of=self.settings.current_year)

    def start_prefetch(self) -> threading.Thread | None:
        """Read the serving snapshot's files into the page cache, in a thread of its own (the
        reads release the GIL), unless CPTQA_PREFETCH is off: the server answers meanwhile,
        from the disk where the cache does not yet hold a page. Started once the server has
        loaded a snapshot, and after each reload."""
        if not self.settings.prefetch or self._searcher is None:
            return None
        thread = threading.Thread(
            target=_prefetch, args=(self._searcher.snapshot,), name="cptqa-prefetch", daemon=True
        )
        thread.start()
        return thread

    def reload(self, retry_failed: bool = True) -> ReloadReport:
        """Load the published snapshot if it is newer than the one serving, and swap it in.

        Requests already running keep the searcher they started with; new ones get the new
        one (a single reference assignment). A snapshot that fails to load leaves the old one
        serving; the reason is kept in `reload_error`, logged, and shown on /readyz.
        """
        with self._reload_lock:
            started = time.perf_counter()
            before = self.serving_snapshot_id
            published = current_snapshot_id(self.index_dir)
            if published is None or published == before:
                return ReloadReport(before, before, False, 0.0, None)
            if published == self._failed_snapshot and not retry_failed:
                return ReloadReport(before, before, False, 0.0, self.reload_error)
            try:
                snapshot = load_current(self.index_dir, self.settings.model, self._unhealthy)
            except CptqaError as exc:
                self._failed_snapshot = published
                self.reload_error = f"snapshot {published} not loaded: {exc.message}"
                log.error("reload failed, still serving %s: %s", before, exc.message)
                if self._searcher is None:
                    self.load_error = exc
                raise
            if snapshot.fallback_reason and snapshot.id == before:
                # The new pointer names a damaged snapshot; the one serving is still the best.
                self._failed_snapshot = published
                self.reload_error = snapshot.fallback_reason
                log.error("reload failed, still serving %s: %s", before, snapshot.fallback_reason)
                return ReloadReport(before, before, False, 0.0, self.reload_error)
            try:
                encoder = self.query_encoder(snapshot)
            except EncoderUnavailable as exc:
                self._failed_snapshot = published
                self.reload_error = f"snapshot {published} not loaded: {exc.message}"
                raise
            self._searcher = self._open(snapshot, encoder)
            self.load_error = None
            self.reload_error = snapshot.fallback_reason or None
            self.start_prefetch()
            seconds = time.perf_counter() - started
            log.info("reloaded snapshot %s (was %s) in %.2f s", snapshot.id, before, seconds)
            return ReloadReport(before, snapshot.id, True, seconds, self.reload_error)

    @property
    def serving_snapshot_id(self) -> str | None:
        return self._searcher.snapshot.id if self._searcher is not None else None

    def published_snapshot(self) -> str | None:
        """The id CURRENT names right now (may be newer than the one serving)."""
        return current_snapshot_id(self.index_dir)

    @property
    def snapshot(self) -> Snapshot:
        return self.searcher.snapshot

    @property
    def searcher(self) -> Searcher:
        if self._searcher is None:
            if self.load_error is not None:
                raise self.load_error
            raise IndexMissing(f"no index in {self.index_dir}: run `cptqa ingest` to build one")
        return self._searcher

    def lookup(self, code: str) -> CodeLookup:
        """What the corpus says about `code` (InvalidInput if malformed, UnknownCode if absent)."""
        return self._healthy(lambda searcher: searcher.lookup(code))

    def read(self, read: Callable[[Searcher], T]) -> T:
        """`read` on the serving snapshot, with the same damage checks as a search."""
        return self._healthy(read)

    def search(self, question: object, k: object = None, explain: bool = False) -> SearchResult:
        question, k = check_query(question, k, self.settings)
        return self._healthy(lambda searcher: searcher.search(question, k, explain=explain))

    def _healthy(self, read: Callable[[Searcher], T]) -> T:
        """`read` on the serving snapshot; if the snapshot's files changed size since it was
        loaded (mapped pages cut off: reading them is SIGBUS) or a read of it fails, it is
        marked unhealthy and `read` runs once more on the fallback, if one loads."""
        searcher = self.searcher
        changed = changed_files(searcher.snapshot)
        if changed is None:
            try:
                return read(searcher)
            except _READ_ERRORS as exc:
                changed = f"{searcher.snapshot.directory}: a read failed ({exc})"
        self.mark_unhealthy(searcher, changed)
        return read(self.searcher)

    def check_health(self) -> None:
        """Mark the serving snapshot unhealthy if its files no longer match its manifest (the
        snapshot watcher calls this between reloads)."""
        searcher = self._searcher
        if searcher is not None and (changed := changed_files(searcher.snapshot)):
            self.mark_unhealthy(searcher, changed)

    def mark_unhealthy(self, searcher: Searcher, reason: str) -> None:
        """Stop serving `searcher`'s snapshot: serve the newest good one if one loads, else
        nothing (/readyz 503 with the reason). Logged once, by the first request to see it."""
        with self._reload_lock:
            if self._searcher is not searcher:
                return  # another request got here first
            bad = searcher.snapshot.id
            self._unhealthy[bad] = f"snapshot {bad} is damaged: {reason}"
            log.error("snapshot %s marked unhealthy: %s", bad, reason)
            try:
                snapshot = load_current(self.index_dir, self.settings.model, self._unhealthy)
                self._searcher = self._open(snapshot, self.query_encoder(snapshot))
            except CptqaError as exc:
                self._searcher = None
                self.load_error = IndexCorrupt(
                    f"{self._unhealthy[bad]}; no other snapshot is usable ({exc.message}): "
                    "run `cptqa ingest --rebuild`"
                )
                log.error("no snapshot to fall back to: %s", exc.message)
                return
            self.reload_error = self._unhealthy[bad] + f"; serving {snapshot.id} instead"
            log.warning("serving snapshot %s instead of %s", snapshot.id, bad)


def _prefetch(snapshot: Snapshot) -> None:
    started = time.perf_counter()
    asked = prefetch(snapshot)
    log.info(
        "read snapshot %s's files into the page cache: %d MiB in %.2f s",
        snapshot.id,
        asked >> 20,
        time.perf_counter() - started,
    )
