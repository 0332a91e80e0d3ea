"""The interactive API docs (`/docs`, Swagger UI; `/redoc`, ReDoc) served from this package.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a machine without the
internet `/docs` is blank. Here the pages are FastAPI's (`get_swagger_ui_html`, as its
"self-hosting" docs show) and their scripts and styles come from the files that the
`fastapi-offline` package ships, served under `/docs-assets/`. The validator badge is off:
Swagger UI would fetch it from its own site.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS = "/docs-assets"


def mount_docs(app: FastAPI) -> None:
    """`/docs` and `/redoc` with their assets under `/docs-assets/` (the app must be made
    with `docs_url=None, redoc_url=None`)."""
    openapi_url = app.openapi_url or "/openapi.json"
    title = f"{app.title}: HTTP API"

    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=title,
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon.png",
            with_google_fonts=False,
        )

    app.add_api_route("/docs", swagger, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
    app.mount(ASSETS, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
