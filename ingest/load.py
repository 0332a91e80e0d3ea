"""Find and read source files: plain text and Markdown.

A file that cannot be used (binary, unreadable, not text, empty) is reported by name with the
reason and skipped; it never stops the run.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.clean import clean_text
from ingest.types import Document

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown")
# A larger file is almost certainly not a hand-kept reference text; refusing it keeps a stray
# dump from stalling an ingest. Override with `max_bytes`.
DEFAULT_MAX_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class LoadResult:
    documents: list[Document]
    skipped: list[Skipped]


def find_files(paths: Iterable[str | Path]) -> Iterator[tuple[Path, str]]:
    """Yield (file, document id) for every supported file under `paths`, in a stable order.

    The id of a file found in a directory is its path relative to that directory; a file named
    directly is known by its name.
    """
    for raw in paths:
        root = Path(raw)
        if root.is_dir():
            # A dangling link is listed too, so that it is reported rather than silently lost.
            for path in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
                if _is_hidden(path.relative_to(root)):
                    continue
                if path.suffix.lower() in SUPPORTED_SUFFIXES:
                    yield path, path.relative_to(root).as_posix()
        else:
            yield root, root.name


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def load_documents(paths: Iterable[str | Path], max_bytes: int = DEFAULT_MAX_BYTES) -> LoadResult:
    """Load every supported file under `paths` as a cleaned `Document`."""
    documents: list[Document] = []
    skipped: list[Skipped] = []
    seen_ids: set[str] = set()
    for path, doc_id in find_files(paths):
        if doc_id in seen_ids:
            doc_id = path.resolve().as_posix()
        try:
            document = load_document(path, doc_id, max_bytes=max_bytes)
        except UnusableFile as exc:
            log.warning("skipped %s: %s", path, exc.reason)
            skipped.append(Skipped(str(path), exc.reason))
            continue
        seen_ids.add(doc_id)
        documents.append(document)
    return LoadResult(documents, skipped)


class UnusableFile(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def load_document(path: Path, doc_id: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Document:
    """Read one file; raise `UnusableFile` with a reason a person can act on."""
    if not path.exists():
        if path.is_symlink():
            raise UnusableFile(f"cannot be read (a link to {os.readlink(path)}, which is gone)")
        raise UnusableFile("no such file")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise UnusableFile(
            f"unsupported file type {path.suffix or '(none)'}; supported: "
            + ", ".join(SUPPORTED_SUFFIXES)
        )
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UnusableFile(f"file is {size} bytes, over the {max_bytes}-byte limit")
        raw = path.read_bytes()
    except OSError as exc:
        raise UnusableFile(f"cannot be read ({exc.strerror or exc})") from exc
    text = decode_text(raw)
    cleaned = clean_text(text)
    if not cleaned.strip():
        raise UnusableFile("no text in file")
    title = _title_of(cleaned)
    return Document(
        id=doc_id,
        path=str(path),
        text=cleaned,
        sha256=hashlib.sha256(raw).hexdigest(),
        title=title,
    )


def decode_text(raw: bytes) -> str:
    """Decode bytes as UTF-8 (or Windows-1252, common in exported Office text); refuse binary."""
    head = raw[:8192]
    if b"\x00" in head:
        raise UnusableFile("binary file (contains NUL bytes)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError as exc:
            raise UnusableFile("not valid UTF-8 or Windows-1252 text") from exc
    sample = text[:8192]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\n\r\t\f")
    if sample and controls / len(sample) > 0.05:
        raise UnusableFile("binary file (too many control characters)")
    return text


def _title_of(text: str) -> str:
    """The first line, when it reads as a title: short and not a full sentence."""
    first = text.lstrip().split("\n", 1)[0].strip()
    if 0 < len(first) <= 120 and not first.endswith((".", ",", ";", ":")):
        return first
    return ""
