"""From paths to documents and chunks with their codes: the whole ingest side in one call."""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ingest.chunk import ChunkerOptions, Span, chunk_spans
from ingest.codes import extract_codes, extract_codes_open
from ingest.errors import CorpusError
from ingest.load import DEFAULT_MAX_BYTES, Skipped, load_documents
from ingest.types import Chunk, CodeMention, Document, chunk_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    documents: list[Document]
    chunks: list[Chunk]
    skipped: list[Skipped]


def ingest_paths(
    paths: Iterable[str | Path],
    options: ChunkerOptions | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> IngestResult:
    """Load, clean and chunk every supported file under `paths`.

    Raises `CorpusError` when nothing indexable is found, naming the files that were skipped.
    """
    paths = list(paths)
    loaded = load_documents(paths, max_bytes=max_bytes)
    if not loaded.documents:
        raise CorpusError(_empty_corpus_message(paths, loaded.skipped))
    chunks = chunk_corpus(loaded.documents, options)
    if not chunks:
        raise CorpusError(_empty_corpus_message(paths, loaded.skipped))
    return IngestResult(loaded.documents, chunks, loaded.skipped)


def chunk_corpus(documents: list[Document], options: ChunkerOptions | None = None) -> list[Chunk]:
    """Chunk every document, recognising footnote-fused codes against the whole corpus."""
    known = corpus_codes(documents)
    chunks: list[Chunk] = []
    for document in documents:
        chunks.extend(chunk_document(document, options, known))
    return chunks


def corpus_codes(documents: Iterable[Document]) -> set[str]:
    """Every code written in the documents (used to recognise footnote-fused codes)."""
    known: set[str] = set()
    for document in documents:
        known.update(m.code for m in extract_codes(document.text) if not m.from_range)
    return known


def chunk_document(
    document: Document,
    options: ChunkerOptions | None = None,
    known_codes: set[str] | None = None,
) -> list[Chunk]:
    """Chunk one document; each chunk carries the code mentions inside its span."""
    return _chunks(document, options, extract_codes(document.text, known_codes=known_codes))


def chunk_document_open(
    document: Document, options: ChunkerOptions | None = None
) -> tuple[list[Chunk], set[str], frozenset[str]]:
    """One pass over a document for a stage that sees no other document: its chunks with no
    codes known from elsewhere, the codes it writes (its part of `corpus_codes`), and the
    codes from elsewhere that would change its chunks (`extract_codes_open`). When the
    corpus's codes hold none of those, the chunks are `chunk_document(document, options,
    corpus_codes(corpus))`; else chunk it again with them."""
    mentions, open_heads = extract_codes_open(document.text)
    written = {m.code for m in mentions if not m.from_range}
    return _chunks(document, options, mentions), written, open_heads


def _chunks(
    document: Document, options: ChunkerOptions | None, mentions: list[CodeMention]
) -> list[Chunk]:
    # Mention indexes sorted by start: each chunk finds its mentions by bisection, not by a
    # scan of the whole document's mentions (quadratic on a large file).
    by_start = sorted(range(len(mentions)), key=lambda i: mentions[i].start)
    starts = [mentions[i].start for i in by_start]
    chunks: list[Chunk] = []
    title = document.title
    for span, heading in chunk_spans(document.text, options):
        text = document.text[span.start : span.end]
        if text == document.title:
            continue  # the title alone is no passage; it is every chunk's context instead
        if not chunks and _is_title_block(text, mentions, span.start, span.end):
            # A masthead's title and subtitle lines say what the whole document is about:
            # every chunk's context, not a passage of their own.
            title = " — ".join(line.strip() for line in text.splitlines() if line.strip())
            continue
        # An article's headline above its first paragraph ("SI JOINT INJECTIONS: ONE JOINT,
        # THREE BILLING PATHS"), like a masthead, says what the whole article is about: every
        # chunk's context rather than words of the first passage only.
        while not chunks and (headline := _leading_headline(text, mentions, span.start)):
            block, body = headline
            lines = [line.strip() for line in block.splitlines() if line.strip()]
            title = " — ".join(dict.fromkeys([*filter(None, [title]), *lines]))
            span = Span(span.start + body, span.end)
            text = document.text[span.start : span.end]
        inside = _mentions_inside(mentions, by_start, starts, span.start, span.end)
        chunks.append(
            Chunk(
                id=chunk_id(document.id, len(chunks)),
                document_id=document.id,
                start=span.start,
                end=span.end,
                text=text,
                codes=inside,
                context=_context(title, heading),
                page=document.page_at(span.start),
                last_page=document.page_at(span.end - 1),
            )
        )
    return chunks


def _mentions_inside(
    mentions: list[CodeMention], by_start: list[int], starts: list[int], start: int, end: int
) -> tuple[CodeMention, ...]:
    """The mentions within [start, end), in the extractor's order."""
    lo, hi = bisect.bisect_left(starts, start), bisect.bisect_left(starts, end)
    inside = sorted(i for i in by_start[lo:hi] if mentions[i].end <= end)
    return tuple(mentions[i] for i in inside)


_TITLE_BLOCK_CHARS = 200


def _is_title_block(text: str, mentions: list[CodeMention], start: int, end: int) -> bool:
    """Short lines with no sentence and no code, first in a document: a title block."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (
        len(text) <= _TITLE_BLOCK_CHARS
        and len(lines) <= 3
        and not any(line.endswith((".", "?", "!", ":")) for line in lines)
        and not any(start <= m.start < end for m in mentions)
    )


_BLANK_LINE = re.compile(r"\n[ \t]*\n\s*")


def _leading_headline(text: str, mentions: list[CodeMention], start: int) -> tuple[str, int] | None:
    """(the headline block, where the body starts) when `text` opens with a title block whose
    first line is set like a headline (capitals or capitalised words) and goes on with more."""
    gap = _BLANK_LINE.search(text)
    if gap is None or not text[gap.end() :].strip():
        return None
    block = text[: gap.start()]
    first = block.strip().split("\n", 1)[0]
    words = first.split()
    capitalised = sum(1 for w in words if w[:1].isupper() or not w[:1].isalpha())
    if not words or not (first.isupper() or capitalised / len(words) >= 0.6):
        return None
    if not _is_title_block(block, mentions, start, start + gap.start()):
        return None
    return block, gap.end()


def _context(title: str, heading: str) -> str:
    parts = [p for p in (title, heading) if p]
    return " — ".join(dict.fromkeys(parts))


def _empty_corpus_message(paths: list[str | Path], skipped: list[Skipped]) -> str:
    where = ", ".join(str(p) for p in paths) or "(no paths given)"
    message = f"nothing to index in {where}: no readable text, Markdown, HTML or PDF file with text"
    if skipped:
        message += "; skipped: " + "; ".join(f"{s.path} ({s.reason})" for s in skipped[:10])
    return message + ". Add documents to the corpus folder and run `cptqa ingest` again."
