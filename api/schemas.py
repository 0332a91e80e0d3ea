"""Request and reply bodies of the HTTP API (and the MCP tools): pydantic models with limits."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from api.history import ChangeOut, DatedOut, PassageDateOut
from api.titles import display_title
from index import AnswerCode, CodeLookup, Explanation, Hit, SearchResult
from ingest import CodeMention


class QueryRequest(BaseModel):
    """A coder's question. Limits on `question` and `k` are checked by the route.

    Strict, as `/v1/tools` and MCP declare it (`additionalProperties: false`): an unknown
    field, `k: true` or `k: "3"` is a 422, not a guess at what the caller meant.
    """

    model_config = ConfigDict(extra="forbid")

    question: StrictStr = Field(
        ...,
        description="Free-text question, e.g. 'which fluoro code for occipital nerve block'.",
        examples=["which fluoro code for occipital nerve block"],
    )
    k: StrictInt | None = Field(None, description="How many passages to return (default 5).")
    explain: StrictBool = Field(
        False,
        description="Also return, for each passage, every ranking feature's value and its "
        "contribution to the score (`explanation`).",
    )


class CodeRequest(BaseModel):
    """A code to look up; the route takes it from the path (`GET /v1/codes/{code}`)."""

    code: str = Field(
        ...,
        description="A CPT or HCPCS Level II code, e.g. '77002', '0213T' or 'G0260'.",
        examples=["77002"],
    )


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
    document: str = Field(
        ...,
        description="The document's id (its file, relative to the corpus folder): "
        "`GET /v1/documents/{document}` returns its whole text.",
    )
    title: str = Field(
        "", description="The document's title, thread subject or heading (else its first line)."
    )
    start: int = Field(..., description="Offset of the passage in the cleaned document text.")
    end: int
    text: str
    context: str = Field("", description="Document title / section heading of the passage.")
    page: int | None = Field(
        None, description="PDF page the passage starts on (1-based); null for other formats."
    )
    last_page: int | None = Field(
        None, description="PDF page the passage ends on (`page` unless it crosses a page break)."
    )
    score: float = Field(..., description="The ranking model's score (higher ranks first).")
    codes: list[CodeOut]
    explanation: ExplanationOut | None = Field(
        None, description="Why this passage ranks here (only when `explain` was asked)."
    )
    date: PassageDateOut | None = Field(
        None, description="The year the passage speaks for and the words it was read from."
    )
    dated: list[ChangeOut] = Field(
        default_factory=list,
        description="Changes to codes the passage cites that took effect after its year: its "
        "advice about them may be out of date.",
    )


class FeatureOut(BaseModel):
    name: str = Field(..., description="A ranking feature (see `cptqa features`).")
    value: float = Field(..., description="Its value for this passage and question.")
    contribution: float = Field(..., description="Its part of the passage's score.")


class ExplanationOut(BaseModel):
    scorer: str = Field(..., description="'linear' or 'lambdamart': the model that scored.")
    base: float = Field(
        ..., description="The model's base value; with the contributions it sums to the score."
    )
    features: list[FeatureOut] = Field(..., description="Largest contributions first.")

    @classmethod
    def of(cls, explanation: Explanation) -> ExplanationOut:
        ordered = sorted(explanation.features, key=lambda f: -abs(f.contribution))
        return cls(
            scorer=explanation.scorer,
            base=round(explanation.base, 6),
            features=[
                FeatureOut(
                    name=f.name, value=round(f.value, 6), contribution=round(f.contribution, 6)
                )
                for f in ordered
            ],
        )


class EvidenceOut(BaseModel):
    chunk_id: str = Field(..., description="The passage the sentence is in.")
    text: str = Field(..., description="The sentence that cites the code.")
    role: str
    document: str = Field("", description="The passage's document id.")
    title: str = Field("", description="That document's title.")


class AnswerCodeOut(BaseModel):
    code: str
    system: str
    category: str
    score: float
    role: str = Field(
        ...,
        description="What the evidence says of the code: defined, excluded, add-on, primary, "
        "deleted, bundled or mentioned.",
    )
    descriptor: str = Field(
        "", description="What the corpus says the code is (its own words, shortened)."
    )
    evidence: list[EvidenceOut]
    explanation: ExplanationOut | None = Field(
        None, description="Why this code ranks here (only when `explain` was asked)."
    )
    status: str = Field(
        "current",
        description="As of the year the question is about (the date of service it names, "
        "else the current year): current, revised (valid, its descriptor changed), deleted, "
        "or unassigned (not yet in use that year).",
    )
    history: list[ChangeOut] = Field(
        default_factory=list, description="Known changes to the code, with year and source."
    )
    dated: DatedOut | None = Field(
        None, description="Set when the evidence passage is older than a change to the code."
    )
    current_rule: str | None = Field(
        None,
        description="Why the current-rules step put this code first (a deleted or not yet "
        "valid code was first); null when it did not.",
    )

    @classmethod
    def of(cls, answer: AnswerCode, explanation: Explanation | None = None) -> AnswerCodeOut:
        return cls(
            explanation=ExplanationOut.of(explanation) if explanation else None,
            code=answer.code,
            system=answer.system,
            category=answer.category,
            score=answer.score,
            role=answer.role,
            evidence=[
                EvidenceOut(chunk_id=e.chunk_id, text=e.text, role=e.role) for e in answer.evidence
            ],
            status=answer.status,
            history=[ChangeOut.of(c) for c in answer.history],
            dated=DatedOut.of(answer.dated),
            current_rule=answer.current_rule or None,
        )


class QueryResponse(BaseModel):
    question: str
    results: list[Passage] = Field(..., description="Passages, best first.")
    codes: list[AnswerCodeOut] = Field(..., description="Codes the answer points to, best first.")
    took_ms: float

    @classmethod
    def of(cls, result: SearchResult) -> QueryResponse:
        explanations = result.explanations or [None] * len(result.hits)
        return cls(
            question=result.question,
            results=[_passage(hit, e) for hit, e in zip(result.hits, explanations, strict=True)],
            codes=[
                AnswerCodeOut.of(c, e)
                for c, e in zip(
                    result.codes,
                    result.code_explanations or [None] * len(result.codes),
                    strict=True,
                )
            ],
            took_ms=result.took_ms,
        )


def _passage(hit: Hit, explanation: Explanation | None = None) -> Passage:
    return Passage(
        rank=hit.rank,
        chunk_id=hit.chunk.id,
        document=hit.document.id,
        title=display_title(hit.document),
        start=hit.chunk.start,
        end=hit.chunk.end,
        text=hit.chunk.text,
        context=hit.chunk.context,
        page=hit.chunk.page,
        last_page=hit.chunk.last_page,
        score=round(hit.score, 6),
        codes=[CodeOut.of(m) for m in hit.chunk.codes],
        explanation=ExplanationOut.of(explanation) if explanation else None,
        date=PassageDateOut.of(hit.date),
        dated=[ChangeOut.of(c) for c in hit.dated],
    )


class DescriptorOut(BaseModel):
    text: str = Field(..., description="The corpus's own words describing the code.")
    chunk_id: str = Field(..., description="The passage the descriptor was found in.")
    document: str = Field(..., description="Its document id (source file).")
    title: str = Field("", description="That document's title.")


class RelatedCode(BaseModel):
    code: str
    passages: int = Field(..., description="Passages that mention both codes.")


class CodeInfo(BaseModel):
    """What the indexed corpus says about one code; cptqa ships no descriptors of its own."""

    code: str
    system: str
    category: str
    section: str | None = Field(None, description="CPT Category I section, e.g. 'Radiology'.")
    mentions: int = Field(..., description="How many times the corpus mentions the code.")
    roles: dict[str, int] = Field(..., description="Mentions by role (defined, excluded, ...).")
    documents: list[str] = Field(..., description="Files that mention the code.")
    descriptors: list[DescriptorOut]
    related: list[RelatedCode] = Field(..., description="Codes mentioned in the same passages.")
    passages: list[Passage] = Field(..., description="Passages that cite the code.")
    status: str = Field(
        "current", description="As of the current year: current, revised, deleted or unassigned."
    )
    history: list[ChangeOut] = Field(
        default_factory=list,
        description="Known changes to the code: cptqa's table (with citations) and what the "
        "corpus states (with the passage); both when they disagree.",
    )
    suggestions: list[str] = Field(
        default_factory=list,
        description="For a code the corpus mentions once beside a far more common code one "
        "edit away (62370 beside 62270): the codes that may have been meant. Empty otherwise.",
    )
    note: str = Field("", description="A sentence saying why `suggestions` are offered.")

    @classmethod
    def of(cls, lookup: CodeLookup) -> CodeInfo:
        entry = lookup.entry
        return cls(
            code=entry.code,
            system=entry.system,
            category=entry.category,
            section=entry.section,
            mentions=entry.mentions,
            roles=entry.roles,
            documents=entry.documents,
            descriptors=[
                DescriptorOut(text=d.text, chunk_id=d.chunk_id, document=d.document_id)
                for d in entry.descriptors
            ],
            related=[RelatedCode(code=c, passages=n) for c, n in entry.related],
            passages=[_passage(hit) for hit in lookup.passages],
            status=lookup.status,
            history=[ChangeOut.of(c) for c in lookup.history],
            suggestions=list(lookup.suggestions),
            note=lookup.note,
        )


class ErrorDetail(BaseModel):
    type: str = Field(..., description="Machine-readable kind, e.g. 'invalid_input'.")
    message: str = Field(..., description="What went wrong and what to do about it.")
    suggestions: list[str] | None = Field(
        None, description="For an unknown code: known codes one edit away ('did you mean')."
    )


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
    reason: str | None = Field(
        None, description="Why an older snapshot is serving, or why the newest failed to load."
    )


class ReloadOut(BaseModel):
    previous: str | None = Field(..., description="Snapshot serving before the reload.")
    current: str | None = Field(..., description="Snapshot serving now.")
    reloaded: bool = Field(
        ..., description="False when the published snapshot was already serving."
    )
    seconds: float = Field(..., description="Time spent loading the new snapshot.")
    error: str | None = Field(None, description="Why a newer snapshot was not taken, if so.")
