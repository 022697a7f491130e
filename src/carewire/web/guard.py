"""The HTTPS edge's guards: a request body cap and the security headers on every response.

Theory of operation. :class:`BodyLimit` refuses a request whose declared
``Content-Length`` is over the cap with a 413 before the application runs; a
body sent without a length (chunked) is counted as it is read, and the
moment it passes the cap the application's ``receive`` raises. The
application's own answer to that (a 500 from its error handler) is
swallowed and the client hears the 413 instead, so nothing half-read is ever
acted on. Multipart uploads (the console's CSV and certificate files) have
their own, larger cap; everything else (JSON, forms) the smaller one.

:class:`ResponseHeaders` adds ``Cache-Control: no-store`` (no copy of a
patient's data in a browser or proxy cache; static assets excepted), HSTS
and ``X-Content-Type-Options: nosniff`` to every response that does not set
them itself: the API and ``/healthz`` as much as the console.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

#: One year, the value HSTS preload lists ask for.
HSTS = "max-age=31536000; includeSubDomains"

#: Added to every HTTP response that does not set them.
RESPONSE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"strict-transport-security", HSTS.encode()),
    (b"x-content-type-options", b"nosniff"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class BodyLimits:
    """The largest request bodies accepted, in bytes."""

    max_body: int = 1_048_576  # JSON and forms
    max_upload: int = 16_777_216  # multipart/form-data (file uploads)

    def for_content_type(self, content_type: str) -> int:
        """The cap for a body of ``content_type``."""
        if content_type.lower().startswith("multipart/form-data"):
            return self.max_upload
        return self.max_body


class BodyTooLarge(Exception):
    """Raised from ``receive`` once a body passes its cap."""


class BodyLimit:
    """ASGI middleware: bodies over the cap are answered with 413 and never handed on whole."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        """Wrap ``app`` with ``limits``."""
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count what is read."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        cap = self.limits.for_content_type(headers.get(b"content-type", b"").decode("latin-1"))
        declared = headers.get(b"content-length", b"").decode("latin-1").strip()
        if declared.isdigit() and int(declared) > cap:
            await _too_large(send, cap)
            return
        state = _Reading(cap=cap)

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state.read += len(message.get("body", b""))
                if state.read > cap:
                    state.is_over = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if state.is_over:
                return  # the application's answer to the overflow: the client hears 413
            if message["type"] == "http.response.start":
                state.is_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            pass
        except Exception:
            if not state.is_over:
                raise
        if state.is_over and not state.is_started:
            log.warning("request body over %d bytes refused (%s)", cap, scope.get("path", ""))
            await _too_large(send, cap)


@dataclass(slots=True, kw_only=True)
class _Reading:
    cap: int
    read: int = 0
    is_over: bool = False
    is_started: bool = False


async def _too_large(send: Send, cap: int) -> None:
    """A 413 problem (RFC 9457) that closes the connection."""
    body = json.dumps(
        {
            "type": "urn:carewire:problem:payload-too-large",
            "title": "Content Too Large",
            "status": 413,
            "detail": f"the request body is larger than the limit of {cap} bytes",
            "code": "payload-too-large",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                (b"cache-control", b"no-store"),
                *RESPONSE_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# A JSON escape of a UTF-16 surrogate (paired or lone) or of NUL.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:[dD][89a-fA-F][0-9a-fA-F]{2}|0000)")


class InputText:
    """ASGI middleware: query strings and JSON bodies that are not storable text get a 422.

    JSON can spell a lone UTF-16 surrogate (``"\\ud800"``), which is no
    Unicode character and cannot be encoded to UTF-8 for a database, a log
    or a response; and NUL (``"\\u0000"``), which PostgreSQL text refuses.
    Both are refused here (NUL in the query string too), before any handler
    sees them. The check costs
    one regular-expression scan of bodies; only those with such an escape are
    parsed twice.
    """

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the query, read the body, check it, hand it on unchanged."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%00" in scope.get("query_string", b""):
            await _unprocessable(send, "a query parameter contains NUL (%00)")
            return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        problem = text_problem(body) if _SUSPECT_ESCAPE.search(body) else None
        if problem is not None:
            await _unprocessable(send, problem)
            return
        replay = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay([replay], receive), send)


def text_problem(body: bytes) -> str | None:
    """What makes the strings of a JSON ``body`` unstorable (None: nothing, or not JSON)."""
    try:
        value = json.loads(body)
    except ValueError:
        return None  # the application answers malformed JSON itself
    return _bad_text(value)


def _bad_text(value: object) -> str | None:
    strings: list[str] = []
    stack = [value]
    while stack:  # iterative: a deeply nested body must not exhaust the stack
        item = stack.pop()
        if isinstance(item, str):
            strings.append(item)
        elif isinstance(item, dict):
            strings += item.keys()
            stack += item.values()
        elif isinstance(item, list):
            stack += item
    for text in strings:
        if "\x00" in text:
            return "a string in the request body contains NUL (\\u0000)"
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return (
                "a string in the request body contains a lone UTF-16 surrogate "
                "(such as \\ud800): text must be valid Unicode"
            )
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replayed() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return replayed


async def _unprocessable(send: Send, detail: str) -> None:
    body = json.dumps(
        {
            "type": "urn:carewire:problem:invalid-text",
            "title": "Unprocessable Content",
            "status": 422,
            "detail": detail,
            "code": "invalid-text",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ResponseHeaders:
    """ASGI middleware: HSTS, nosniff and (but on ``/static/``) ``Cache-Control: no-store``."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers the response does not set itself."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(RESPONSE_HEADERS)
        if not str(scope.get("path", "")).startswith("/static/"):
            extra.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
