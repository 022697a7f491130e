"""MLLP, the Minimal Lower Layer Protocol of HL7 v2 (HL7 v2.5 Appendix C, release 2).

Theory of operation: a block is ``<VT> message <FS><CR>`` (0x0B, the HL7
message, 0x1C 0x0D). :class:`MllpFramer` is the sans-IO core: it takes bytes as
they arrive and returns the complete messages, in order, without the framing
bytes. Its states and moves are data (``TRANSITIONS``); any byte that no
transition allows raises :class:`MllpFramingError` and leaves the framer in its
terminal ``FAILED`` state, because after broken framing nothing later on the
stream can be trusted to start at a message boundary.

Between blocks we tolerate CR and LF (senders that end a block with ``<FS><CR><LF>``
exist); any other byte outside a block is an error.

:func:`serve_mllp` runs the listener around it: one task per connection (owned
by a :class:`ConnectionSet`), messages of a connection handled strictly in order
(original-mode acknowledgement: the sender waits for each ACK), every read
bounded by the idle timeout and every write by a write timeout. Bad input closes
that one connection; the listener never stops for it. :func:`send_mllp` is the
small client for outbound messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import NoReturn

from carewire.adapters.hl7 import ack
from carewire.adapters.hl7.errors import (
    LocalProtocolError,
    MllpFramingError,
    MllpOversizeError,
)
from carewire.clock import Clock, SystemClock

log = logging.getLogger(__name__)

START_BLOCK = 0x0B
END_BLOCK = 0x1C
CARRIAGE_RETURN = 0x0D
LINE_FEED = 0x0A

DEFAULT_MAX_MESSAGE = 1024 * 1024
DEFAULT_IDLE_TIMEOUT = 300.0
DEFAULT_WRITE_TIMEOUT = 30.0
_HEAD_LIMIT = 4096
_READ_SIZE = 65536

Handler = Callable[[bytes], Awaitable[bytes]]


class FramerState(Enum):
    """Where the framer is in the byte stream."""

    IDLE = "idle"  # between blocks
    BLOCK = "block"  # inside a block, collecting the message
    END = "end"  # read <FS>, waiting for <CR>
    FAILED = "failed"  # terminal: framing was broken


# (state, byte class) → next state. Byte classes: "start", "end", "cr", "lf", "other".
TRANSITIONS: dict[tuple[FramerState, str], FramerState] = {
    (FramerState.IDLE, "start"): FramerState.BLOCK,
    (FramerState.IDLE, "cr"): FramerState.IDLE,
    (FramerState.IDLE, "lf"): FramerState.IDLE,
    (FramerState.BLOCK, "end"): FramerState.END,
    (FramerState.BLOCK, "cr"): FramerState.BLOCK,
    (FramerState.BLOCK, "lf"): FramerState.BLOCK,
    (FramerState.BLOCK, "other"): FramerState.BLOCK,
    (FramerState.END, "cr"): FramerState.IDLE,
}

_BYTE_CLASS = {START_BLOCK: "start", END_BLOCK: "end", CARRIAGE_RETURN: "cr", LINE_FEED: "lf"}


def frame(message: bytes) -> bytes:
    """Wrap one HL7 message in an MLLP block."""
    return b"\x0b" + message + b"\x1c\x0d"


class MllpFramer:
    """Sans-IO MLLP deframer: bytes in, complete messages out.

    Args:
        max_message: The largest message (without framing bytes) accepted.
    """

    def __init__(self, *, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.max_message = max_message
        self.state = FramerState.IDLE
        self._buffer = bytearray()

    @property
    def is_idle(self) -> bool:
        """No partial block is pending (a clean place for the peer to close)."""
        return self.state is FramerState.IDLE

    frame = staticmethod(frame)

    def feed(self, data: bytes) -> list[bytes]:
        """Take the next bytes of the stream; return the messages they complete.

        Raises:
            MllpFramingError: The bytes break the framing (its ``completed`` holds
                the messages finished before the error).
            MllpOversizeError: A block passed ``max_message`` bytes.
            LocalProtocolError: The framer already failed.
        """
        if self.state is FramerState.FAILED:
            raise LocalProtocolError("the MLLP framer failed earlier; open a new connection")
        out: list[bytes] = []
        pos, size = 0, len(data)
        while pos < size:
            if self.state is FramerState.BLOCK:
                pos = self._collect(data, pos, out)
                continue
            cls = _BYTE_CLASS.get(data[pos], "other")
            nxt = TRANSITIONS.get((self.state, cls))
            if nxt is None:
                self._fail(out, f"byte 0x{data[pos]:02x} not allowed {self._where()}")
            if self.state is FramerState.END:
                out.append(bytes(self._buffer))
                self._buffer.clear()
            self.state = nxt
            pos += 1
        return out

    def _collect(self, data: bytes, pos: int, out: list[bytes]) -> int:
        """Copy message bytes up to the next <FS>; return where to continue."""
        end = data.find(b"\x1c", pos)
        stop = len(data) if end < 0 else end
        chunk = data[pos:stop]
        if b"\x0b" in chunk:
            self._fail(out, "a start block byte inside a block")
        if len(self._buffer) + len(chunk) > self.max_message:
            head = bytes(self._buffer[:_HEAD_LIMIT] + chunk[:_HEAD_LIMIT])[:_HEAD_LIMIT]
            self.state = FramerState.FAILED
            self._buffer.clear()
            raise MllpOversizeError(
                f"message larger than {self.max_message} bytes",
                head=head.split(b"\r", 1)[0],
                completed=out,
            )
        self._buffer += chunk
        if end < 0:
            return stop
        self.state = FramerState.END
        return end + 1

    def _where(self) -> str:
        return "between blocks" if self.state is FramerState.IDLE else "after the end block byte"

    def _fail(self, out: list[bytes], reason: str) -> NoReturn:
        self.state = FramerState.FAILED
        self._buffer.clear()
        raise MllpFramingError(f"MLLP framing: {reason}", completed=out)


@dataclass(slots=True, kw_only=True)
class MllpCounters:
    """What a listener has seen since it started (read by health, REST and console)."""

    connections: int = 0
    open_connections: int = 0
    messages: int = 0
    acked_aa: int = 0
    acked_ae: int = 0
    acked_ar: int = 0
    framing_errors: int = 0
    oversize: int = 0
    last_message_at: datetime | None = None

    def as_dict(self) -> dict[str, int | str | None]:
        """The counters as JSON-ready values (``last_message_at`` in ISO 8601)."""
        return {
            "connections": self.connections,
            "open_connections": self.open_connections,
            "messages": self.messages,
            "acked_aa": self.acked_aa,
            "acked_ae": self.acked_ae,
            "acked_ar": self.acked_ar,
            "framing_errors": self.framing_errors,
            "oversize": self.oversize,
            "last_message_at": (self.last_message_at.isoformat() if self.last_message_at else None),
        }

    def count_ack(self, reply: bytes) -> None:
        """Count an acknowledgement we sent by its MSA-1 code."""
        code = ack.ack_code(reply)
        if code is ack.AckCode.AA:
            self.acked_aa += 1
        elif code is ack.AckCode.AE:
            self.acked_ae += 1
        elif code is ack.AckCode.AR:
            self.acked_ar += 1


@dataclass(slots=True)
class ConnectionSet:
    """Owner of a listener's connection tasks, so stopping it ends them all."""

    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def close_all(self, timeout: float = 5.0) -> None:
        """Cancel every open connection and wait (bounded) for them to end."""
        tasks = [t for t in self.tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Conn:
    handler: Handler
    counters: MllpCounters
    clock: Clock
    max_message: int
    idle_timeout: float
    write_timeout: float


async def serve_mllp(
    handler: Handler,
    *,
    host: str,
    port: int,
    counters: MllpCounters,
    ssl_context: ssl.SSLContext | None = None,
    max_message: int = DEFAULT_MAX_MESSAGE,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    write_timeout: float = DEFAULT_WRITE_TIMEOUT,
    connections: ConnectionSet | None = None,
    clock: Clock | None = None,
) -> asyncio.Server:
    """Listen for MLLP connections; ``handler`` turns each message into its ACK.

    ``port`` 0 picks a free port (read it from ``server.sockets``). Stop with
    :func:`close_mllp` (``server.close()`` alone leaves open connections running).
    """
    conn = _Conn(
        handler=handler,
        counters=counters,
        clock=clock or SystemClock(),
        max_message=max_message,
        idle_timeout=idle_timeout,
        write_timeout=write_timeout,
    )
    owner = connections if connections is not None else ConnectionSet()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            owner.tasks.add(task)
        try:
            await _serve_connection(conn, reader, writer)
        except asyncio.CancelledError:
            # The owner ended the connection (close_mllp); the stream's done
            # callback would log a cancelled task as an error.
            log.debug("MLLP connection cancelled by its owner")
        finally:
            if task is not None:
                owner.tasks.discard(task)

    return await asyncio.start_server(
        on_connect, host=host, port=port, ssl=ssl_context, reuse_address=True, limit=_READ_SIZE
    )


async def close_mllp(server: asyncio.Server, connections: ConnectionSet) -> None:
    """Stop accepting, then end the open connections."""
    server.close()
    await connections.close_all()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.wait_closed(), timeout=5.0)


