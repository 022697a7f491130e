"""What both directions of a server-to-server connection share: transport, TLS, output, worker.

Theory of operation: like :class:`~carewire.net.connection.XmppConnection`,
a connection is an asyncio protocol feeding a sans-IO stream; TLS runs in
memory buffers (:class:`~carewire.net.s2s_tls.TlsEngine`). Stanzas are handed
to the manager in order by a short-lived worker task; negotiation is handled
synchronously as bytes arrive. Output is coalesced per loop iteration and a
peer that stops reading is cut off past ``max_send_buffer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast
from xml.etree.ElementTree import Element

from OpenSSL import SSL

from carewire.core.federation import Direction
from carewire.core.s2s import S2SManager
from carewire.core.s2s_policy import PeerCertificate
from carewire.net.s2s_tls import TlsEngine, TlsFailed, s2s_context
from carewire.xmpp.errors import StreamCondition
from carewire.xmpp.parser import ParserLimits
from carewire.xmpp.s2s_common import S2SEvent

log = logging.getLogger(__name__)


@dataclass(slots=True, kw_only=True)
class S2SContext:
    """What every server-to-server connection of one server shares."""

    manager: S2SManager
    domain: str
    domains_served: frozenset[str]
    cert_file: Path
    key_file: Path
    ca_file: Path | None
    limits: ParserLimits
    max_send_buffer: int = 1024 * 1024
    auth_timeout: float = 30.0  # seconds for a peer to authenticate an inbound stream
    connect_timeout: float = 10.0  # seconds to make an outbound stream
    verify_timeout: float = 10.0  # seconds for a dialback verification
    tls: SSL.Context | None = None
    connections: set[Any] = field(default_factory=set)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.reload_tls()

    def reload_tls(self) -> None:
        """Build the TLS context from the certificate files (new connections use it)."""
        self.tls = s2s_context(self.cert_file, self.key_file, self.ca_file)

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        """Start a task this context owns."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("s2s task %s failed", task.get_name(), exc_info=task.exception())


class _Stream(Protocol):
    def receive_data(self, data: bytes) -> list[S2SEvent]: ...
    def data_to_send(self) -> list[bytes]: ...
    def close(self, condition: StreamCondition | None = None, text: str = "") -> None: ...
    @property
    def is_closed(self) -> bool: ...


class S2SConnectionBase(asyncio.Protocol):
    """Transport, TLS and output of one server stream (either direction)."""

    direction: Direction = "in"

    def __init__(self, ctx: S2SContext) -> None:
        self.ctx = ctx
        self.transport: asyncio.Transport | None = None
        self.remote_ip = ""
        self.tls: TlsEngine | None = None
        self.peer_cert: PeerCertificate | None = None
        self.is_closing = False
        self.is_reported = False  # the manager knows this link (established)
        self._queue: deque[Element] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._flush_handle: asyncio.Handle | None = None
        self._loop = asyncio.get_running_loop()

    @property
    def stream(self) -> _Stream:
        """The sans-IO stream (set by the subclass)."""
        raise NotImplementedError

    # -- asyncio protocol -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = self.transport.get_extra_info("peername")
        self.remote_ip = str(peer[0]) if peer else ""
        self.ctx.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self.is_closing:
            return
        if self.tls is None:
            self.feed(data)
            return
        self.tls.feed(data)
        try:
            if self.tls.is_handshaking:
                if not self.tls.handshake():
                    self._write_tls()
                    return
                self._write_tls()
                self.peer_cert = self.tls.peer()
                self.tls_done()
            plain, is_closed = self.tls.read()
        except TlsFailed as exc:
            log.info("s2s TLS with %s failed: %s", self.remote_ip, exc)
            self._write_tls()
            self.tls_failed(str(exc))
            self.abort()
            return
        self._write_tls()
        self.feed(plain)
        if is_closed and not self.is_closing:
            self.stream.close()
            self.close_transport()

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_closing = True
        self.ctx.connections.discard(self)
        self.lost()

    # -- hooks for the subclasses ---------------------------------------------

    def feed(self, data: bytes) -> None:
        """Plaintext of the stream."""
        raise NotImplementedError

    def tls_done(self) -> None:
        """The TLS handshake completed (``self.peer_cert`` is set)."""
        raise NotImplementedError

    def tls_failed(self, reason: str) -> None:
        """The TLS handshake failed."""

    def lost(self) -> None:
        """The connection is gone."""
        raise NotImplementedError

    async def handle_stanza(self, element: Element) -> None:
        """One inbound stanza, in order."""
        raise NotImplementedError

    # -- TLS --------------------------------------------------------------------

    def start_tls(self, *, server_side: bool, server_name: str | None = None) -> None:
        """Begin the handshake (after ``<proceed/>``, or at once for direct TLS)."""
        assert self.ctx.tls is not None
        self.tls = TlsEngine(self.ctx.tls, server_side=server_side, server_name=server_name)
        if not server_side:
            try:
                self.tls.handshake()
            except TlsFailed as exc:
                self.tls_failed(str(exc))
                self.abort()
                return
            self._write_tls()

    def _write_tls(self) -> None:
        if self.tls is None or self.transport is None or self.transport.is_closing():
            return
        data = self.tls.outgoing()
        if data:
            self.transport.write(data)

    # -- output -----------------------------------------------------------------

    def schedule_flush(self) -> None:
        """Write what the stream queued at the end of this loop iteration."""
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what the stream queued now."""
        self._flush_handle = None
        if self.transport is None or self.transport.is_closing():
            return
        data = b"".join(self.stream.data_to_send())
        if not data:
            return
        if self.tls is not None:
            if self.tls.is_handshaking:
                return
            self.tls.write(data)
            self._write_tls()
        else:
            self.transport.write(data)
        if self.transport.get_write_buffer_size() > self.ctx.max_send_buffer:
            log.warning("s2s: closing the stream to %s: the peer stopped reading", self.remote_ip)
            self.abort()

    def enqueue(self, element: Element) -> None:
        """Hand a stanza to the worker (in order)."""
        self._queue.append(element)
        if self._worker is None:
            self._worker = self.ctx.spawn(self._drain(), "s2s-worker")
        if len(self._queue) > 256 and self.transport is not None:
            self.transport.pause_reading()

    async def _drain(self) -> None:
        try:
            while self._queue and not self.is_closing:
                element = self._queue.popleft()
                try:
                    await self.handle_stanza(element)
                except Exception:  # supervisor: one bad stanza must not end the server
                    log.exception("error handling a stanza from %s", self.remote_ip)
                self.flush()
        finally:
            self._worker = None
            self._queue.clear() if self.is_closing else None
            if self.transport is not None and not self.is_closing:
                with contextlib.suppress(RuntimeError):
                    self.transport.resume_reading()

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        """Close the stream (with a stream error when ``condition``) and the connection."""
        self.stream.close(condition, text)
        self.flush()
        self.close_transport()

    def close_transport(self) -> None:
        """Close TLS and the socket after the queued output."""
        if self.is_closing:
            return
        self.is_closing = True
        if self.tls is not None and not self.tls.is_handshaking:
            self.tls.shutdown()
            self._write_tls()
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection at once."""
        self.is_closing = True
        if self.transport is not None:
            self.transport.abort()
