"""The HTTPS application: XMPP over WebSocket, health, the REST API and the web console.

The whole application sits behind the guards of :mod:`carewire.web.guard`:
a request body cap and the security headers on every response.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket

from carewire.net.context import NetContext
from carewire.net.websocket import serve_websocket
from carewire.web.guard import BodyLimit, BodyLimits, ResponseHeaders


def create_app(
    net: NetContext,
    api: FastAPI | None = None,
    console: ASGIApp | None = None,
    *,
    limits: BodyLimits | None = None,
) -> ASGIApp:
    """The app served on the HTTPS port.

    ``api``, when given, is mounted at ``/api/v1``; ``console`` at ``/``, last,
    so that every path not taken by the others is the console's. Request
    bodies are capped by ``limits`` (the defaults when None).
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
        WebSocketRoute("/xmpp-websocket", xmpp_websocket),
    ]
    if api is not None:
        routes.append(Mount("/api/v1", app=api))
    if console is not None:
        routes.append(Mount("/", app=console))
    return ResponseHeaders(BodyLimit(Starlette(routes=routes), limits or BodyLimits()))
