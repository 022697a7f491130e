"""The HTTPS application: XMPP over WebSocket, health, the REST API, the web console, the
clinicians' web client and file sharing.

The whole application sits behind the guards of :mod:`carewire.web.guard`:
a request body cap and the security headers on every response. File sharing
(``/upload/``, :mod:`carewire.web.upload`) has the headers but not the body
cap: the size of each upload's slot is its cap.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from carewire.identity.scim.service import SCIM_PATH
from carewire.net.context import NetContext
from carewire.net.https import UPLOAD_PREFIX
from carewire.net.websocket import serve_websocket
from carewire.web.guard import BodyLimit, BodyLimits, ResponseHeaders
from carewire.web.host_meta import WEBSOCKET_PATH, host_meta_routes
from carewire.web.webclient import APP_PATH, to_app


def create_app(
    net: NetContext,
    api: FastAPI | None = None,
    console: ASGIApp | None = None,
    *,
    limits: BodyLimits | None = None,
    uploads: ASGIApp | None = None,
    scim: ASGIApp | None = None,
    metrics: ASGIApp | None = None,
    websocket_url: str | None = None,
    webclient: ASGIApp | None = None,
) -> ASGIApp:
    """The app served on the HTTPS port.

    ``api``, when given, is mounted at ``/api/v1``; ``console`` at ``/``, last,
    so that every path not taken by the others is the console's. Request
    bodies are capped by ``limits`` (the defaults when None). ``uploads``, when
    given, serves ``/upload/…`` (file sharing) outside the body cap; ``scim``, when
    given, serves ``/scim/v2/…`` outside it too (it caps bodies itself, with SCIM errors).
    ``metrics``, when given, answers ``/metrics`` (Prometheus, behind its bearer token).
    ``websocket_url``, when given, is advertised at ``/.well-known/host-meta`` (XEP-0156).
    ``webclient``, when given, is the clinicians' web client at ``/app``
    (:mod:`carewire.web.webclient`).
    """

    async def healthz(_request: Request) -> JSONResponse:
        body: dict[str, Any] = {
            "status": "ok",
            "domain": net.kernel.hosts.domain,
            "sessions": len(net.kernel.sessions),
            "connections": len(net.connections),
        }
        return JSONResponse(body)

    async def xmpp_websocket(ws: WebSocket) -> None:
        await serve_websocket(ws, net)

    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        WebSocketRoute(WEBSOCKET_PATH, xmpp_websocket),
    ]
    if metrics is not None:
        routes.append(Route("/metrics", metrics, methods=["GET", "HEAD"]))
    if websocket_url is not None:
        routes += host_meta_routes(websocket_url)
    if webclient is not None:
        routes += [Route(APP_PATH, to_app, methods=["GET", "HEAD"]), Mount(APP_PATH, webclient)]
    if api is not None:
        routes.append(Mount("/api/v1", app=api))
    if console is not None:
        routes.append(Mount("/", app=console))
    app = ResponseHeaders(BodyLimit(Starlette(routes=routes), limits or BodyLimits()))
    if uploads is None and scim is None:
        return app
    files = None if uploads is None else ResponseHeaders(uploads)
    provisioning = (
        None if scim is None else ResponseHeaders(Starlette(routes=[Mount(SCIM_PATH, scim)]))
    )

    async def by_path(scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", "")) if scope["type"] == "http" else ""
        if files is not None and path.startswith(UPLOAD_PREFIX):
            await files(scope, receive, send)
        elif provisioning is not None and path.startswith(SCIM_PATH + "/"):
            await provisioning(scope, receive, send)
        else:
            await app(scope, receive, send)

    return by_path
