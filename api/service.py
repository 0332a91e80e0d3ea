"""The service object shared by the HTTP app, the CLI and the MCP tools.

It owns the embedder and the loaded snapshot, and checks a question the same way whichever
door it came through.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

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
from ingest import CptqaError, IndexMissing, InvalidInput

log = logging.getLogger(__name__)


def check_query(question: object, k: object, settings: Settings) -> tuple[str, int]:
    """The cleaned question and k, or `InvalidInput` saying what is wrong."""
    if not isinstance(question, str):
        raise InvalidInput("`question` must be a string")
    question = " ".join(question.split())
    if not question:
        raise InvalidInput(
            "`question` is empty: type a question, e.g. 'fluoro code for a GON block'"
        )
    if len(question) > settings.max_question_chars:
        raise InvalidInput(
            f"`question` has {len(question)} characters; the limit is "
            f"{settings.max_question_chars}. Ask a shorter question."
        )
    if k is None:
        k = settings.default_k
    if isinstance(k, bool) or not isinstance(k, int):
        raise InvalidInput("`k` must be a whole number")
    if not 1 <= k <= settings.max_k:
        raise InvalidInput(f"`k` must be between 1 and {settings.max_k}; got {k}")
    return question, k


class Service:
    """Model + current snapshot; `search` is safe to call from many threads."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._searcher: Searcher | None = None
        self.load_error: CptqaError | None = None
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = Embedder(self.settings.model, batch_size=self.settings.batch_size)
            return self._embedder

    @property
    def index_dir(self) -> Path:
        return self.settings.index_dir

    def has_index(self) -> bool:
        return current_snapshot_id(self.index_dir) is not None

    def build(self, paths: list[Path] | None = None, progress: bool = False) -> BuildReport:
        """Index `paths` (default: the corpus folder) and publish a new snapshot."""
        report = build_index(
            paths or [self.settings.corpus_dir], self.index_dir, self.embedder, progress=progress
        )
        return report

    def load(self) -> Snapshot:
        """Load the current snapshot (raises IndexMissing / IndexCorrupt / IndexIncompatible)."""
        try:
            snapshot = load_current(self.index_dir, self.settings.model)
        except CptqaError as exc:
            self.load_error = exc
            raise
        self._searcher = Searcher(snapshot, self.embedder)
        self.load_error = None
        return snapshot

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
        return self.searcher.lookup(code)

    def search(self, question: object, k: object = None) -> SearchResult:
        question, k = check_query(question, k, self.settings)
        return self.searcher.search(question, k)
