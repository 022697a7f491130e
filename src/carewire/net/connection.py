"""The connection pump: one TCP client connection, TLS in memory BIOs, the stream core.

Theory of operation: :class:`XmppConnection` is an asyncio protocol. Bytes
arrive in :meth:`data_received`; when TLS is active they go through an
``ssl.SSLObject`` over two ``MemoryBIO`` objects (so STARTTLS is a mode switch
and we control buffers). Plaintext feeds the sans-IO
:class:`~carewire.xmpp.stream.C2SStream`. Negotiation output (headers,
features, ``<proceed/>``) is written at once; events that need the kernel
(SASL, bind, stanzas) are queued and handled in order by a short-lived
worker task. Output is coalesced and flushed once per loop iteration.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import ssl
from typing import cast
from xml.etree.ElementTree import Element

from carewire import log as log_context
from carewire.core.c2s import ClientConnection, ConnectionInfo, stream_config
from carewire.core.sessions import Session
from carewire.net.context import NetContext
from carewire.xmpp.errors import RemoteProtocolError, StreamCondition
from carewire.xmpp.stream import C2SStream, Event, StartTlsRequested, StreamEnded, StreamStarted

log = logging.getLogger(__name__)


def _tune_socket(sock: socket.socket | None, net: NetContext) -> None:
    """TCP_NODELAY for latency; keepalive so half-open connections are noticed."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, net.limits.tcp_keepalive_idle)
            sock.setsockopt(
                socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, net.limits.tcp_keepalive_interval
            )
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, net.limits.tcp_keepalive_count)
    except OSError:  # pragma: no cover - platform specific
        pass


_connection_ids = itertools.count(1)


