"""How documents are named to people: by title, never by a file name like 002_68dd7c.txt."""

from __future__ import annotations

from ingest import Document

TITLE_CHARS = 80


def display_title(document: Document) -> str:
    """The document's title; for a document without one, its first line, cut at a word with
    an ellipsis when long."""
    if document.title.strip():
        return document.title.strip()
    first = next((line.strip() for line in document.text.splitlines() if line.strip()), "")
    return shortened(first, TITLE_CHARS) or document.id


def shortened(text: str, limit: int) -> str:
    """`text`, or its first `limit` characters cut at a word and ended with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] or text[:limit]
    return cut.rstrip(" ,;:") + "…"
