"""Request and reply bodies of the HTTP API (and the MCP tools): pydantic models with limits."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from index import AnswerCode, SearchResult
from ingest import CodeMention


class QueryRequest(BaseModel):
    """A coder's question. Limits on `question` and `k` are checked by the route."""

    question: str = Field(
        ...,
        description="Free-text question, e.g. 'which fluoro code for occipital nerve block'.",
        examples=["which fluoro code for occipital nerve block"],
    )
    k: int | None = Field(None, description="How many passages to return (default 5).")


class CodeOut(BaseModel):
    code: str = Field(..., description="The CPT or HCPCS code, e.g. '77002'.")
    system: str = Field(..., description="'CPT' or 'HCPCS'.")
    category: str = Field(..., description="'I', 'II', 'III', 'PLA' (CPT) or 'Level II'.")
    start: int = Field(..., description="Offset of the mention in the document text.")
    end: int
    modifiers: list[str] = Field(default_factory=list, description="e.g. ['26'] for 77003-26.")
    role: str = Field(
        "mentioned", description="defined, excluded, add-on, primary, deleted or mentioned."
    )

    @classmethod
    def of(cls, mention: CodeMention) -> CodeOut:
        return cls(
            code=mention.code,
            system=mention.system,
            category=mention.category,
            start=mention.start,
            end=mention.end,
            modifiers=list(mention.modifiers),
            role=mention.role,
        )


class Passage(BaseModel):
    rank: int
    chunk_id: str
    document: str = Field(..., description="Source file, relative to the corpus folder.")
    start: int = Field(..., description="Offset of the passage in the cleaned document text.")
    end: int
    text: str
    context: str = Field("", description="Document title / section heading of the passage.")
    score: float
    codes: list[CodeOut]


class EvidenceOut(BaseModel):
    chunk_id: str
    text: str = Field(..., description="The sentence that cites the code.")
    role: str


class AnswerCodeOut(BaseModel):
    code: str
    system: str
    category: str
    score: float
    role: str
    evidence: list[EvidenceOut]

    @classmethod
    def of(cls, answer: AnswerCode) -> AnswerCodeOut:
        return cls(
            code=answer.code,
            system=answer.system,
            category=answer.category,
            score=answer.score,
            role=answer.role,
            evidence=[
                EvidenceOut(chunk_id=e.chunk_id, text=e.text, role=e.role) for e in answer.evidence
            ],
        )


class QueryResponse(BaseModel):
    question: str
    results: list[Passage] = Field(..., description="Passages, best first.")
    codes: list[AnswerCodeOut] = Field(..., description="Codes the answer points to, best first.")
    took_ms: float

    @classmethod
    def of(cls, result: SearchResult) -> QueryResponse:
        return cls(
            question=result.question,
            results=[
                Passage(
                    rank=hit.rank,
                    chunk_id=hit.chunk.id,
                    document=hit.document.id,
                    start=hit.chunk.start,
                    end=hit.chunk.end,
                    text=hit.chunk.text,
                    context=hit.chunk.context,
                    score=round(hit.score, 6),
                    codes=[CodeOut.of(m) for m in hit.chunk.codes],
                )
                for hit in result.hits
            ],
            codes=[AnswerCodeOut.of(c) for c in result.codes],
            took_ms=result.took_ms,
        )


class ErrorDetail(BaseModel):
    type: str = Field(..., description="Machine-readable kind, e.g. 'invalid_input'.")
    message: str = Field(..., description="What went wrong and what to do about it.")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class IndexInfo(BaseModel):
    snapshot: str
    created: str
    model: str
    dimension: int
    format_version: int
    counts: dict[str, int]
    chunker: dict[str, Any]
    documents: dict[str, Any]
    fallback_reason: str = Field(
        "", description="Set when the newest snapshot was damaged and an older one is served."
    )


class Health(BaseModel):
    status: str
    snapshot: str | None = None
    reason: str | None = None
