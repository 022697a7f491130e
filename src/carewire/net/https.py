"""The HTTPS server's HTTP/1.1 protocol with read deadlines (slow-request protection).

Theory of operation. uvicorn's h11 protocol waits for a request head and its
body as long as the client keeps sending, however slowly: a client that
trickles one header line every few seconds holds a connection (and its
buffers) for ever. This subclass keeps one deadline per connection, chosen
by what the client still owes us (h11's ``their_state``):

- ``IDLE`` (a request head is due, on a new or a kept-alive connection): the
  whole head must have arrived within ``header_timeout``;
- ``SEND_BODY`` (the head is in, the body is coming): the whole body must have
  arrived within ``body_timeout`` (``upload_body_timeout`` for a file upload, a
  request to :data:`UPLOAD_PREFIX`: files are larger than forms);
- anything else (the request is complete and being answered, or the
  connection became a WebSocket): no deadline.

A missed deadline closes the connection. uvicorn's own keep-alive timeout
still ends idle kept-alive connections earlier.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

#: File uploads (XEP-0363, :mod:`carewire.web.upload`) have their own body deadline.
UPLOAD_PREFIX = "/upload/"


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with header and body read deadlines (set by :func:`protocol`)."""

    header_timeout: float = 30.0
    body_timeout: float = 60.0
    upload_body_timeout: float = 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """As uvicorn's protocol; no deadline until the connection is made."""
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._owed: object = None  # the h11 state the deadline was set for

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the request-head deadline."""
        super().connection_made(transport)
        self._follow()

    def data_received(self, data: bytes) -> None:
        """Parse, then move the deadline to what is owed now."""
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        """A kept-alive connection owes the next request head."""
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        """No deadline for a closed connection."""
        self._cancel()
        super().connection_lost(exc)

    def _follow(self) -> None:
        state = self.conn.their_state
        if state is self._owed:
            return
        self._cancel()
        self._owed = state
        if state is h11.IDLE:
            self._deadline = self.loop.call_later(self.header_timeout, self._expired, "headers")
        elif state is h11.SEND_BODY:
            path = str(self.scope.get("path", "")) if self.scope else ""
            limit = (
                self.upload_body_timeout if path.startswith(UPLOAD_PREFIX) else self.body_timeout
            )
            self._deadline = self.loop.call_later(limit, self._expired, "body")

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, what: str) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return  # closed already, or handed over to the WebSocket protocol
        host = self.client[0] if self.client else "?"
        log.warning("HTTPS connection from %s closed: request %s too slow", host, what)
        self.transport.close()


def protocol(
    *, header_timeout: float, body_timeout: float, upload_body_timeout: float | None = None
) -> type[GuardedH11Protocol]:
    """The protocol class for uvicorn's ``http`` setting, with these deadlines (seconds)."""
    return type(
        "GuardedH11",
        (GuardedH11Protocol,),
        {
            "header_timeout": header_timeout,
            "body_timeout": body_timeout,
            "upload_body_timeout": upload_body_timeout or body_timeout,
        },
    )
