"""The typed client (sync and async) and the LangChain and LlamaIndex retrievers, against a
real `cptqa serve` process with an API key (conftest's `keyed_server`)."""

from __future__ import annotations

import anyio
import pytest
from conftest import SERVED_API_KEY
from live import LiveServer

from api.client import AsyncCptqaClient, CptqaApiError, CptqaClient

EXAMPLE = "which fluoro code for occipital nerve block"


def test_the_sync_client_queries_looks_up_and_reads_documents(keyed_server: LiveServer) -> None:
    with CptqaClient(keyed_server.base, api_key=SERVED_API_KEY) as cptqa:
        reply = cptqa.query(EXAMPLE, k=3, explain=True)
        assert reply.codes[0].code == "77002"
        assert reply.codes[0].descriptor and reply.codes[0].explanation is not None
        first = reply.results[0]
        assert first.title == "Wiki Difference between 77002 & 77003"
        document = cptqa.document(first.document)
        assert document.text[first.start : first.end] == first.text
        assert first.chunk_id in [p.chunk_id for p in document.passages]
        assert cptqa.code("77002-26").code == "77002"
        with pytest.raises(CptqaApiError) as unknown:
            cptqa.code("62271")
        assert unknown.value.status == 404 and "62270" in unknown.value.suggestions
        with pytest.raises(CptqaApiError) as empty:
            cptqa.query("   ")
        assert empty.value.status == 422 and empty.value.type == "invalid_input"
        assert "question is empty" in empty.value.message


def test_the_client_without_the_key_is_told_so(keyed_server: LiveServer) -> None:
    with CptqaClient(keyed_server.base) as cptqa, pytest.raises(CptqaApiError) as refused:
        cptqa.query(EXAMPLE)
    assert refused.value.status == 401 and refused.value.type == "unauthorized"


def test_the_async_client_gives_the_same_reply(keyed_server: LiveServer) -> None:
    async def ask() -> tuple[list[str], list[str]]:
        async with AsyncCptqaClient(keyed_server.base, api_key=SERVED_API_KEY) as cptqa:
            reply = await cptqa.query(EXAMPLE, k=3)
            info = await cptqa.code("77003")
            assert info.code == "77003" and info.descriptors
            return [p.chunk_id for p in reply.results], [c.code for c in reply.codes]

    with CptqaClient(keyed_server.base, api_key=SERVED_API_KEY) as cptqa:
        sync = cptqa.query(EXAMPLE, k=3)
    assert anyio.run(ask) == ([p.chunk_id for p in sync.results], [c.code for c in sync.codes])


def test_the_langchain_retriever_returns_passages_with_codes_and_evidence(
    keyed_server: LiveServer,
) -> None:
    pytest.importorskip("langchain_core", reason="pip install -e '.[langchain]'")
    from api.adapters.langchain import CptqaRetriever

    retriever = CptqaRetriever(base_url=keyed_server.base, api_key=SERVED_API_KEY, k=3)
    documents = retriever.invoke(EXAMPLE)
    assert len(documents) == 3
    answering = next(d for d in documents if "for non-spinal procedures" in d.page_content)
    assert "77002" in answering.metadata["codes"]
    assert answering.metadata["title"] == "Wiki Difference between 77002 & 77003"
    assert any(e["code"] == "77002" for e in answering.metadata["evidence"])
    assert documents[0].metadata["answer_codes"][0] == "77002"
    later = anyio.run(retriever.ainvoke, EXAMPLE)
    assert [d.id for d in later] == [d.id for d in documents]


def test_the_llamaindex_retriever_returns_scored_nodes_with_codes(
    keyed_server: LiveServer,
) -> None:
    pytest.importorskip("llama_index.core", reason="pip install -e '.[llamaindex]'")
    from api.adapters.llamaindex import CptqaRetriever

    retriever = CptqaRetriever(base_url=keyed_server.base, api_key=SERVED_API_KEY, k=3)
    nodes = retriever.retrieve(EXAMPLE)
    assert len(nodes) == 3
    assert [n.score for n in nodes] == sorted((n.score for n in nodes), reverse=True)
    answering = next(n for n in nodes if "for non-spinal procedures" in n.node.get_content())
    assert "77002" in answering.node.metadata["codes"]
    assert any(e["code"] == "77002" for e in answering.node.metadata["evidence"])
    later = anyio.run(retriever.aretrieve, EXAMPLE)
    assert [n.node.node_id for n in later] == [n.node.node_id for n in nodes]
