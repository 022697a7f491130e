"""The component listener and its connection pump (XEP-0114, on loopback port 5347 by default).

Theory of operation: :class:`ComponentConnection` is an asyncio protocol for
one external component's plain TCP stream (XEP-0114 has no TLS: the listener
binds to loopback unless the operator says otherwise). Bytes feed the sans-IO
:class:`~carewire.xmpp.component.ComponentStream`; its events are handled in
order by a short-lived worker task through the kernel's
:class:`~carewire.core.components.ComponentConnection`, and output is
coalesced and flushed once per loop iteration. Reading pauses while events
pile up; a component that does not finish its handshake in time, or stops
reading what we send, is cut off. Only its own stream ends: every other
stream (client or component) goes on.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, cast
from xml.etree.ElementTree import Element

from carewire import log as log_context
from carewire.core import components as kernel_side
from carewire.core.components import ComponentHub
from carewire.xmpp.component import ComponentEvent, ComponentStream, StreamEnded
from carewire.xmpp.errors import RemoteProtocolError, StreamCondition

log = logging.getLogger(__name__)

_connection_ids = itertools.count(1)


def _tune_socket(sock: socket.socket) -> None:
    """TCP_NODELAY for latency; keepalive so a component that died is let go (~90 s)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    except OSError:  # pragma: no cover - platform specific
        pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentLimits:
    """Per-connection bounds of component streams."""

    handshake_timeout: float = 30.0  # seconds from connecting to an accepted handshake
    max_send_buffer: int = 1024 * 1024  # a component that stops reading is cut off past this
    max_pending_events: int = 256  # stop reading while this many stanzas wait


@dataclass(slots=True, kw_only=True)
class ComponentNet:
    """What the component listener and its connections share."""

    hub: ComponentHub
    limits: ComponentLimits = field(default_factory=ComponentLimits)
    connections: set[ComponentConnection] = field(default_factory=set)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start a task this context owns (cancelled at shutdown)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())

    async def close_all(self, condition: StreamCondition, text: str = "") -> None:
        """Close every component stream and wait (bounded) for their kernel side to finish."""
        for conn in list(self.connections):
            conn.close(condition, text)
        for _ in range(100):  # the transports close, then their kernel side detaches and audits
            if not self.connections and not self.tasks:
                return
            await asyncio.sleep(0.02)
        for task in list(self.tasks):
            task.cancel()


class ComponentConnection(asyncio.Protocol):
    """One external component's connection."""

    def __init__(self, net: ComponentNet) -> None:
        self.net = net
        self.conn_id = f"k{next(_connection_ids)}"
        self.transport: asyncio.Transport | None = None
        self.stream: ComponentStream | None = None
        self.kernel: kernel_side.ComponentConnection | None = None
        self.remote_ip = ""
        self._queue: deque[ComponentEvent] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._flush_handle: asyncio.Handle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._is_paused = False
        self._is_closing = False
        self._loop = asyncio.get_running_loop()

    # -- asyncio protocol -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            _tune_socket(sock)
        peer = self.transport.get_extra_info("peername")
        self.remote_ip = str(peer[0]) if peer else ""
        self.kernel = self.net.hub.connection(self, remote_ip=self.remote_ip)
        self.stream = self.kernel.stream
        self.net.connections.add(self)
        self._timer = self._loop.call_later(self.net.limits.handshake_timeout, self._timed_out)
        log.debug("component connection %s from %s", self.conn_id, self.remote_ip)

    def data_received(self, data: bytes) -> None:
        if self.stream is None or self._is_closing:
            return
        for event in self.stream.receive_data(data):
            self._queue.append(event)
            if isinstance(event, StreamEnded):
                self._pause()  # nothing more is read from this stream
        self._flush()
        if self._queue and self._worker is None:
            self._worker = self.net.spawn(self._drain(), "component-worker")
        if len(self._queue) > self.net.limits.max_pending_events:
            self._pause()

    def eof_received(self) -> bool | None:
        return False  # close the transport; connection_lost does the rest

    def connection_lost(self, exc: Exception | None) -> None:
        self._is_closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.net.connections.discard(self)
        if self.kernel is not None:
            self.net.spawn(self.kernel.closed(), "component-close")

    # -- events ---------------------------------------------------------------

    async def _drain(self) -> None:
        assert self.kernel is not None and self.stream is not None
        log_context.connection_id.set(self.conn_id)  # this task's own context
        try:
            while self._queue:
                event = self._queue.popleft()
                try:
                    await self.kernel.handle(event)
                except RemoteProtocolError as err:
                    self.stream.close(err.condition, err.text)
                except Exception:  # supervisor: one bad stanza must not kill the server
                    log.exception("error handling a component stream event from %s", self.remote_ip)
                    self.stream.close(StreamCondition.INTERNAL_SERVER_ERROR)
                if self.kernel.is_attached and self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                self._flush()
                if self.stream.is_closed:
                    self._queue.clear()
                    self._close_transport()
        finally:
            self._worker = None
            if not self.stream.is_closed and self._is_paused:
                self._is_paused = False
                if self.transport is not None and not self.transport.is_closing():
                    self.transport.resume_reading()

    def _pause(self) -> None:
        if not self._is_paused and self.transport is not None and not self.transport.is_closing():
            self._is_paused = True
            self.transport.pause_reading()

    def _timed_out(self) -> None:
        self._timer = None
        if self.kernel is not None and not self.kernel.is_attached:
            log.info("closing component connection from %s: no handshake in time", self.remote_ip)
            self.close(StreamCondition.CONNECTION_TIMEOUT, "complete the handshake sooner")

    # -- port (used by the kernel side) ---------------------------------------

    def send_element(self, element: Element) -> None:
        """Queue a stanza; it is written at the end of this loop iteration."""
        if self._is_closing or self.stream is None:
            return
        self.stream.send_element(element)
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        """Close the stream (with a stream error if ``condition``) and the connection."""
        if self.stream is not None:
            self.stream.close(condition, text)
        self._flush()
        self._close_transport()

    def _flush(self) -> None:
        self._flush_handle = None
        if self.stream is None or self.transport is None or self.transport.is_closing():
            return
        chunks = self.stream.data_to_send()
        if not chunks:
            return
        self.transport.write(b"".join(chunks))
        if self.transport.get_write_buffer_size() > self.net.limits.max_send_buffer:
            log.warning("closing component connection from %s: it stopped reading", self.remote_ip)
            self._is_closing = True
            self.transport.abort()

    def _close_transport(self) -> None:
        if self._is_closing:
            return
        self._is_closing = True
        if self.transport is not None:
            self.transport.close()


async def listen_components(net: ComponentNet, host: str, port: int) -> asyncio.Server:
    """Start the component listener; ``port`` 0 picks a free port."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: ComponentConnection(net), host=host, port=port, reuse_address=True
    )
    bound = int(server.sockets[0].getsockname()[1])
    log.info(
        "listening for external components (XEP-0114) on %s:%d: %s",
        host,
        bound,
        ", ".join(sorted(net.hub.domains)),
    )
    return server
