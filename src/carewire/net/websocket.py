"""XMPP over WebSocket (RFC 7395) on the HTTPS port at ``/xmpp-websocket``.

The same sans-IO stream core drives it, in WebSocket framing: one element
per message, ``<open/>``/``<close/>`` instead of the stream tags. TLS is the
HTTPS server's, so the stream starts at authentication.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from xml.etree.ElementTree import Element

from starlette.websockets import WebSocket, WebSocketDisconnect

from carewire import log as log_context
from carewire.core.c2s import ClientConnection, ConnectionInfo, stream_config
from carewire.core.sessions import Session
from carewire.net.context import NetContext
from carewire.xmpp.errors import RemoteProtocolError, StreamCondition
from carewire.xmpp.stream import C2SStream, Framing, StreamEnded

log = logging.getLogger(__name__)

SUBPROTOCOL = "xmpp"  # RFC 7395 §3.1
_ids = itertools.count(1)


class WebSocketSink:
    """Queues outbound messages for the connection's writer task."""

    def __init__(self, stream: C2SStream, net: NetContext) -> None:
        self.stream = stream
        self.net = net
        self.outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.is_closing = False

    def send_element(self, element: Element) -> None:
        self.stream.send_element(element)
        self.flush()

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        self.stream.close(condition, text)
        self.flush()
        self.is_closing = True
        self.outbox.put_nowait(None)

    def flush(self) -> None:
        for chunk in self.stream.data_to_send():
            self.outbox.put_nowait(chunk.decode("utf-8"))
        if self.outbox.qsize() > self.net.limits.max_pending_events * 16 and not self.is_closing:
            log.warning("closing a WebSocket client that stopped reading")
            self.is_closing = True
            self.outbox.put_nowait(None)


async def _writer(ws: WebSocket, sink: WebSocketSink) -> None:
    while True:
        item = await sink.outbox.get()
        if item is None:
            break
        await ws.send_text(item)
    with contextlib.suppress(Exception):
        await ws.close()


async def serve_websocket(ws: WebSocket, net: NetContext) -> None:
    """Run one XMPP-over-WebSocket connection to its end."""
    if SUBPROTOCOL not in ws.scope.get("subprotocols", []):
        await ws.close(code=1002, reason="the 'xmpp' sub-protocol is required (RFC 7395)")
        return
    client_addr = ws.client.host if ws.client else ""
    if not net.admit(client_addr):
        log.warning(
            "WebSocket from %s refused: too many unauthenticated connections from there",
            client_addr,
        )
        await ws.close(code=1008, reason="too many unauthenticated connections")
        return
    counted = [True]

    def bound(_session: Session) -> None:
        if counted.pop(0):
            net.release(client_addr)

    net.websockets += 1
    try:
        await _serve(ws, net, client_addr, bound)
    finally:
        net.websockets -= 1
        if counted:
            net.release(client_addr)


async def _serve(
    ws: WebSocket, net: NetContext, client_addr: str, on_bound: Callable[[Session], None]
) -> None:
    await ws.accept(subprotocol=SUBPROTOCOL)
    log_context.connection_id.set(f"ws{next(_ids)}")
    info = ConnectionInfo(
        remote_ip=client_addr, transport="websocket", framing=Framing.WEBSOCKET, is_tls_active=True
    )
    stream = C2SStream(
        stream_config(net.kernel, info, allow_register=net.allow_register, limits=net.parser_limits)
    )
    sink = WebSocketSink(stream, net)
    client = ClientConnection(
        kernel=net.kernel,
        auth=net.auth,
        stream=stream,
        sink=sink,
        info=info,
        fake_secret=net.fake_secret,
        on_bound=on_bound,
    )
    writer = net.spawn(_writer(ws, sink), "ws-writer")
    try:
        await _read_loop(ws, stream, sink, client, net)
    finally:
        await client.closed()
        if not sink.is_closing:
            sink.is_closing = True
            sink.outbox.put_nowait(None)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer, 5.0)


async def _read_loop(
    ws: WebSocket, stream: C2SStream, sink: WebSocketSink, client: ClientConnection, net: NetContext
) -> None:
    deadline = asyncio.get_running_loop().time() + net.limits.auth_timeout
    while not sink.is_closing:
        # Until bound, the connection has auth_timeout in all; afterwards the ping
        # feature watches idle sessions (as on TCP).
        timeout = None
        if client.session is None:
            timeout = max(0.0, deadline - asyncio.get_running_loop().time())
        try:
            message = await asyncio.wait_for(ws.receive(), timeout=timeout)
        except TimeoutError:
            sink.close(StreamCondition.CONNECTION_TIMEOUT, "authenticate and bind sooner")
            return
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("text") or message.get("bytes") or b""
        if client.session is not None:
            client.session.data["last_active"] = net.kernel.clock.monotonic()
        for event in stream.receive_message(data):
            try:
                await client.handle(event)
            except RemoteProtocolError as err:
                sink.close(err.condition, err.text)
            except (WebSocketDisconnect, asyncio.CancelledError):
                raise
            except Exception:  # supervisor
                log.exception("error handling a WebSocket stream event")
                sink.close(StreamCondition.INTERNAL_SERVER_ERROR)
            sink.flush()
            if isinstance(event, StreamEnded):
                sink.is_closing = True
                sink.outbox.put_nowait(None)
                return
        sink.flush()
