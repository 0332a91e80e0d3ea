"""Reply bodies for code history and dates (the current rules): a code's changes, the
year a passage speaks for, and a passage that predates a change. Shared by `/v1/query`,
`/v1/codes/{code}`, the MCP tools and the CLI through `api/schemas.py`."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ingest.dates import PassageDate
from ingest.history import CodeChange, Dated


class ChangeOut(BaseModel):
    """One change to a code: from cptqa's code history table (with its citation) or stated
    by the corpus (with the passage that says it). Where the two disagree, both are listed."""

    code: str
    change: str = Field(..., description="deleted, added, renumbered or revised.")
    year: int | None = Field(..., description="The year it took effect (null: not stated).")
    replacements: list[str] = Field(
        default_factory=list, description="Codes that replaced a deleted or renumbered code."
    )
    note: str = Field("", description="What changed, in cptqa's words (table facts).")
    source: str = Field(
        ..., description="The citation of a table fact, or 'corpus' for a fact the corpus states."
    )
    chunk_id: str | None = Field(None, description="For a corpus fact: the passage saying it.")
    document: str | None = Field(None, description="For a corpus fact: its source file.")
    text: str = Field("", description="For a corpus fact: the words that say it.")

    @classmethod
    def of(cls, change: CodeChange) -> ChangeOut:
        return cls(
            code=change.code,
            change=change.change,
            year=change.year,
            replacements=list(change.replacements),
            note=change.note,
            source=change.source,
            chunk_id=change.chunk_id,
            document=change.document_id,
            text=change.text,
        )


class PassageDateOut(BaseModel):
    year: int = Field(..., description="The year the passage speaks for.")
    words: str = Field(..., description="The words it was read from, e.g. 'Posted March 2015'.")
    source: str = Field(
        ..., description="'passage' (it states its own date) or 'document' (inherited)."
    )

    @classmethod
    def of(cls, date: PassageDate | None) -> PassageDateOut | None:
        if date is None or not date.year:
            return None
        return cls(year=date.year, words=date.words, source=date.source)


class DatedOut(BaseModel):
    """The evidence passage speaks for a year before a change to the code."""

    year: int = Field(..., description="The year the evidence passage speaks for.")
    words: str = Field(..., description="The words that date it.")
    chunk_id: str
    change: ChangeOut = Field(..., description="The later change the passage predates.")

    @classmethod
    def of(cls, dated: Dated | None) -> DatedOut | None:
        if dated is None:
            return None
        return cls(
            year=dated.year,
            words=dated.words,
            chunk_id=dated.chunk_id,
            change=ChangeOut.of(dated.change),
        )
