"""`GET /v1/tools`: function-calling definitions an OpenAI-style chatbot can use as they are."""

from __future__ import annotations

from pathlib import Path

from conftest import make_settings
from fastapi.testclient import TestClient

from api import create_app
from api.schemas import CodeRequest, QueryRequest
from index import Embedder

EXAMPLE = "which fluoro code for occipital nerve block"


def test_tools_are_openai_function_definitions(client: TestClient) -> None:
    body = client.get("/v1/tools").json()
    names = [tool["function"]["name"] for tool in body["tools"]]
    assert names == ["search_coding_passages", "lookup_code"]
    for tool in body["tools"]:
        assert tool["type"] == "function"
        assert set(tool["function"]) == {"name", "description", "parameters"}
        parameters = tool["function"]["parameters"]
        assert parameters["type"] == "object"
        assert parameters["additionalProperties"] is False
        assert len(tool["function"]["description"]) > 100
        for prop in parameters["properties"].values():
            assert "title" not in prop and "anyOf" not in prop
    assert body["endpoints"] == {
        "search_coding_passages": {"method": "POST", "path": "/v1/query"},
        "lookup_code": {"method": "GET", "path": "/v1/codes/{code}"},
    }


def test_tool_parameters_come_from_the_request_models(client: TestClient) -> None:
    tools = {t["function"]["name"]: t["function"] for t in client.get("/v1/tools").json()["tools"]}
    search = tools["search_coding_passages"]["parameters"]
    assert set(search["properties"]) == set(QueryRequest.model_fields)
    assert search["required"] == ["question"]
    question = QueryRequest.model_fields["question"].description
    assert search["properties"]["question"]["description"] == question
    assert search["properties"]["question"]["type"] == "string"
    assert search["properties"]["k"]["type"] == "integer"
    lookup = tools["lookup_code"]["parameters"]
    assert set(lookup["properties"]) == set(CodeRequest.model_fields) == {"code"}
    code = CodeRequest.model_fields["code"].description
    assert lookup["properties"]["code"]["description"] == code


def test_tool_limits_follow_the_settings(seed_index: Path, embedder: Embedder) -> None:
    settings = make_settings(seed_index, max_k=8, default_k=3, max_question_chars=200)
    with TestClient(create_app(settings, embedder=embedder)) as custom:
        search = custom.get("/v1/tools").json()["tools"][0]["function"]["parameters"]
    k = search["properties"]["k"]
    assert (k["minimum"], k["maximum"], k["default"]) == (1, 8, 3)
    assert search["properties"]["question"]["maxLength"] == 200


def test_a_chatbot_runs_each_tool_call_through_its_endpoint(client: TestClient) -> None:
    """What a chatbot loop does with a model's tool call: look up the route and call it."""
    endpoints = client.get("/v1/tools").json()["endpoints"]
    calls = [
        ("search_coding_passages", {"question": EXAMPLE, "k": 3}),
        ("lookup_code", {"code": "77002"}),
    ]
    replies = {}
    for name, arguments in calls:
        endpoint = endpoints[name]
        path = endpoint["path"].format(**arguments)
        if endpoint["method"] == "POST":
            response = client.post(path, json=arguments)
        else:
            response = client.get(path)
        assert response.status_code == 200, response.text
        replies[name] = response.json()
    assert replies["search_coding_passages"]["codes"][0]["code"] == "77002"
    assert replies["lookup_code"]["code"] == "77002"


def test_tools_are_in_the_openapi_schema(client: TestClient) -> None:
    assert "/v1/tools" in client.get("/openapi.json").json()["paths"]
