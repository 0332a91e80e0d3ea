"""Replies as people read them: documents named by title, answer codes with the corpus's own
descriptor. Shared by the HTTP routes, the MCP tools and the CLI, so all three say the same.
"""

from __future__ import annotations

from api.schemas import CodeInfo, QueryResponse
from api.service import Service
from api.titles import display_title, shortened
from index import Searcher
from index.store import ChunkStore

DESCRIPTOR_CHARS = 200


def query_reply(
    service: Service, question: object, k: object = None, explain: bool = False
) -> QueryResponse:
    """`POST /v1/query`'s reply: the search, with titles and descriptors filled in."""
    reply = QueryResponse.of(service.search(question, k, explain))
    service.read(lambda searcher: describe_query(reply, searcher.snapshot.store))
    return reply


def code_reply(searcher: Searcher, code: str) -> CodeInfo:
    """`GET /v1/codes/{code}`'s reply, with its descriptors' document titles."""
    info = CodeInfo.of(searcher.lookup(code))
    titles = _Titles(searcher.snapshot.store)
    for descriptor in info.descriptors:
        descriptor.title = titles.of(descriptor.document)
    return info


def describe_query(reply: QueryResponse, store: ChunkStore) -> None:
    """Name each evidence sentence's document, and give each answer code the corpus's own
    description of it (from the evidence's passage when it has one)."""
    titles = _Titles(store)
    for code in reply.codes:
        for evidence in code.evidence:
            evidence.document = evidence.chunk_id.rpartition("#")[0]
            evidence.title = titles.of(evidence.document)
        entry = store.glossary.get(code.code)
        if entry is None or not entry.descriptors:
            continue
        # The descriptor in the first evidence's passage, else the first that the corpus gives.
        order = [e.chunk_id for e in code.evidence]
        cited = [d for d in entry.descriptors if d.chunk_id in order]
        cited.sort(key=lambda d: order.index(d.chunk_id))
        chosen = cited[0] if cited else entry.descriptors[0]
        code.descriptor = shortened(" ".join(chosen.text.split()), DESCRIPTOR_CHARS)


class _Titles:
    def __init__(self, store: ChunkStore) -> None:
        self.store = store
        self.known: dict[str, str] = {}

    def of(self, document_id: str) -> str:
        if document_id not in self.known:
            documents = self.store.documents
            found = document_id in documents
            self.known[document_id] = (
                display_title(documents[document_id]) if found else document_id
            )
        return self.known[document_id]
