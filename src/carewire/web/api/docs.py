"""``/api/v1/docs``: the browsable API (Swagger UI), served whole by Carewire.

Hospital networks often cannot reach the internet, so the page loads nothing from
elsewhere: Swagger UI's script, style sheet and icon come from
``carewire/web/static/swagger-ui`` (swagger-ui-dist, Apache License 2.0; its
``LICENSE`` and ``NOTICE`` are beside the files), and the online validator badge,
which would call out, is turned off.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

#: Where the Swagger UI files are, inside the package.
ASSETS = Path(__file__).resolve().parent.parent / "static" / "swagger-ui"
ASSETS_PATH = "/docs/assets"


def install(api: FastAPI, *, openapi_url: str) -> None:
    """Serve the docs page at ``/docs`` and its files under ``/docs/assets``."""

    async def docs(request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", "")).rstrip("/")  # "/api/v1" once mounted
        assets = f"{root}{ASSETS_PATH}"
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{api.title} — documentation",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # the badge calls an online validator
        )

    api.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
    api.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="docs-assets")