async def _serve_connection(
    conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """One connection: read blocks, answer each in order, until EOF, idle or bad framing."""
    counters = conn.counters
    counters.connections += 1
    counters.open_connections += 1
    peer = writer.get_extra_info("peername")
    framer = MllpFramer(max_message=conn.max_message)
    try:
        while True:
            try:
                async with asyncio.timeout(conn.idle_timeout):
                    data = await reader.read(_READ_SIZE)
            except TimeoutError:
                log.info("MLLP connection from %s idle for %.0f s: closed", peer, conn.idle_timeout)
                return
            if not data:
                return
            if not await _handle_bytes(conn, framer, data, writer, peer):
                return
    except (ConnectionError, TimeoutError) as exc:
        log.info("MLLP connection from %s ended: %s", peer, type(exc).__name__)
    finally:
        counters.open_connections -= 1
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), timeout=conn.write_timeout)


async def _handle_bytes(
    conn: _Conn, framer: MllpFramer, data: bytes, writer: asyncio.StreamWriter, peer: object
) -> bool:
    """Feed a read to the framer and answer what it completes; False closes the connection."""
    try:
        messages = framer.feed(data)
    except MllpFramingError as exc:
        for message in exc.completed:
            await _answer(conn, message, writer)
        conn.counters.framing_errors += 1
        log.warning("MLLP connection from %s: %s; closing it", peer, exc.message)
        if isinstance(exc, MllpOversizeError):
            conn.counters.oversize += 1
            await _reject_oversize(conn, exc, writer)
        return False
    for message in messages:
        await _answer(conn, message, writer)
    return True


