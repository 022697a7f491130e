"""A lean HTTP/2 client (RFC 9113) for the push providers: one TLS connection, many streams.

Why not httpx: a push is one small POST, and at a few hundred per alert the
per-request cost of a general client (its locks, its request and response
models, one socket write per frame) is the bottleneck. Here a request is a
few ``h2`` calls; the frames of every request made in the same event-loop
turn leave in one socket write, and the answers are matched to their
requests by stream id as they come in.

What it honours of the protocol: the peer's ``SETTINGS_MAX_CONCURRENT_STREAMS``
(requests beyond it wait for a stream to close; APNs starts low and raises
it), flow control both ways (request bodies wait for window; received data is
acknowledged at once), ``GOAWAY`` (no new streams on that connection; streams
the peer will not process fail and a new connection is opened for the next
request) and stream resets. A connection that breaks fails its open requests
with :class:`ConnectionError`; timeouts are the caller's (a cancelled request
resets its stream). Nothing here logs headers or bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """A complete answer: status, headers (lowercase names), body."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True, kw_only=True)
class _Stream:
    answer: asyncio.Future[Response]
    unsent: bytes = b""  # request body waiting for flow-control window
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)


def _consume(future: asyncio.Future[None]) -> None:
    """Mark a future's exception as seen (nobody may be waiting for it any more)."""
    if not future.cancelled():
        future.exception()


class StreamRefused(ConnectionError):
    """The peer did not process the request (GOAWAY beyond it, or REFUSED_STREAM)."""


