"""The web page at `/`: plain HTML, CSS and JavaScript from `api/page/`, no build step.

The page calls the JSON API (`POST /v1/query`, `GET /v1/codes/{code}`) from the browser. It is
open without the API key (like the health probes); when the server wants a key, the page asks
the user for it and keeps it for the tab's session only. Its Content-Security-Policy lets it
load and call nothing but this server, and its script writes corpus text with `textContent`,
never as HTML, so a passage cannot inject markup.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

PAGE_DIR = Path(__file__).resolve().parent / "page"

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def page() -> FileResponse:
    """The search page."""
    return FileResponse(PAGE_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


def mount_page(app: FastAPI) -> None:
    """Serve `/` and the page's files under `/page/`."""
    app.add_api_route("/", page, methods=["GET"], include_in_schema=False)
    app.mount("/page", StaticFiles(directory=PAGE_DIR), name="page")
