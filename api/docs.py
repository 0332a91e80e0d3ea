"""The interactive API docs (`/docs`, Swagger UI) served from this package.

FastAPI's own page loads Swagger UI from a CDN, so on a machine without the internet `/docs`
is blank. Here the page is FastAPI's (`get_swagger_ui_html`, as its "self-hosting" docs
show) and its script and style come from the files that the `fastapi-offline` package ships,
served under `/docs-assets/`. The validator badge is off: Swagger UI would fetch it from its
own site. There is no `/redoc`: ReDoc fetches its logo from its CDN whatever it is told.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS = "/docs-assets"


def mount_docs(app: FastAPI) -> None:
    """`/docs` with its assets under `/docs-assets/` (the app must be made with
    `docs_url=None, redoc_url=None`)."""
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

    app.add_api_route("/docs", swagger, methods=["GET"], include_in_schema=False)
    app.mount(ASSETS, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
