"""Find and read source files: plain text, Markdown, HTML and PDF.

A file's format is chosen by its content as well as its name: bytes starting with `%PDF-` are
read as a PDF whatever the file is called, a page that starts like HTML as HTML, and otherwise
the extension decides (.md Markdown, .html HTML, anything else text). A folder is searched for
the known extensions; a file named on its own is read whatever its extension, if its content
is one of the formats.

A file that cannot be used (binary, unreadable, a damaged PDF, empty) is reported by name with
the reason and skipped; it never stops the run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ingest.clean import clean_text
from ingest.errors import UnusableFile
from ingest.html import PARSE_SECONDS, read_html
from ingest.markdown import read_markdown
from ingest.pdf import PDF_MAX_PAGES, read_pdf
from ingest.types import Document

log = logging.getLogger(__name__)

FORMAT_BY_SUFFIX = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".pdf": "pdf",
}
SUPPORTED_SUFFIXES = tuple(FORMAT_BY_SUFFIX)
# Bumped whenever a loader changes the text it makes of the same bytes: an incremental ingest
# reuses a stored document's text only when it was made by the same loaders.
LOADER_VERSION = 2
# A larger text file is almost certainly not a hand-kept reference text; refusing it keeps a
# stray dump from stalling an ingest. PDFs may be larger by this factor (their bytes are mostly
# fonts and images). Override with `max_bytes`.
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
PDF_SIZE_FACTOR = 5
_SNIFF_BYTES = 1024  # a PDF header may follow up to 1 KiB of junk (PDF 32000-1, annex H)


@dataclass(frozen=True)
class ReadLimits:
    """How much work reading one file may take; past a limit the file is skipped by name.

    `pdf_max_pages`: pages a PDF may have (a page tree can list one page a million times);
    `seconds`: time to parse one HTML or PDF file (CPTQA_PDF_MAX_PAGES, CPTQA_PARSE_TIMEOUT).
    """

    pdf_max_pages: int = PDF_MAX_PAGES
    seconds: float = PARSE_SECONDS


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class LoadResult:
    documents: list[Document]
    skipped: list[Skipped]


def find_files(paths: Iterable[str | Path]) -> Iterator[tuple[Path, str, Path | None]]:
    """Yield (file, document id, corpus root) for every supported file under `paths`, in a
    stable order; the root is None for a file named directly.

    The id of a file found in a directory is its path relative to that directory; a file named
    directly is known by its name. Anything that is not a directory is listed (links, FIFOs,
    devices), so that the loader can name what it refuses rather than lose it silently.
    """
    for raw in paths:
        root = Path(raw)
        if root.is_dir():
            found = (p for p in root.rglob("*") if p.is_symlink() or not p.is_dir())
            for path in sorted(found):
                if _is_hidden(path.relative_to(root)):
                    continue
                if path.suffix.lower() in FORMAT_BY_SUFFIX:
                    yield path, path.relative_to(root).as_posix(), root
        else:
            yield root, root.name, None


def printable_path(path: str | Path) -> str:
    """A file name safe to print: bytes that are not UTF-8 as \\xff, and control characters
    (an ANSI escape in a name could rewrite the terminal) as \\x1b."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


# Reads found files: (path, document id, corpus root) each -> its Document, or the reason it
# was skipped, in the same order. `read_files` reads them here, one after another; a Ray
# ingest (index/ray_build.py) reads them on a cluster.
FileReader = Callable[
    [list[tuple[Path, str, Path | None]], int, Mapping[str, Document] | None, ReadLimits],
    list[Document | str],
]


def load_documents(
    paths: Iterable[str | Path],
    max_bytes: int = DEFAULT_MAX_BYTES,
    reuse: Mapping[str, Document] | None = None,
    limits: ReadLimits = ReadLimits(),  # noqa: B008 - frozen, shared safely
    read: FileReader | None = None,
) -> LoadResult:
    """Load every supported file under `paths` as a cleaned `Document`.

    `reuse` maps a file's sha256 to a document already made of the same bytes (by an earlier
    ingest); such a file is hashed but not parsed again. `Document.path` is absolute. `read`
    reads the files found (default `read_files`, here).
    """
    found = list(find_files(paths))
    documents: list[Document] = []
    skipped: list[Skipped] = []
    seen_ids: set[str] = set()
    for (path, _, _), result in zip(
        found, (read or read_files)(found, max_bytes, reuse, limits), strict=True
    ):
        if isinstance(result, str):
            log.warning("skipped %s: %s", printable_path(path), result)
            skipped.append(Skipped(printable_path(path), result))
            continue
        if result.id in seen_ids:
            result = replace(result, id=path.absolute().as_posix())
        seen_ids.add(result.id)
        documents.append(result)
    return LoadResult(documents, skipped)


