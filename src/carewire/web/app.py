"""The HTTPS application: XMPP over WebSocket, health, the REST API and the web console."""

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


def create_app(
    net: NetContext, api: FastAPI | None = None, console: ASGIApp | None = None
) -> Starlette:
    """The app served on the HTTPS port.

    ``api``, when given, is mounted at ``/api/v1``; ``console`` at ``/``, last,
    so that every path not taken by the others is the console's.
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
    return Starlette(routes=routes)
