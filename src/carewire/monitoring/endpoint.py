"""``/metrics`` over HTTP: on the HTTPS port behind a bearer token, or on a loopback port.

The token is ``metrics.token`` (or ``CAREWIRE_METRICS_TOKEN``) when set, else
the one ``carewire init`` wrote to ``DATA_DIR/keys/metrics.token`` (made at
start when missing). It is compared in constant time; a request without it,
or with another, gets 401 and a ``WWW-Authenticate: Bearer`` challenge. The
loopback port (``metrics.listen``) answers without a token: only processes on
the machine reach it (the configuration refuses other addresses unless told).
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from carewire.config import Config
from carewire.config_metrics import TOKEN_FILE

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def ensure_token_file(data_dir: Path) -> Path:
    """Create ``keys/metrics.token`` (owner-only) unless it exists; return its path."""
    path = data_dir / TOKEN_FILE
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    return path


def metrics_token(cfg: Config) -> str:
    """The bearer token ``/metrics`` on the HTTPS port asks for."""
    if cfg.metrics.token:
        return cfg.metrics.token
    return ensure_token_file(cfg.data_dir).read_text(encoding="utf-8").strip()


class MetricsEndpoint:
    """An ASGI app answering GET with ``render()``; with a token, only to its bearer.

    A class (not a function) so that Starlette's ``Route`` mounts it as an ASGI app.
    """

    def __init__(self, render: Callable[[], bytes], token: str | None) -> None:
        self._render = render
        self._expected = None if token is None else f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request."""
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response: Response
        if request.method not in ("GET", "HEAD"):
            response = PlainTextResponse("use GET\n", status_code=405, headers={"Allow": "GET"})
        elif self._expected is not None and not hmac.compare_digest(
            request.headers.get("authorization", "").encode(), self._expected
        ):
            response = PlainTextResponse(
                "a bearer token is required (docs/monitoring.md)\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        else:
            response = Response(self._render(), media_type=CONTENT_TYPE)
        await response(scope, receive, send)


def metrics_app(render: Callable[[], bytes], token: str | None) -> ASGIApp:
    """``/metrics`` for the HTTPS port (``token``: the bearer token asked for)."""
    return MetricsEndpoint(render, token)


def loopback_app(render: Callable[[], bytes]) -> ASGIApp:
    """The plain port's app: ``/metrics`` without a token, 404 for anything else."""
    inner = MetricsEndpoint(render, None)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope.get("path") != "/metrics":
            await PlainTextResponse("not found\n", status_code=404)(scope, receive, send)
            return
        await inner(scope, receive, send)

    return app
