"""cptqa as an MCP tool server (the official `mcp` SDK, major version 2, `MCPServer`).

Two tools, described in `api.tools`: `search_coding_passages` and `lookup_code`. They return the
same pydantic models as `POST /v1/query` and `GET /v1/codes/{code}`, so a chatbot gets the same
passages, offsets, codes and provenance over MCP as over HTTP. Two transports:

- stdio, `cptqa mcp`, for desktop chat clients that start the server themselves. stdout carries
  the protocol and nothing else: logs go to stderr, and while the model and index load, anything
  written to file descriptor 1 is sent to stderr (the SDK does the same while it serves).
- streamable HTTP at `/mcp` inside the FastAPI app (`mount_mcp`), behind the same API key,
  limits and logs as the rest of the API. It is stateless and answers with JSON: each call
  stands alone, so no session state lives in the server and any worker can answer.

(In mcp 1.x this class was called FastMCP; the `mcp.server.fastmcp` module is gone in 2.x.)
"""

# No `from __future__ import annotations` here: the SDK reads the tools' parameter annotations
# with `inspect.signature(eval_str=True)`, and they close over the settings' limits.

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import anyio
import mcp_types
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp.server.stdio import stdio_server
from mcp.shared._context_streams import create_context_streams
from mcp.shared.message import SessionMessage
from mcp.types import ToolAnnotations
from pydantic import ConfigDict, Field, ValidationError
from starlette.routing import Route

from api.firstbuild import index_in_child
from api.messages import explain_errors, field_hints
from api.replies import code_reply, query_reply
from api.schemas import CodeInfo, CodeRequest, QueryRequest, QueryResponse
from api.service import Service
from api.settings import Settings
from api.tools import LOOKUP_CODE, SEARCH_PASSAGES, ToolSpec, argument_schema
from ingest import CorpusError, CptqaError, UnknownCode

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "cptqa searches a coding-reference corpus (CPT and HCPCS coding guidance, newsletters, "
    "forum threads, payer policies) and answers with the passages themselves. Call "
    "search_coding_passages with the user's question in their own words; read the passages and "
    "the ranked `codes` with their evidence; cite each passage's `document`. Call lookup_code to "
    "check what the corpus says about a code before recommending it. Texts from different "
    "years disagree: a code whose `status` is deleted is a denied claim (give its replacement), "
    "and a passage or code marked `dated` gives advice older than a change to its codes."
)

# Reading tools over a fixed corpus: they change nothing and reach nothing outside it.
READ_ONLY = ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False)


def create_mcp_server(settings: Settings, service: Callable[[], Service]) -> MCPServer:
    """An MCP server whose tools call the `Service` that `service()` returns at call time."""
    # MCPServer() calls logging.basicConfig(); with a handler on the root logger for the
    # moment, that is a no-op, and the logging of the program that hosts us stays its own.
    root, placeholder = logging.getLogger(), logging.NullHandler()
    root.addHandler(placeholder)
    try:
        server = MCPServer(
            name="cptqa",
            title="cptqa: medical coding reference search",
            instructions=INSTRUCTIONS,
            version="0.1.0",
        )
    finally:
        root.removeHandler(placeholder)
    question_field = QueryRequest.model_fields["question"]
    code_field = CodeRequest.model_fields["code"]

    def search_coding_passages(
        question: Annotated[
            str,
            Field(
                description=question_field.description,
                min_length=1,
                max_length=settings.max_question_chars,
            ),
        ],
        k: Annotated[
            int,
            Field(
                description=f"How many passages to return (1 to {settings.max_k}, "
                f"default {settings.default_k}).",
                ge=1,
                le=settings.max_k,
            ),
        ] = settings.default_k,
        explain: Annotated[
            bool, Field(description=QueryRequest.model_fields["explain"].description)
        ] = False,
    ) -> QueryResponse:
        with _as_tool_errors():
            return query_reply(service(), question, k, explain=explain)

    def lookup_code(
        code: Annotated[str, Field(description=code_field.description)],
    ) -> CodeInfo:
        with _as_tool_errors():
            return service().read(lambda searcher: code_reply(searcher, code))

    for spec, function in (
        (SEARCH_PASSAGES, search_coding_passages),
        (LOOKUP_CODE, lookup_code),
    ):
        server.add_tool(
            function, name=spec.name, description=spec.description, annotations=READ_ONLY
        )
        _make_strict(server, spec, settings)
    return server


class _ArgumentsAsSent(FuncMetadata):
    """Arguments validated as the client sent them: the SDK would otherwise parse a string
    argument as JSON first (`"3"` becoming 3 for an integer)."""

    def pre_parse_json(self, data: dict[str, Any]) -> dict[str, Any]:
        return data


