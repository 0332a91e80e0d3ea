"""One indexed document, whole, with where each of its passages lies (`GET /v1/documents/{id}`).

The page links every passage to its document and shows the passage highlighted in its
context; a chatbot can fetch the text around a passage it cites. Documents are named by their
title (the title, thread subject or heading the loader found), else by their opening words.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas import CodeOut
from api.titles import display_title
from index import Searcher
from ingest import UnknownDocument


class DocumentPassage(BaseModel):
    chunk_id: str
    start: int = Field(..., description="Offset of the passage in `text`.")
    end: int
    context: str = Field("", description="The title / section heading of the passage.")
    page: int | None = Field(None, description="PDF page the passage starts on (1-based).")
    codes: list[CodeOut] = Field(..., description="Code mentions, with offsets into `text`.")


class DocumentOut(BaseModel):
    id: str = Field(..., description="The document's id, as in each passage's `document`.")
    title: str = Field(..., description="Its title, thread subject or heading (or first line).")
    format: str = Field(..., description="'text', 'markdown', 'html' or 'pdf'.")
    text: str = Field(..., description="The cleaned text that passages' offsets point into.")
    passages: list[DocumentPassage] = Field(..., description="Its passages, in text order.")


def document_view(searcher: Searcher, document_id: str) -> DocumentOut:
    """The document `document_id` of the searcher's snapshot (`UnknownDocument` if absent)."""
    store = searcher.snapshot.store
    if document_id not in store.documents:
        known = list(store.documents)[:3]
        raise UnknownDocument(
            f"no document {document_id!r} in the index: send a document id as a passage's "
            f"document field gives it (e.g. {', '.join(repr(k) for k in known)}; "
            "GET /v1/index lists them all)"
        )
    document = store.documents[document_id]
    chunks = [store.chunks[row] for row in store.rows_of_document(document_id)]
    return DocumentOut(
        id=document.id,
        title=display_title(document),
        format=document.format,
        text=document.text,
        passages=[
            DocumentPassage(
                chunk_id=c.id,
                start=c.start,
                end=c.end,
                context=c.context,
                page=c.page,
                codes=[CodeOut.of(m) for m in c.codes],
            )
            for c in chunks
        ],
    )
