"""cptqa as a LangChain retriever (`pip install 'cptqa[langchain]'`).

    from api.adapters.langchain import CptqaRetriever
    retriever = CptqaRetriever(base_url="http://127.0.0.1:8000", k=3)
    docs = retriever.invoke("which fluoro code for occipital nerve block")
    docs[0].metadata["codes"], docs[0].metadata["evidence"]

Each `Document` is one passage, best first; its metadata is `passage_metadata`'s.
"""

from __future__ import annotations

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from api.adapters.common import passage_metadata
from api.client import DEFAULT_URL, AsyncCptqaClient, CptqaClient
from api.schemas import QueryResponse


class CptqaRetriever(BaseRetriever):
    """Passages from a running `cptqa serve`, as LangChain documents."""

    base_url: str = DEFAULT_URL
    api_key: str | None = None
    k: int | None = None  # the server's default (CPTQA_DEFAULT_K) when None
    timeout: float = 30.0

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        with CptqaClient(self.base_url, self.api_key, self.timeout) as client:
            return _documents(client.query(query, self.k))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        async with AsyncCptqaClient(self.base_url, self.api_key, self.timeout) as client:
            return _documents(await client.query(query, self.k))


def _documents(reply: QueryResponse) -> list[Document]:
    return [
        Document(page_content=p.text, metadata=passage_metadata(p, reply), id=p.chunk_id)
        for p in reply.results
    ]
