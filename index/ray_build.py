"""Ingest on a Ray cluster: reading files, code extraction, chunking and embedding run as
Ray Data stages; the driver (`cptqa ingest --ray ADDRESS`) keeps the rest of `build_index`.

The stages call the local ingest's own functions on the workers (`parse_file`,
`chunk_document_open`, `chunk_document`, `encode_texts`), and their results come back in the
local order, so the snapshot is the one a local ingest writes. A file is parsed, scanned for
codes and chunked in one task: chunked with its own codes, which gives the chunks a local
ingest makes unless a footnote-fused code in it is written only in another document (rare);
such a document is chunked again once the corpus's codes are known. Embedding follows the
local plan exactly: the driver tokenizes the texts and cuts the same token batches
(index/passages.py), and each batch is encoded whole by one actor, so a vector is computed
from the same padded batch and rounds to the same float16. Each actor loads the encoder once,
from the export's bytes in Ray's object store: a worker needs cptqa installed, not the model
cache. The driver reads the corpus files and sends their bytes (only files no earlier ingest
read): the nodes need not see the corpus folder, nor share a disk with the driver.

Barriers the local ingest has too stay on the driver: which documents changed (so an
incremental ingest embeds only new text), the corpus-wide code set that footnote-fused codes
are checked against, and the batch plan.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import socket
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from index.build import IngestStages
from index.encoder import OnnxEncoder, ensure_export
from index.passages import TOKEN_BUDGET, encode_texts, token_batches
from ingest import (
    Chunk,
    ChunkerOptions,
    CptqaError,
    Document,
    ReadLimits,
    chunk_document,
    chunk_document_open,
)
from ingest.load import parse_file, read_raw
from ingest.types import chunk_id

log = logging.getLogger(__name__)

# Bytes of files sent to the cluster at once for parsing (the driver holds them meanwhile).
SEND_BYTES = 256 * 1024 * 1024
# Files a worker needs to open the encoder (the int8 variant is not used to ingest).
ENCODER_FILES = ("encoder.json", "model.onnx", "tokenizer.json")


class RayUnavailable(CptqaError):
    """Ray is not installed, or the cluster cannot be reached."""


def connect(address: str) -> Any:
    """Join the Ray cluster at `address` (host:port of its head node, or "auto": the one
    running on this machine); the `ray` module. Raises `RayUnavailable` with what to do."""
    head = _head(address)
    if head is not None:
        try:
            socket.create_connection(head, timeout=5).close()
        except OSError as exc:
            raise RayUnavailable(
                f"nothing answers at {address} ({exc.strerror or exc}): start the cluster with "
                f"`ray start --head --port {head[1]}`, or give its head node's address"
            ) from None
    try:
        import ray
    except ImportError:
        raise RayUnavailable(
            "Ray is not installed: install the extra with `pip install 'cptqa[ray]'`, or "
            "ingest on this machine without --ray / CPTQA_RAY_ADDRESS"
        ) from None
    if not ray.is_initialized():
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise RayUnavailable(
                f"cannot join the Ray cluster at {address!r} ({exc}): start one with "
                "`ray start --head`, or give its address (host:port, or auto)"
            ) from None
    import ray.data

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    # Ray Data logs each stage's plan and timing at INFO; an ingest reports its own.
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    return ray


def _head(address: str) -> tuple[str, int] | None:
    """(host, port) of a head node's address; None for "auto"."""
    if address == "auto":
        return None
    if address.startswith("ray://"):
        raise RayUnavailable(
            f"{address!r} is a Ray Client address, which cptqa does not use: give the head "
            "node's host:port (its `ray start --head --port`, 6379 by default), or auto"
        )
    host, colon, port = address.rpartition(":")
    if not (colon and host and port.isdigit() and 0 < int(port) < 65536):
        raise RayUnavailable(
            f"{address!r} is not a Ray address: give the head node's host:port (such as "
            "127.0.0.1:6379), or auto for the cluster running on this machine"
        )
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class RayIngest:
    """The stages of an ingest on the cluster `connect` joined; `workers` actors embed
    (default: one a CPU of the cluster)."""

    workers: int = 0
    # The chunks `chunk_corpus` will be asked for, made in the task that parses each file.
    options: ChunkerOptions = field(default_factory=ChunkerOptions)
    # What the read stage's tasks made of each document they parsed, kept for the chunk stage
    # (which empties it): the file's path -> its text and `chunk_document_open`'s result. By
    # path, not id: the ingest may give a document another id after reading it (an id two
    # folders share, an id an earlier snapshot gave the file), and chunk ids follow it.
    opened: dict[str, tuple[str, _Opened]] = field(default_factory=dict, compare=False)

    @classmethod
    def join(cls, address: str, workers: int = 0) -> RayIngest:
        """The stages on the cluster at `address` (see `connect`)."""
        connect(address)
        return cls(workers)

    def stages(self) -> IngestStages:
        return IngestStages(read=self.read_files, chunk=self.chunk_corpus)

    def encoder(self, model: str, cache: Path | None = None) -> Callable[[], RayEncoder]:
        """A factory of the embedding stage (called by `build_index` only if text is new)."""
        return lambda: RayEncoder(ensure_export(model, cache), self.pool())

    def pool(self) -> int:
        import ray

        return self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))

    def read_files(
        self,
        found: list[tuple[Path, str, Path | None]],
        max_bytes: int,
        reuse: Mapping[str, Document] | None,
        limits: ReadLimits,
    ) -> list[Document | str]:
        """ingest/load.py's `read_files`, the parsing on the cluster. The driver reads each
        file's bytes (no node needs to see the corpus folder: nodes on other machines share
        no disk with it) and hashes them: a file whose bytes an earlier ingest read takes the
        stored document here, as locally, and is not sent. The others go to the cluster in
        groups of at most SEND_BYTES, to be parsed (HTML, Markdown, PDF) and cleaned."""
        out: list[Document | str | None] = [None] * len(found)
        group: list[tuple[int, bytes, Path, str]] = []
        size = 0
        for n, (path, doc_id, root) in enumerate(found):
            raw = read_raw(path, root, max_bytes)
            if isinstance(raw, str):
                out[n] = raw
                continue
            stored = reuse.get(hashlib.sha256(raw).hexdigest()) if reuse else None
            if stored is not None:
                out[n] = replace(stored, id=doc_id, path=path.absolute().as_posix())
                continue
            group.append((n, raw, path.absolute(), doc_id))
            size += len(raw)
            if size >= SEND_BYTES:
                self._parse(group, out, max_bytes, limits)
                group, size = [], 0
        self._parse(group, out, max_bytes, limits)
        assert all(result is not None for result in out)
        return out  # type: ignore[return-value]

    def _parse(
        self,
        group: list[tuple[int, bytes, Path, str]],
        out: list[Document | str | None],
        max_bytes: int,
        limits: ReadLimits,
    ) -> None:
        items = [(raw, path, doc_id) for _, raw, path, doc_id in group]
        arguments = {"max_bytes": max_bytes, "limits": limits, "options": self.options}
        parsed = _run(items, _parse_batch, arguments)
        for (n, *_), (result, opened) in zip(group, parsed, strict=True):
            out[n] = result
            if isinstance(result, Document) and opened is not None:
                self.opened[result.path] = (result.text, opened)

    def chunk_corpus(self, documents: list[Document], options: ChunkerOptions) -> list[Chunk]:
        """ingest/corpus.py's `chunk_corpus` on the cluster. A document parsed by this ingest
        was chunked in the same task, with its own codes only (`chunk_document_open`); the
        others (documents an earlier ingest read) are chunked so now. Then each document that
        the corpus's codes would chunk otherwise (a footnote-fused code written elsewhere:
        rare) is chunked again with them, as locally."""
        opened: list[_Opened | None] = []
        for document in documents:
            text, made = self.opened.get(document.path, (None, None))
            usable = made is not None and text == document.text and options == self.options
            opened.append(_named(made, document) if usable else None)  # type: ignore[arg-type]
        self.opened.clear()
        missing = [d for d, made in zip(documents, opened, strict=True) if made is None]
        fresh = iter(_run(missing, _open_batch, {"options": options}))
        results = [made if made is not None else next(fresh) for made in opened]
        known: set[str] = set()
        for _, written, _ in results:
            known |= written
        again = [d for d, (_, _, heads) in zip(documents, results, strict=True) if heads & known]
        remade = _run(again, _chunk_batch, {"options": options, "known": known})
        redone = {d.id: made for d, made in zip(again, remade, strict=True)}
        chunks: list[Chunk] = []
        for document, (made, _, _) in zip(documents, results, strict=True):
            chunks.extend(redone.get(document.id, made))
        return chunks