class XmppConnection(asyncio.Protocol):
    """One client connection (STARTTLS on 5222, or direct TLS on 5223)."""

    def __init__(self, net: NetContext, *, direct_tls: bool) -> None:
        self.net = net
        self.conn_id = f"c{next(_connection_ids)}"
        self.direct_tls = direct_tls
        self.transport: asyncio.Transport | None = None
        self.stream: C2SStream | None = None
        self.client: ClientConnection | None = None
        self.session: Session | None = None
        self._ssl: ssl.SSLObject | None = None
        self._in_bio: ssl.MemoryBIO | None = None
        self._out_bio: ssl.MemoryBIO | None = None
        self._is_handshaking = False
        # A list, not a deque: an empty deque keeps a 64-slot block (0.7 KiB per connection).
        self._queue: list[Event] = []
        self._worker: asyncio.Task[None] | None = None
        self._flush_handle: asyncio.Handle | None = None
        self._auth_timer: asyncio.TimerHandle | None = None
        # Reading pauses while stanzas pile up (backlog) or the client exceeds its rate.
        self._is_backlogged = False
        self._is_reading_paused = False
        self._throttle: asyncio.TimerHandle | None = None
        self._tokens = float(net.limits.read_burst)
        self._tokens_at = 0.0
        self._held = bytearray()  # received beyond the rate, processed as tokens refill
        self._is_closing = False
        self.remote_ip = ""
        self._is_counted = False  # in net.unauthenticated until bound or closed
        self.reads = 0  # stream reads so far (the idle sweep compares it between passes)
        # Protocol factories run inside the loop; looking it up per stanza is a syscall on 3.11.
        self._loop = asyncio.get_running_loop()

    # -- asyncio protocol -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        _tune_socket(self.transport.get_extra_info("socket"), self.net)
        peer = self.transport.get_extra_info("peername")
        self.remote_ip = str(peer[0]) if peer else ""
        log.debug("connection %s from %s", self.conn_id, self.remote_ip)
        if not self.net.admit(self.remote_ip):
            log.warning(
                "connection from %s refused: too many unauthenticated connections from there",
                self.remote_ip,
            )
            self._is_closing = True
            self.transport.abort()
            return
        self._is_counted = True
        info = ConnectionInfo(
            remote_ip=self.remote_ip,
            transport="c2s-tls" if self.direct_tls else "c2s",
            is_tls_active=self.direct_tls,
            channel_binding=self.net.channel_binding,
        )
        kernel = self.net.kernel
        self.stream = C2SStream(
            stream_config(
                kernel, info, allow_register=self.net.allow_register, limits=self.net.parser_limits
            )
        )
        self.client = ClientConnection(
            kernel=kernel,
            auth=self.net.auth,
            stream=self.stream,
            sink=self,
            info=info,
            fake_secret=self.net.fake_secret,
            on_bound=self._on_bound,
        )
        self.net.connections.add(self)
        self.net.start_idle_sweep()
        self._auth_timer = self._loop.call_later(self.net.limits.auth_timeout, self._auth_timed_out)
        if self.direct_tls:
            self._start_tls()

    def data_received(self, data: bytes) -> None:
        if self.net.limits.read_rate:
            if self._held:  # already over the rate: keep the order, wait for tokens
                self._held += data
                return
            allowed = self._take_tokens(len(data))
            if allowed < len(data):
                self._held += data[allowed:]
                data = data[:allowed]
                self._schedule_release()
            if not data:
                return
        self._process(data)

    def _process(self, data: bytes) -> None:
        if self.session is not None:
            self.session.data["last_active"] = self.net.kernel.clock.monotonic()
        if self._ssl is None:
            self._feed(data)
            return
        assert self._in_bio is not None
        self._in_bio.write(data)
        if self._is_handshaking and not self._handshake():
            return
        data, is_closed = self._read_tls()
        self._feed(data)  # what came with the peer's close_notify is handled before the close
        if is_closed:
            self._peer_closed_tls()

    def eof_received(self) -> bool | None:
        return False  # close the transport; connection_lost does the rest

    def connection_lost(self, exc: Exception | None) -> None:
        self._is_closing = True
        if self._auth_timer is not None:
            self._auth_timer.cancel()
        if self._throttle is not None:
            self._throttle.cancel()
            self._throttle = None
        self.net.connections.discard(self)
        self._uncount()
        if self.client is not None:
            self.net.spawn(self._finish(), "c2s-close")

    def _uncount(self) -> None:
        if self._is_counted:
            self._is_counted = False
            self.net.release(self.remote_ip)

    def pause_writing(self) -> None:
        """The kernel buffer is full; :meth:`_flush` enforces the hard bound."""

    def resume_writing(self) -> None:
        """Nothing to do: writes are never held back, only bounded."""

    # -- TLS ------------------------------------------------------------------

    def _start_tls(self) -> None:
        self._in_bio, self._out_bio = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._ssl = self.net.ssl_context.wrap_bio(self._in_bio, self._out_bio, server_side=True)
        self._is_handshaking = True

    def _handshake(self) -> bool:
        """Advance the TLS handshake; True once it is complete."""
        assert self._ssl is not None
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._write_tls_out()
            return False
        except (ssl.SSLError, OSError) as exc:
            log.info("TLS handshake with %s failed: %s", self.remote_ip, exc)
            self._write_tls_out()
            self._abort()
            return False
        self._is_handshaking = False
        self._write_tls_out()
        if not self.direct_tls and self.stream is not None:
            self.stream.tls_established()
        return True

    def _read_tls(self) -> tuple[bytes, bool]:
        """The plaintext available now, and whether the peer closed TLS after it."""
        assert self._ssl is not None
        chunks = []
        is_closed = False
        while True:
            try:
                chunk = self._ssl.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLError as exc:
                log.info("TLS error from %s: %s", self.remote_ip, exc)
                self._abort()
                break
            if not chunk:
                # CPython returns b"" (SSL_ERROR_ZERO_RETURN) on the peer's close_notify:
                # RFC 8446 §6.1, answer with ours and close.
                is_closed = True
                break
            chunks.append(chunk)
        self._write_tls_out()  # TLS 1.3 post-handshake messages, alerts
        return b"".join(chunks), is_closed

    def _peer_closed_tls(self) -> None:
        if self.stream is not None and not self.stream.is_closed:
            self._queue.append(StreamEnded())  # the session ends like a closed stream
            if self._worker is None:
                self._worker = self.net.spawn(self._drain(), "c2s-worker")
        else:
            self._close_transport()

    def compact(self) -> bool:
        """Free parser memory while idle (the idle sweep calls it; see NetContext)."""
        if self.stream is not None and not self._is_closing and not self._queue:
            return self.stream.compact()
        return False

    def _write_tls_out(self) -> None:
        assert self._out_bio is not None
        if self._out_bio.pending and self.transport is not None:
            self.transport.write(self._out_bio.read())

    # -- stream ---------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        if not data or self.stream is None or self._is_closing:
            return
        self.reads += 1
        for event in self.stream.receive_data(data):
            if isinstance(event, StreamStarted):
                continue
            if isinstance(event, StartTlsRequested):
                self._flush()  # <proceed/> goes out in plaintext, then we switch
                self._start_tls()
                continue
            if isinstance(event, StreamEnded):
                self._is_backlogged = True  # nothing more is read from this stream
            self._queue.append(event)
        self._flush()
        if self._queue and self._worker is None:
            self._worker = self.net.spawn(self._drain(), "c2s-worker")
        if len(self._queue) > self.net.limits.max_pending_events:
            self._is_backlogged = True
        self._sync_reading()

    async def _drain(self) -> None:
        assert self.client is not None
        log_context.connection_id.set(self.conn_id)  # this task's own context
        try:
            while self._queue:
                event = self._queue.pop(0)  # at most max_pending_events long
                try:
                    await self.client.handle(event)
                except RemoteProtocolError as err:
                    self.close(err.condition, err.text)
                except Exception:  # supervisor: one bad stanza must not kill the server
                    log.exception("error handling a stream event from %s", self.remote_ip)
                    self.close(StreamCondition.INTERNAL_SERVER_ERROR)
                self._flush()
                if isinstance(event, StreamEnded):
                    self._close_transport()
                    self._queue.clear()
        finally:
            self._worker = None
            if self.stream is not None and not self.stream.is_closed:
                self._is_backlogged = False
            self._sync_reading()

    # -- flow control -----------------------------------------------------------

    def _take_tokens(self, size: int) -> int:
        """Token bucket on received bytes: how many of ``size`` may be processed now."""
        rate = self.net.limits.read_rate
        now = self._loop.time()
        if self._tokens_at:
            refill = (now - self._tokens_at) * rate
            self._tokens = min(float(self.net.limits.read_burst), self._tokens + refill)
        self._tokens_at = now
        take = min(size, int(self._tokens))
        self._tokens -= take
        return max(take, 0)

    def _schedule_release(self) -> None:
        """Process held bytes in slices as the bucket refills; reading stays paused meanwhile."""
        rate = self.net.limits.read_rate
        wanted = min(len(self._held), max(4096, rate // 10))
        delay = max(0.0, (wanted - self._tokens) / rate)
        self._throttle = self._loop.call_later(delay, self._release)
        self._sync_reading()

    def _release(self) -> None:
        self._throttle = None
        if self._is_closing:
            self._held.clear()
            return
        take = self._take_tokens(len(self._held))
        chunk = bytes(self._held[:take])
        del self._held[:take]
        if chunk:
            self._process(chunk)
        if self._held:
            self._schedule_release()
        else:
            self._sync_reading()

    def _sync_reading(self) -> None:
        """Pause or resume the transport to match the backlog and throttle state."""
        want_paused = self._is_backlogged or self._throttle is not None
        if want_paused == self._is_reading_paused or self.transport is None:
            return
        if self._is_closing or self.transport.is_closing():
            return
        if want_paused:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()
        self._is_reading_paused = want_paused

    def _on_bound(self, session: Session) -> None:
        self.session = session
        session.data["last_active"] = self.net.kernel.clock.monotonic()
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None
        self._uncount()

    def _auth_timed_out(self) -> None:
        self._auth_timer = None
        if self.session is None:
            log.info("closing %s: not authenticated in time", self.remote_ip)
            self.close(StreamCondition.CONNECTION_TIMEOUT, "authenticate and bind sooner")

    async def _finish(self) -> None:
        assert self.client is not None
        await self.client.closed()

    # -- sink (used by the kernel's Session) -----------------------------------

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
        data = b"".join(chunks)
        if self._ssl is not None:
            if self._is_handshaking:
                return  # nothing may go out in plaintext once TLS has begun
            self._ssl.write(data)
            self._write_tls_out()
        else:
            self.transport.write(data)
        if self.transport.get_write_buffer_size() > self.net.limits.max_send_buffer:
            log.warning("closing %s: the client stopped reading", self.remote_ip)
            self._abort()

    def _close_transport(self) -> None:
        if self._is_closing:
            return
        self._is_closing = True
        if self._ssl is not None and not self._is_handshaking:
            with contextlib.suppress(ssl.SSLError):
                self._ssl.unwrap()
            self._write_tls_out()
        if self.transport is not None:
            self.transport.close()

    def _abort(self) -> None:
        self._is_closing = True
        if self.transport is not None:
            self.transport.abort()