async def _answer(conn: _Conn, message: bytes, writer: asyncio.StreamWriter) -> None:
    """Hand one message to the handler and write its ACK (original mode: in order)."""
    conn.counters.messages += 1
    conn.counters.last_message_at = conn.clock.now()
    try:
        reply = await conn.handler(message)
    except Exception:  # the connection pump is a supervisor: a bug answers AE, not a crash
        log.exception("the MLLP handler failed")
        reply = ack.reject_unreadable(
            message, code=ack.AckCode.AE, reason="internal error", now=conn.clock.now()
        )
    await _write(conn, writer, reply)


async def _reject_oversize(
    conn: _Conn, exc: MllpOversizeError, writer: asyncio.StreamWriter
) -> None:
    """Answer AR to an oversize message when its MSH can be read."""
    if not exc.head.startswith(b"MSH"):
        return
    reply = ack.reject_unreadable(
        exc.head,
        code=ack.AckCode.AR,
        reason=f"message larger than {conn.max_message} bytes",
        now=conn.clock.now(),
    )
    with contextlib.suppress(ConnectionError, TimeoutError):
        await _write(conn, writer, reply)


async def _write(conn: _Conn, writer: asyncio.StreamWriter, reply: bytes) -> None:
    writer.write(frame(reply))
    async with asyncio.timeout(conn.write_timeout):
        await writer.drain()
    conn.counters.count_ack(reply)


async def send_mllp(
    message: bytes,
    *,
    host: str,
    port: int,
    timeout: float,
    ssl_context: ssl.SSLContext | None = None,
    max_message: int = DEFAULT_MAX_MESSAGE,
) -> bytes:
    """Send one message in its own connection and return the peer's reply (its ACK).

    Raises:
        TimeoutError: No complete reply within ``timeout`` seconds (connect included).
        ConnectionError: The peer closed before replying.
        MllpFramingError: The reply broke the framing.
    """
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port, ssl=ssl_context)
        try:
            writer.write(frame(message))
            await writer.drain()
            framer = MllpFramer(max_message=max_message)
            while True:
                data = await reader.read(_READ_SIZE)
                if not data:
                    raise ConnectionError("the MLLP peer closed before replying")
                replies = framer.feed(data)
                if replies:
                    return replies[0]
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