class RayEncoder:
    """The embedding stage: `encode_passages` as the local ONNX path computes it
    (index/passages.py `encode_texts`), its token batches spread over an actor pool."""

    def __init__(self, export: Path, workers: int, budget: int = TOKEN_BUDGET) -> None:
        import ray

        self.planner = OnnxEncoder(export, "fp32")  # the tokenizer plans; it embeds nothing
        self.name = self.planner.name
        self.dimension = self.planner.dimension
        self.workers = workers
        self.budget = budget
        self.plan_s = 0.0  # the driver's own share: tokenizing and cutting batches
        self.start_s = 0.0  # from a run's start to its first vectors (the actors starting)
        self._files = ray.put({name: (export / name).read_bytes() for name in ENCODER_FILES})

    def encode_passages(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Vectors of `texts` (L2-normalised float32), batch for batch as locally."""
        import ray.data

        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return vectors
        started = time.perf_counter()
        encodings = self.planner.tokenizer.encode_batch(list(texts))
        batches = token_batches([len(e.ids) for e in encodings], self.budget)
        self.plan_s += time.perf_counter() - started
        rows = [{"i": n, "texts": [texts[i] for i in batch]} for n, batch in enumerate(batches)]
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            _EncoderActor,
            batch_size=1,
            batch_format="pandas",
            fn_constructor_kwargs={"budget": self.budget},
            # The encoder's bytes: one object in Ray's object store, which each actor fetches
            # on its first batch (Ray Data's deprecated ray_remote_args would be needed to
            # pass it any other way).
            fn_kwargs={"files": [self._files]},
            concurrency=self.workers,
            num_cpus=1,
        )
        started = time.perf_counter()
        first = True
        for row in dataset.iter_rows():
            if first:
                self.start_s += time.perf_counter() - started
                first = False
            part = np.asarray(row["vectors"], dtype=np.float32).reshape(-1, self.dimension)
            vectors[batches[int(row["i"])]] = part
        return vectors


class _EncoderActor:
    """One per worker slot: opens the encoder on its first batch, then encodes whole token
    batches with it."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.encoder: OnnxEncoder | None = None

    def _open(self, files: list[Any]) -> OnnxEncoder:
        import ray

        self._folder = tempfile.TemporaryDirectory(prefix="cptqa-encoder-")
        for name, blob in ray.get(files[0]).items():
            (Path(self._folder.name) / name).write_bytes(blob)
        return OnnxEncoder(Path(self._folder.name), "fp32", threads=1)

    def __call__(self, batch: Any, files: list[Any]) -> Any:
        import pandas

        self.encoder = self.encoder or self._open(files)
        vectors = [
            encode_texts(self.encoder, list(texts), self.budget)[0].ravel()
            for texts in batch["texts"]
        ]
        return pandas.DataFrame({"i": batch["i"], "vectors": vectors})


def _run(
    items: Sequence[Any], step: Callable[..., list[Any]], arguments: dict[str, Any]
) -> list[Any]:
    """`step(items[k:k+n], **arguments)` over the cluster as Ray Data tasks, results in the
    order of `items` (one result an item)."""
    import ray
    import ray.data

    if not items:
        return []
    blocks = max(1, min(len(items), 4 * int(ray.cluster_resources().get("CPU", 1))))
    rows = [{"i": n, "item": _pack(item)} for n, item in enumerate(items)]
    dataset = ray.data.from_items(rows, override_num_blocks=blocks)
    out = dataset.map_batches(
        functools.partial(_apply, step, arguments),
        batch_size=None,
        batch_format="pandas",
        num_cpus=1,
    )
    results: list[Any] = [None] * len(items)
    for row in out.iter_rows():
        results[int(row["i"])] = _unpack(row["result"])
    return results


def _apply(step: Callable[..., list[Any]], arguments: dict[str, Any], batch: Any) -> Any:
    import pandas

    results = step([_unpack(item) for item in batch["item"]], **arguments)
    return pandas.DataFrame({"i": batch["i"], "result": [_pack(r) for r in results]})


# Items and results cross the cluster as Ray's own serialisation (cloudpickle) in a binary
# column, in flight only (nothing is stored): left to Arrow, a set comes back a list and a
# tuple a list, and a Document would be pickled anyway, with a warning each time.
def _pack(value: Any) -> bytes:
    from ray import cloudpickle

    return bytes(cloudpickle.dumps(value))


def _unpack(blob: bytes) -> Any:
    from ray import cloudpickle

    return cloudpickle.loads(blob)


# A document's chunks with its own codes, the codes it writes, and the codes written elsewhere
# that would change its chunks (ingest/corpus.py `chunk_document_open`).
_Opened = tuple[list[Chunk], set[str], frozenset[str]]


def _parse_batch(
    items: list[tuple[bytes, Path, str]],
    max_bytes: int,
    limits: ReadLimits,
    options: ChunkerOptions,
) -> list[tuple[Document | str, _Opened | None]]:
    """Each file parsed, and the parsed document chunked with its own codes."""
    out: list[tuple[Document | str, _Opened | None]] = []
    for raw, path, doc_id in items:
        parsed = parse_file(raw, path, doc_id, max_bytes, None, limits)
        made = chunk_document_open(parsed, options) if isinstance(parsed, Document) else None
        out.append((parsed, made))
    return out


def _named(opened: _Opened, document: Document) -> _Opened:
    """`opened` with its chunks named after `document`'s id (given after parsing)."""
    chunks, written, heads = opened
    if all(c.document_id == document.id for c in chunks):
        return opened
    named = [
        replace(c, id=chunk_id(document.id, n), document_id=document.id)
        for n, c in enumerate(chunks)
    ]
    return named, written, heads


def _open_batch(documents: list[Document], options: ChunkerOptions) -> list[_Opened]:
    return [chunk_document_open(d, options) for d in documents]


def _chunk_batch(
    documents: list[Document], options: ChunkerOptions, known: set[str]
) -> list[list[Chunk]]:
    return [chunk_document(d, options, known) for d in documents]
