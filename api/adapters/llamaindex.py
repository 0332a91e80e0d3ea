"""cptqa as a LlamaIndex retriever (`pip install 'cptqa[llamaindex]'`).

    from api.adapters.llamaindex import CptqaRetriever
    retriever = CptqaRetriever(base_url="http://127.0.0.1:8000", k=3)
    nodes = retriever.retrieve("which fluoro code for occipital nerve block")
    nodes[0].node.metadata["codes"], nodes[0].score

Each `NodeWithScore` is one passage, best first, scored by cptqa's ranker; the node's metadata
is `passage_metadata`'s.
"""

from __future__ import annotations

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from api.adapters.common import passage_metadata
from api.client import DEFAULT_URL, AsyncCptqaClient, CptqaClient
from api.schemas import QueryResponse


class CptqaRetriever(BaseRetriever):
    """Passages from a running `cptqa serve`, as LlamaIndex nodes."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str | None = None,
        k: int | None = None,
        timeout: float = 30.0,
    ) -> None:
        super().__init__()
        self.base_url, self.api_key, self.k, self.timeout = base_url, api_key, k, timeout

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        with CptqaClient(self.base_url, self.api_key, self.timeout) as client:
            return _nodes(client.query(query_bundle.query_str, self.k))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        async with AsyncCptqaClient(self.base_url, self.api_key, self.timeout) as client:
            return _nodes(await client.query(query_bundle.query_str, self.k))


def _nodes(reply: QueryResponse) -> list[NodeWithScore]:
    nodes = []
    for passage in reply.results:
        metadata = passage_metadata(passage, reply)
        node = TextNode(
            id_=passage.chunk_id,
            text=passage.text,
            metadata=metadata,
            # Metadata is for the application; the model reads the passage and its title.
            excluded_llm_metadata_keys=[k for k in metadata if k != "title"],
            excluded_embed_metadata_keys=list(metadata),
        )
        nodes.append(NodeWithScore(node=node, score=passage.score))
    return nodes
