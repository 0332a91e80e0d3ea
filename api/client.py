"""A typed Python client for cptqa's HTTP API (httpx), sync and async.

    from api.client import CptqaClient
    with CptqaClient("http://127.0.0.1:8000") as cptqa:
        reply = cptqa.query("which fluoro code for occipital nerve block", k=3)
        print(reply.codes[0].code, reply.results[0].title)

Replies are the server's own pydantic models (`QueryResponse`, `CodeInfo`, `DocumentOut`), so a
field the server adds reaches the caller typed. A refusal raises `CptqaApiError` with the
status, the error's `type` and its message (and `suggestions` for an unknown code).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from api.documents import DocumentOut
from api.schemas import CodeInfo, QueryResponse

DEFAULT_URL = "http://127.0.0.1:8000"


class CptqaApiError(Exception):
    """The server refused a request: `status`, `type` ('invalid_input', ...) and `message`."""

    def __init__(
        self, status: int, kind: str, message: str, suggestions: list[str] | None = None
    ) -> None:
        super().__init__(f"{status} {kind}: {message}")
        self.status = status
        self.type = kind
        self.message = message
        self.suggestions = suggestions or []


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _checked(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_success and body is not None:
        return body
    error = body.get("error", {}) if isinstance(body, dict) else {}
    raise CptqaApiError(
        response.status_code,
        error.get("type", "http_error"),
        error.get("message", response.text[:200] or response.reason_phrase),
        error.get("suggestions"),
    )


def _query_body(question: str, k: int | None, explain: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"question": question, "explain": explain}
    if k is not None:
        body["k"] = k
    return body


def _document_path(document_id: str) -> str:
    return "/v1/documents/" + quote(document_id, safe="/")


class CptqaClient:
    """Blocking client; use as a context manager, or call `close()`."""

    def __init__(
        self, base_url: str = DEFAULT_URL, api_key: str | None = None, timeout: float = 30.0
    ) -> None:
        self._http = httpx.Client(base_url=base_url, headers=_headers(api_key), timeout=timeout)

    def query(self, question: str, k: int | None = None, explain: bool = False) -> QueryResponse:
        """The passages that answer `question` and the answer's ranked codes."""
        body = _checked(self._http.post("/v1/query", json=_query_body(question, k, explain)))
        return QueryResponse.model_validate(body)

    def code(self, code: str) -> CodeInfo:
        """What the corpus says about `code` (77002, or 77002-26 with modifiers)."""
        return CodeInfo.model_validate(_checked(self._http.get(f"/v1/codes/{quote(code)}")))

    def document(self, document_id: str) -> DocumentOut:
        """A document's whole text and its passages' offsets (a passage's `document`)."""
        return DocumentOut.model_validate(_checked(self._http.get(_document_path(document_id))))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncCptqaClient:
    """The same calls, awaited; use with `async with`, or call `aclose()`."""

    def __init__(
        self, base_url: str = DEFAULT_URL, api_key: str | None = None, timeout: float = 30.0
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=_headers(api_key), timeout=timeout
        )

    async def query(
        self, question: str, k: int | None = None, explain: bool = False
    ) -> QueryResponse:
        response = await self._http.post("/v1/query", json=_query_body(question, k, explain))
        return QueryResponse.model_validate(_checked(response))

    async def code(self, code: str) -> CodeInfo:
        return CodeInfo.model_validate(_checked(await self._http.get(f"/v1/codes/{quote(code)}")))

    async def document(self, document_id: str) -> DocumentOut:
        response = await self._http.get(_document_path(document_id))
        return DocumentOut.model_validate(_checked(response))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
