"""``/app``: the clinicians' web client, served whole by Carewire (no CDN, no build step).

The client is static files in ``carewire/web/static/app``: an HTML page, a
style sheet, our own ES modules and, in ``vendor/``, the XMPP library it is
built on (strophe.js, MIT; its licence is beside the file). It speaks XMPP
over this listener's ``/xmpp-websocket`` (RFC 7395) and needs nothing else of
the server but ``/app/config.json``, which names the chat domain (a browser
cannot learn it from the page's host name: the HTTPS name and the domain may
differ).

The Web Push service worker (``/app/push/sw.js``) is answered with
``Service-Worker-Allowed: /app/`` so that it may control the whole client
although it lives one folder down. Static files are sent compressed (gzip)
when the browser accepts it, with ``Cache-Control: no-cache`` (revalidated by
ETag, never served stale after an upgrade); ``config.json`` with ``no-store``.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

#: Where the client's files are, inside the package.
ASSETS = Path(__file__).resolve().parent / "static" / "app"
#: Where the client is served.
APP_PATH = "/app"
#: The service worker of Web Push and the scope it may claim.
SERVICE_WORKER = "push/sw.js"
SERVICE_WORKER_SCOPE = "/app/"
#: Static files: kept by the browser, revalidated on every use.
STATIC_CACHE = "no-cache"


class _RevalidatedFiles:
    """StaticFiles whose answers the browser keeps but checks again (ETag) each time."""

    def __init__(self, directory: Path) -> None:
        self._files = StaticFiles(directory=directory, html=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_cache_control(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))  # type: ignore[call-overload]
                headers.append((b"cache-control", STATIC_CACHE.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self._files(scope, receive, with_cache_control)  # type: ignore[arg-type]


async def to_app(_request: Request) -> RedirectResponse:
    """``/app`` → ``/app/`` (relative URLs in the page need the slash)."""
    return RedirectResponse(f"{APP_PATH}/", status_code=308)


def create_webclient(domain: str, *, assets: Path = ASSETS) -> ASGIApp:
    """The ASGI app to mount at :data:`APP_PATH` for the chat ``domain``."""

    async def config(_request: Request) -> JSONResponse:
        body = {"domain": domain, "websocket_path": "/xmpp-websocket"}
        return JSONResponse(body, headers={"cache-control": "no-store"})

    async def service_worker(_request: Request) -> Response:
        path = assets / SERVICE_WORKER
        if not path.is_file():
            return Response("no service worker installed\n", status_code=404)
        return FileResponse(
            path,
            media_type="text/javascript",
            headers={
                "service-worker-allowed": SERVICE_WORKER_SCOPE,
                "cache-control": STATIC_CACHE,
            },
        )

    # The files are static and hold no secret, so compressing them cannot leak one (BREACH needs
    # a secret and attacker-controlled text in one compressed response): a first visit moves
    # about a third of the bytes.
    app = Starlette(
        routes=[
            Route("/config.json", config, methods=["GET"]),
            Route(f"/{SERVICE_WORKER}", service_worker, methods=["GET"]),
            Mount("/", app=_RevalidatedFiles(assets)),
        ]
    )
    return GZipMiddleware(app, minimum_size=1024)