class _ToolInWords(Tool):
    """A tool whose refused arguments are said in words (api/messages.py), not as pydantic's
    dump with a documentation link."""

    hints: dict[str, str] = {}

    async def run(self, arguments: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().run(arguments, *args, **kwargs)
        except ToolError as exc:
            cause = exc.__cause__
            if not isinstance(cause, ValidationError):
                raise
            known = list(self.parameters.get("properties", {}))
            message = explain_errors(cause.errors(), self.hints, known)
            raise ToolError(f"{self.name} was called with bad arguments: {message}") from None


def _make_strict(server: MCPServer, spec: ToolSpec, settings: Settings) -> None:
    """Hold a tool to the contract `/v1/tools` states: the same schema, no unknown
    arguments, no coerced types (the HTTP API's `QueryRequest` is just as strict)."""
    tool = server._tool_manager.get_tool(spec.name)
    assert tool is not None
    loose = tool.fn_metadata.arg_model
    strict = type(
        loose.__name__,
        (loose,),
        {"model_config": ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)},
    )
    fields = {name: getattr(tool.fn_metadata, name) for name in FuncMetadata.model_fields}
    tool.fn_metadata = _ArgumentsAsSent(**{**fields, "arg_model": strict})
    tool.parameters = argument_schema(spec, settings)
    tool.__class__ = _ToolInWords
    tool.hints = field_hints(settings.max_k, settings.max_question_chars)


@contextlib.contextmanager
def _as_tool_errors() -> Iterator[None]:
    """Our errors become tool errors whose text the model reads and can act on."""
    try:
        yield
    except UnknownCode as exc:
        unsaid = [code for code in exc.suggestions if code not in exc.message]
        hint = f" Known codes one edit away: {', '.join(unsaid)}." if unsaid else ""
        raise ToolError(exc.message + hint) from exc
    except CptqaError as exc:
        raise ToolError(exc.message) from exc


def mount_mcp(app: FastAPI, settings: Settings) -> MCPServer:
    """Serve MCP over streamable HTTP at `/mcp` of `app`; the app's lifespan must run
    `server.session_manager.run()`."""
    server = create_mcp_server(settings, lambda: app.state.service)
    # The SDK turns on DNS-rebinding protection (Host and Origin checks) when it is told that
    # the server listens on a loopback address.
    mcp_app = server.streamable_http_app(
        streamable_http_path="/mcp", stateless_http=True, json_response=True, host=settings.host
    )
    # Its routes join the app's own, so /mcp passes through the same middleware (key, limits,
    # logs, metrics) as every other route, at exactly /mcp with no redirect. A stateless server
    # sends nothing unasked, so it offers no GET event stream, which the SDK would otherwise
    # hold open for as long as the client stays (the protocol lets a server answer 405).
    app.router.routes.append(Route("/mcp", _no_event_stream, methods=["GET"]))
    app.router.routes.extend(mcp_app.routes)
    return server


async def _no_event_stream(request: Request) -> JSONResponse:
    message = "this server sends no events: POST JSON-RPC requests to /mcp"
    body = {"error": {"type": "method_not_allowed", "message": message}}
    return JSONResponse(body, status_code=405, headers={"Allow": "POST"})


def run_stdio(settings: Settings, build: bool = True) -> None:
    """Serve MCP over stdin/stdout until the client closes it (`cptqa mcp`)."""
    with _stdout_to_stderr():
        service = Service(settings)
        if build and not service.has_index():
            log.warning(
                "no index in %s: indexing %s first", settings.index_dir, settings.corpus_dir
            )
            if code := index_in_child(settings):
                raise CorpusError(f"the first index was not built (`cptqa ingest` exit {code})")
        service.load()
    server = create_mcp_server(settings, lambda: service)
    anyio.run(_serve_stdio, server)


async def _serve_stdio(server: MCPServer) -> None:
    """`server.run_stdio_async`, except that a line that is not a JSON-RPC message (not JSON,
    a lone surrogate, invalid UTF-8) gets a JSON-RPC parse error back; the SDK drops such a
    line without a reply, and its client would wait forever."""
    lowlevel = server._lowlevel_server
    async with stdio_server() as (read_stream, write_stream):
        screened, screened_reader = create_context_streams[SessionMessage | Exception](0)

        async def screen() -> None:
            async with screened:
                async for item in read_stream:
                    if isinstance(item, Exception):
                        await write_stream.send(SessionMessage(_parse_error(item)))
                    else:
                        await screened.send(item)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(screen)
            await lowlevel.run(
                screened_reader, write_stream, lowlevel.create_initialization_options()
            )
            tasks.cancel_scope.cancel()


def _parse_error(exc: Exception) -> mcp_types.JSONRPCError:
    """A JSON-RPC parse error (-32700) for an unreadable line, with the request's id when
    Python's own parser can still find one (it reads lone surrogates), so that the client
    waiting on that id gets its answer."""
    line = ""
    if isinstance(exc, ValidationError) and exc.errors():
        line = str(exc.errors()[0].get("input", ""))
    request_id: int | str | None = None
    with contextlib.suppress(ValueError, RecursionError):
        found = json.loads(line).get("id") if line.lstrip().startswith("{") else None
        if isinstance(found, str | int) and not isinstance(found, bool):
            request_id = found if _encodable(str(found)) else None
    log.warning("unreadable MCP message on stdin: replied with a parse error")
    return mcp_types.JSONRPCError(
        jsonrpc="2.0",
        id=request_id,
        error=mcp_types.ErrorData(
            code=mcp_types.PARSE_ERROR,
            message="Parse error: not a JSON-RPC message in valid UTF-8 JSON (lone surrogates "
            "such as \\ud800 are not accepted)",
        ),
    )


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send whatever is written to stdout, by Python or by a C library, to stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