class _Connection(asyncio.Protocol):
    """One HTTP/2 connection (client side), driven by the event loop."""

    def __init__(self, authority: str) -> None:
        self.authority = authority
        # Our own request headers are well-formed by construction: h2 need not check them
        # (that check is most of its cost per request).
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=True,
                header_encoding="utf-8",
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
            )
        )
        self.transport: asyncio.Transport | None = None
        self.is_usable = False  # connected, no GOAWAY, not lost
        self.streams: dict[int, _Stream] = {}
        self._room: deque[asyncio.Future[None]] = deque()  # requests waiting for a stream
        self._flush_pending = False
        # The peer's first SETTINGS (its stream limit): requests wait for it, so a burst on a
        # new connection does not exceed a limit the client has not heard yet.
        self.settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.settled.add_done_callback(_consume)

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.is_usable = True
        self.h2.initiate_connection()
        self.flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._fail(ConnectionError("HTTP/2 protocol error from the peer"))
            self.close()
            return
        for event in events:
            self._on_event(event)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_usable = False
        if not self.settled.done():
            self.settled.set_exception(ConnectionError("the connection was lost"))
        self._fail(ConnectionError("the connection was lost"))

    # -- requests -------------------------------------------------------------------------

    def has_room(self) -> bool:
        """Whether the peer's concurrent-stream limit allows one more request now."""
        if not self.is_usable:
            return False
        # self.streams holds exactly the streams h2 counts as open (a stream leaves it when
        # answered, reset or abandoned); h2's own count walks every stream each time.
        return len(self.streams) < self.h2.remote_settings.max_concurrent_streams

    def start(
        self, method: str, path: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> tuple[int, asyncio.Future[Response]]:
        """Open a stream for one request (written at the next flush); its id and answer."""
        stream_id = self.h2.get_next_available_stream_id()
        self.h2.send_headers(
            stream_id,
            [
                (":method", method),
                (":scheme", "https"),
                (":authority", self.authority),
                (":path", path),
                *headers,
            ],
            end_stream=not body,
        )
        stream = _Stream(answer=asyncio.get_running_loop().create_future(), unsent=body)
        self.streams[stream_id] = stream
        if body:
            self._send_body(stream_id, stream)
        return stream_id, stream.answer

    def abandon(self, stream_id: int) -> None:
        """The requester stopped waiting (a timeout): reset the stream if it is still open."""
        if self.streams.pop(stream_id, None) is not None and self.is_usable:
            with contextlib.suppress(h2.exceptions.H2Error):
                self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            self._schedule_flush()
        self._wake()

    async def request(
        self, method: str, path: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> Response:
        """Send one request and wait for its complete answer."""
        await self._stream_room()
        stream_id, answer = self.start(method, path, headers, body)
        self._schedule_flush()
        try:
            return await answer
        finally:
            self.abandon(stream_id)

    async def _stream_room(self) -> None:
        """Wait until the peer's concurrent-stream limit allows one more."""
        while True:
            if not self.is_usable:
                raise StreamRefused("the connection no longer takes requests")
            if self.has_room():
                return
            waiter = asyncio.get_running_loop().create_future()
            self._room.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._room:
                    self._room.remove(waiter)

    def _wake(self) -> None:
        """A stream closed or the limit rose: let the waiting requests look again."""
        while self._room:
            waiter = self._room.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _send_body(self, stream_id: int, stream: _Stream) -> None:
        """As much of the body as the flow-control window allows; the rest later."""
        while stream.unsent:
            window = min(
                self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size
            )
            if window <= 0:
                return
            chunk, stream.unsent = stream.unsent[:window], stream.unsent[window:]
            self.h2.send_data(stream_id, chunk, end_stream=not stream.unsent)

    # -- events ---------------------------------------------------------------------------

    def _on_event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            found = self.streams.get(event.stream_id)
            if found is not None:
                headers = {str(k): str(v) for k, v in event.headers or ()}
                found.status = int(headers.pop(":status", "0"))
                found.headers = headers
        elif isinstance(event, h2.events.DataReceived):
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            found = self.streams.get(event.stream_id)
            if found is not None:
                found.body.extend(event.data or b"")
        elif isinstance(event, h2.events.StreamEnded):
            self._answer(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self._reset(event.stream_id, event.error_code)
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            if not self.settled.done():
                self.settled.set_result(None)
            for stream_id, stream in list(self.streams.items()):
                if stream.unsent:
                    self._send_body(stream_id, stream)
            self._wake()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._goaway(event.last_stream_id)

    def _answer(self, stream_id: int) -> None:
        found = self.streams.pop(stream_id, None)
        if found is not None and found.unsent:
            # Answered before the whole body was sent: the rest is not wanted any more.
            found.unsent = b""
            with contextlib.suppress(h2.exceptions.H2Error):
                self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.NO_ERROR)
        if found is not None and not found.answer.done():
            found.answer.set_result(
                Response(status=found.status, headers=found.headers, body=bytes(found.body))
            )
        self._wake()

    def _reset(self, stream_id: int, code: object) -> None:
        found = self.streams.pop(stream_id, None)
        if found is not None and not found.answer.done():
            refused = code == h2.errors.ErrorCodes.REFUSED_STREAM
            error = StreamRefused if refused else ConnectionError
            found.answer.set_exception(error(f"stream reset by the peer ({code})"))
        self._wake()

    def _goaway(self, last_stream_id: int | None) -> None:
        """GOAWAY: no new streams here; those above ``last_stream_id`` were not processed."""
        self.is_usable = False
        last = last_stream_id if last_stream_id is not None else 0
        for stream_id in [s for s in self.streams if s > last]:
            found = self.streams.pop(stream_id)
            if not found.answer.done():
                found.answer.set_exception(StreamRefused("GOAWAY before this request"))
        self._wake()
        if not self.streams:
            self.close()

    def _fail(self, error: ConnectionError) -> None:
        streams, self.streams = self.streams, {}
        for found in streams.values():
            if not found.answer.done():
                found.answer.set_exception(error)
        self._wake()

    # -- output ---------------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        """Write at the end of this turn: the requests made meanwhile share one write."""
        if not self._flush_pending:
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write what h2 has to send now."""
        self._flush_pending = False
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        """Close the transport (open streams fail when it is lost)."""
        self.is_usable = False
        if self.transport is not None and not self.transport.is_closing():
            try:
                self.h2.close_connection()
                self.flush()
            except h2.exceptions.H2Error:
                pass
            self.transport.close()


#: One request of a batch: path, headers, body.
Request = tuple[str, Sequence[tuple[str, str]], bytes]


class H2Client:
    """Requests to one origin over one HTTP/2 connection, reopened when it goes away."""

    def __init__(self, base_url: str, tls: ssl.SSLContext) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("an https:// origin is required")
        self.host = parts.hostname
        self.port = parts.port or 443
        self.authority = parts.netloc
        tls.set_alpn_protocols(["h2"])
        self.tls = tls
        self._connection: _Connection | None = None
        self._connecting: asyncio.Lock | None = None
        self._old: set[_Connection] = set()  # after GOAWAY or replacement, until closed

    async def _usable(self) -> _Connection:
        current = self._connection
        if current is not None and current.is_usable:
            return current
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            current = self._connection
            if current is not None and current.is_usable:
                return current
            if current is not None:
                self._old.add(current)
            loop = asyncio.get_running_loop()
            transport, made = await loop.create_connection(
                lambda: _Connection(self.authority),
                self.host,
                self.port,
                ssl=self.tls,
                server_hostname=self.host,
            )
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
                made.settled.cancel()
                transport.close()
                raise ConnectionError("the server does not speak HTTP/2 (ALPN h2)")
            try:
                await made.settled
            except BaseException:
                made.close()
                raise
            self._connection = made
            self._old = {c for c in self._old if c.streams}
            return made

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Response:
        """One request; :class:`ConnectionError` (or OSError, ssl.SSLError) when it fails.

        A request the peer refused unprocessed (GOAWAY, REFUSED_STREAM) is tried once
        more on a new connection, as RFC 9113 §8.7 allows.
        """
        for attempt in (1, 2):
            connection = await self._usable()
            try:
                return await connection.request(method, path, headers, body)
            except StreamRefused:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def request_many(
        self, method: str, requests: Sequence[Request], *, timeout: float
    ) -> list[Response | Exception]:
        """Many requests at once, each answered or failed within ``timeout``.

        As many as the peer's stream limit allows are written in one go, before this
        coroutine first waits for anything (on an open connection); the rest follow as
        streams close. Per request: its :class:`Response`, or the exception
        (``TimeoutError``, ``ConnectionError``/``OSError``, ``ssl.SSLError``).
        """
        results: list[Response | Exception] = [TimeoutError()] * len(requests)
        try:
            async with asyncio.timeout(timeout):
                connection = await self._usable()
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            return [exc] * len(requests)
        started: dict[asyncio.Future[Response], tuple[int, int]] = {}  # answer → (index, id)
        later: list[int] = []
        for index, (path, headers, body) in enumerate(requests):
            if connection.has_room():
                stream_id, answer = connection.start(method, path, headers, body)
                started[answer] = (index, stream_id)
            else:
                later.append(index)
        connection.flush()

        async def one(index: int) -> None:
            path, headers, body = requests[index]
            try:
                async with asyncio.timeout(timeout):
                    results[index] = await self.request(method, path, headers=headers, body=body)
            except (TimeoutError, OSError, ssl.SSLError) as exc:
                results[index] = exc

        try:
            async with asyncio.TaskGroup() as rest:
                for index in later:
                    rest.create_task(one(index))
                if started:
                    done, _ = await asyncio.wait(started, timeout=timeout)
                    for answer in done:
                        failed = answer.exception()
                        results[started[answer][0]] = (
                            failed if isinstance(failed, Exception) else answer.result()
                        )
        finally:
            for answer, (_, stream_id) in started.items():
                if not answer.done():
                    connection.abandon(stream_id)  # timed out (its result says so)
        return results

    async def aclose(self) -> None:
        """Close every connection."""
        for connection in [*self._old, *([self._connection] if self._connection else [])]:
            connection.close()
        self._connection = None
        self._old.clear()