def read_files(
    found: list[tuple[Path, str, Path | None]],
    max_bytes: int = DEFAULT_MAX_BYTES,
    reuse: Mapping[str, Document] | None = None,
    limits: ReadLimits = ReadLimits(),  # noqa: B008 - frozen, shared safely
) -> list[Document | str]:
    """Each found file's Document, or the reason it cannot be used (see `FileReader`)."""
    return [read_file(path, doc_id, root, max_bytes, reuse, limits) for path, doc_id, root in found]


def read_file(
    path: Path,
    doc_id: str,
    root: Path | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    reuse: Mapping[str, Document] | None = None,
    limits: ReadLimits = ReadLimits(),  # noqa: B008 - frozen, shared safely
) -> Document | str:
    """One found file's Document, or the reason it cannot be used."""
    raw = read_raw(path, root, max_bytes)
    if isinstance(raw, str):
        return raw
    return parse_file(raw, path, doc_id, max_bytes, reuse, limits)


def read_raw(path: Path, root: Path | None, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes | str:
    """A found file's bytes as `read_file` reads them (a regular file, within the size limit,
    links followed only inside `root`), or the reason it cannot be used."""
    try:
        if printable_path(path) != str(path):
            # A name that is not UTF-8 cannot be stored as an id or shown as it is; one
            # with control characters is shown escaped but indexed.
            _refuse_undecodable_name(path)
        return _read(path, max_bytes, root)
    except UnusableFile as exc:
        return exc.reason


def parse_file(
    raw: bytes,
    path: Path,
    doc_id: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    reuse: Mapping[str, Document] | None = None,
    limits: ReadLimits = ReadLimits(),  # noqa: B008 - frozen, shared safely
) -> Document | str:
    """The Document of a file's bytes, or the reason it cannot be used, one a person can act
    on. `path` names the file and gives its format's suffix; it is not opened (`read_raw`
    reads it: only regular files, and links only to regular files inside the corpus folder)."""
    sha256 = hashlib.sha256(raw).hexdigest()
    source = path.absolute().as_posix()
    if reuse and sha256 in reuse:
        return replace(reuse[sha256], id=doc_id, path=source)
    try:
        kind = detect_format(raw, path.suffix.lower())
        if kind != "pdf" and len(raw) > max_bytes:
            raise UnusableFile(f"file is {len(raw)} bytes, over the {max_bytes}-byte limit")
        text, title, page_starts = _extract(raw, kind, path.suffix.lower(), limits)
        if not text.strip():
            hint = " (a scanned PDF? cptqa does not read text in images)" if kind == "pdf" else ""
            raise UnusableFile("no text in file" + hint)
    except UnusableFile as exc:
        return exc.reason
    return Document(
        id=doc_id,
        path=source,
        text=text,
        sha256=sha256,
        title=title or _title_of(text),
        format=kind,
        page_starts=page_starts,
    )


def _refuse_undecodable_name(path: Path) -> None:
    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        raise UnusableFile("file name is not valid UTF-8: rename the file to index it") from None


def _read(path: Path, max_bytes: int, root: Path | None) -> bytes:
    """The bytes of a regular file, at most the size limit; never a device, FIFO or socket
    (a link to /dev/zero would read forever, one to a FIFO block forever)."""
    try:
        target = _regular_target(path, root)
        limit = max_bytes * PDF_SIZE_FACTOR
        # O_NONBLOCK: opening a FIFO swapped in since the check must not block either.
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise UnusableFile(f"not a regular file ({_kind(info.st_mode)}); not read")
            if info.st_size > limit:
                raise UnusableFile(f"file is {info.st_size} bytes, over the {limit}-byte limit")
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise UnusableFile(f"cannot be read ({exc.strerror or exc})") from exc
    if len(raw) > limit:
        raise UnusableFile(f"file is over the {limit}-byte limit")
    return raw


def _regular_target(path: Path, root: Path | None) -> Path:
    """What to open for `path`: itself, or the target of a link that may be followed."""
    info = os.lstat(path) if os.path.lexists(path) else None
    if info is None:
        raise UnusableFile("no such file")
    if stat.S_ISLNK(info.st_mode):
        target = Path(os.path.realpath(path))
        if not target.exists():
            raise UnusableFile(f"cannot be read (a link to {os.readlink(path)}, which is gone)")
        if root is not None and not target.is_relative_to(Path(os.path.realpath(root))):
            raise UnusableFile(
                f"a link to {printable_path(target)}, outside the corpus folder: links are "
                "followed only to files inside it; copy the file in to index it"
            )
        info = os.stat(target)
        path = target
    if not stat.S_ISREG(info.st_mode):
        raise UnusableFile(f"not a regular file ({_kind(info.st_mode)}); not read")
    return path


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a file"


def detect_format(raw: bytes, suffix: str) -> str:
    """ "pdf", "html", "markdown" or "text": the content decides first, then the extension."""
    head = raw[:_SNIFF_BYTES]
    if b"%PDF-" in head:
        return "pdf"
    if _looks_like_html(head):
        return "html"
    kind = FORMAT_BY_SUFFIX.get(suffix, "text")
    # A ".pdf" without a PDF header is not read as a PDF: if it is text, it is indexed as text.
    return "text" if kind == "pdf" else kind


def _looks_like_html(head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<!doctype html", b"<html")):
        return True
    return start.startswith(b"<") and any(tag in start for tag in (b"<head", b"<body"))


def _extract(
    raw: bytes, kind: str, suffix: str, limits: ReadLimits
) -> tuple[str, str, tuple[int, ...]]:
    """(cleaned text, title or "", page starts) of bytes of a known format."""
    if kind == "pdf":
        pdf = read_pdf(raw, limits.pdf_max_pages, limits.seconds)
        text, starts = join_pages([clean_text(page) for page in pdf.pages])
        return text, clean_text(pdf.title), starts
    try:
        decoded = decode_text(raw)
    except UnusableFile as exc:
        if suffix == ".pdf":
            raise UnusableFile(
                "not a PDF: it does not start with %PDF- (damaged or mislabelled)"
            ) from exc
        if suffix not in FORMAT_BY_SUFFIX:
            raise UnusableFile(
                f"unsupported file type {suffix or '(none)'}; supported: "
                + ", ".join(SUPPORTED_SUFFIXES)
            ) from exc
        raise
    if kind == "html":
        page = read_html(decoded, limits.seconds)
        return clean_text(page.text), clean_text(page.title), ()
    if kind == "markdown":
        markdown = read_markdown(decoded)
        return clean_text(markdown.text), clean_text(markdown.title), ()
    return clean_text(decoded), "", ()


def join_pages(pages: list[str]) -> tuple[str, tuple[int, ...]]:
    """Cleaned pages joined by blank lines, and where each page starts in the result."""
    parts: list[str] = []
    starts: list[int] = []
    length = 0
    for page in pages:
        if page and parts:
            parts.append("\n\n")
            length += 2
        starts.append(length)
        if page:
            parts.append(page)
            length += len(page)
    return "".join(parts), tuple(starts)


def decode_text(raw: bytes) -> str:
    """Decode bytes as UTF-8 (or Windows-1252, common in exported Office text); refuse binary."""
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            try:
                return _checked(raw.decode(codec))
            except UnicodeDecodeError as exc:
                reason = f"starts with a {codec.upper()} mark but is not {codec} text"
                raise UnusableFile(reason) from exc
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
    return _checked(text)


# Byte-order marks of the Unicode encodings Windows tools write ("Unicode" in Notepad is
# UTF-16 LE with a mark); UTF-32's come first, as UTF-16 LE's is a prefix of UTF-32 LE's.
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def _checked(text: str) -> str:
    """`text`, unless it is mostly control characters (a binary file that decoded)."""
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
