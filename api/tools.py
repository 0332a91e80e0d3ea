"""The two tools cptqa offers chatbots, described once for every chatbot stack.

`/v1/tools` serves them as OpenAI-style function-calling definitions and `api.mcp` registers
them as MCP tools. Both take their names, descriptions and argument schemas from here, and the
argument schemas come from the pydantic models of the HTTP API (`QueryRequest`, `CodeRequest`),
with the limits of the running `Settings` filled in, so a chatbot learns the same contract
whichever door it uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, Field

from api.schemas import CodeRequest, QueryRequest
from api.settings import Settings


@dataclass(frozen=True)
class ToolSpec:
    """One tool: what a model sees (name, description, arguments) and the HTTP route behind it."""

    name: str
    description: str
    arguments: type[BaseModel]
    method: str
    path: str


SEARCH_PASSAGES = ToolSpec(
    name="search_coding_passages",
    description=(
        "Search the indexed medical-coding reference corpus for the passages that answer a "
        "coder's free-text question about CPT or HCPCS coding, e.g. 'which fluoro code for "
        "occipital nerve block' or 'is 76000 bundled into 50590'. Returns the passages, best "
        "first, each with its source file, character offsets and the codes it cites (with role: "
        "defined, excluded, add-on, primary, deleted or mentioned), and `codes`: the ranked codes "
        "the answer points to, each with the sentence that cites it as evidence, its `status` "
        "(current, revised, deleted, or unassigned: not yet in use in the year of service the "
        "question names), its `history` of changes with year, replacements and source, and "
        "`dated` when its evidence is older than a change to it; each passage has the year it "
        "speaks for (`date`) and the later changes to codes it cites (`dated`). Never recommend "
        "a deleted code for a current claim: give its replacement. Answer from "
        "these passages and cite their source files; the corpus, not this tool, is the authority, "
        "and a code that no passage supports should not be suggested."
    ),
    arguments=QueryRequest,
    method="POST",
    path="/v1/query",
)

LOOKUP_CODE = ToolSpec(
    name="lookup_code",
    description=(
        "Look up one CPT or HCPCS Level II code in the indexed corpus: the descriptors the corpus "
        "gives for it (with the passage and file each came from), how often and in which roles "
        "it is mentioned, the passages that cite it, the codes mentioned with it, its `status` "
        "and its `history` (deleted, added, renumbered or revised, with year, replacements and "
        "source: cptqa's table and what the corpus states, both when they disagree). Use it to "
        "check a code before recommending it. A malformed code is an error; a well-formed code "
        "the corpus lacks is an error that lists known codes one edit away ('did you mean')."
    ),
    arguments=CodeRequest,
    method="GET",
    path="/v1/codes/{code}",
)

TOOLS: tuple[ToolSpec, ...] = (SEARCH_PASSAGES, LOOKUP_CODE)


def argument_schema(spec: ToolSpec, settings: Settings) -> dict[str, Any]:
    """The JSON Schema of a tool's arguments, with the server's limits filled in."""
    schema = spec.arguments.model_json_schema()
    properties: dict[str, dict[str, Any]] = {
        name: _plain(prop) for name, prop in schema["properties"].items()
    }
    if spec is SEARCH_PASSAGES:
        properties["question"].update(minLength=1, maxLength=settings.max_question_chars)
        properties["k"].update(
            minimum=1,
            maximum=settings.max_k,
            default=settings.default_k,
            description=f"How many passages to return (1 to {settings.max_k}, "
            f"default {settings.default_k}).",
        )
    return {
        "type": "object",
        "properties": properties,
        "required": schema.get("required", []),
        "additionalProperties": False,
    }


def _plain(prop: dict[str, Any]) -> dict[str, Any]:
    """A property as a model reads it best: no pydantic titles, `X | None` as plain optional X."""
    prop = {key: value for key, value in prop.items() if key != "title"}
    variants = prop.pop("anyOf", None)
    if variants is not None:
        kept = [v for v in variants if v.get("type") != "null"]
        if len(kept) == 1:
            prop.update(kept[0])
        else:
            prop["anyOf"] = kept
        if prop.get("default", "") is None:
            del prop["default"]
    return prop


def function_definitions(settings: Settings) -> list[dict[str, Any]]:
    """The tools in OpenAI's function-calling format (`tools=` of a chat completion)."""
    return [
        {
            "type": "function",
            "function": {
                "name": spec.name,
                "description": spec.description,
                "parameters": argument_schema(spec, settings),
            },
        }
        for spec in TOOLS
    ]


class Endpoint(BaseModel):
    method: str = Field(..., description="HTTP method of the route that runs the tool.")
    path: str = Field(
        ...,
        description="Its path; `{name}` is filled from the argument of that name, and for POST "
        "the arguments are the JSON body.",
    )


class ToolsResponse(BaseModel):
    tools: list[dict[str, Any]] = Field(
        ...,
        description="Function-calling definitions to pass as `tools=` to an OpenAI-style chat "
        "API as they are.",
    )
    endpoints: dict[str, Endpoint] = Field(
        ..., description="For each tool name, the HTTP route that runs a call of it."
    )


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def tools(settings: Annotated[Settings, Depends(_settings)]) -> ToolsResponse:
    """Function-calling definitions of cptqa's tools for OpenAI-style chatbots, and the route
    that runs each. The same tools are served over MCP at /mcp."""
    return ToolsResponse(
        tools=function_definitions(settings),
        endpoints={spec.name: Endpoint(method=spec.method, path=spec.path) for spec in TOOLS},
    )


def add_tools_route(app: FastAPI) -> None:
    """Serve `GET /v1/tools`; the app's `state.settings` gives the limits."""
    app.add_api_route("/v1/tools", tools, methods=["GET"], response_model=ToolsResponse)
