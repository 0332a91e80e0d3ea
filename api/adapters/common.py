"""What both framework retrievers hand over: each passage's text with cptqa's facts about it
as plain metadata (JSON-safe values), so a chain can cite the document and the codes."""

from __future__ import annotations

from typing import Any

from api.schemas import Passage, QueryResponse


def passage_metadata(passage: Passage, reply: QueryResponse) -> dict[str, Any]:
    """The passage's source, offsets and codes, and the answer codes whose evidence it holds."""
    cited = [c.code for c in passage.codes]
    evidence = [
        {"code": code.code, "role": e.role, "text": e.text, "descriptor": code.descriptor}
        for code in reply.codes
        for e in code.evidence
        if e.chunk_id == passage.chunk_id
    ]
    return {
        "source": passage.document,
        "title": passage.title,
        "chunk_id": passage.chunk_id,
        "rank": passage.rank,
        "score": passage.score,
        "start": passage.start,
        "end": passage.end,
        "page": passage.page,
        "codes": list(dict.fromkeys(cited)),
        "code_mentions": [c.model_dump() for c in passage.codes],
        "evidence": evidence,
        "answer_codes": [c.code for c in reply.codes],
    }
