"""MLLP framing (sans-IO) and the listener and client over a real socket."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import hl7
import pytest
from hl7.client import MLLPClient

from carewire.adapters.hl7 import ack
from carewire.adapters.hl7.errors import (
    LocalProtocolError,
    MllpFramingError,
    MllpOversizeError,
)
from carewire.adapters.hl7.message import read_header
from carewire.adapters.hl7.mllp import (
    ConnectionSet,
    FramerState,
    MllpCounters,
    MllpFramer,
    close_mllp,
    frame,
    send_mllp,
    serve_mllp,
)
from carewire.clock import FakeClock

MSG = b"MSH|^~\\&|ADT1|HOSP|CW|CW|20260301080000||ADT^A01^ADT_A01|M1|P|2.5\rEVN|A01\r"
MSG2 = MSG.replace(b"|M1|", b"|M2|")
NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def test_one_block_in_one_read() -> None:
    assert MllpFramer().feed(frame(MSG)) == [MSG]


def test_two_blocks_in_one_read_come_out_in_order() -> None:
    assert MllpFramer().feed(frame(MSG) + frame(MSG2)) == [MSG, MSG2]


def test_a_block_split_at_every_byte() -> None:
    framer = MllpFramer()
    data = frame(MSG) + frame(MSG2)
    out: list[bytes] = []
    for i in range(len(data)):
        out += framer.feed(data[i : i + 1])
    assert out == [MSG, MSG2]
    assert framer.is_idle


def test_the_end_bytes_split_across_reads() -> None:
    framer = MllpFramer()
    assert framer.feed(b"\x0b" + MSG + b"\x1c") == []
    assert framer.state is FramerState.END
    assert framer.feed(b"\r") == [MSG]


def test_crlf_between_blocks_is_tolerated() -> None:
    assert MllpFramer().feed(frame(MSG) + b"\n" + frame(MSG2) + b"\r\n") == [MSG, MSG2]


def test_bytes_outside_a_block_fail_and_the_framer_stays_failed() -> None:
    framer = MllpFramer()
    with pytest.raises(MllpFramingError) as info:
        framer.feed(frame(MSG) + b"MSH|oops")
    assert info.value.completed == [MSG]
    assert framer.state is FramerState.FAILED
    with pytest.raises(LocalProtocolError):
        framer.feed(frame(MSG))


def test_a_start_byte_inside_a_block_fails() -> None:
    with pytest.raises(MllpFramingError, match="start block"):
        MllpFramer().feed(b"\x0bMSH|^~\\&\x0bMSH|" + b"\x1c\r")


def test_end_byte_not_followed_by_cr_fails() -> None:
    with pytest.raises(MllpFramingError, match="after the end block"):
        MllpFramer().feed(b"\x0b" + MSG + b"\x1cX")


def test_an_oversize_block_fails_with_its_header() -> None:
    framer = MllpFramer(max_message=100)
    with pytest.raises(MllpOversizeError) as info:
        framer.feed(b"\x0b" + MSG + b"OBX|" + b"x" * 200)
    assert info.value.head == MSG.split(b"\r")[0]
    assert framer.state is FramerState.FAILED


def test_a_block_of_exactly_max_message_is_accepted() -> None:
    assert MllpFramer(max_message=len(MSG)).feed(frame(MSG)) == [MSG]


def test_counters_as_dict() -> None:
    counters = MllpCounters(messages=3, last_message_at=NOW)
    counters.count_ack(ack.build_ack(read_header(MSG), ack.AckCode.AE, now=NOW))
    assert counters.as_dict() == {
        "connections": 0,
        "open_connections": 0,
        "messages": 3,
        "acked_aa": 0,
        "acked_ae": 1,
        "acked_ar": 0,
        "framing_errors": 0,
        "oversize": 0,
        "last_message_at": "2026-03-01T08:00:00+00:00",
    }


async def _echo_aa(message: bytes) -> bytes:
    return ack.build_ack(read_header(message), ack.AckCode.AA, now=NOW)


async def _listener(
    counters: MllpCounters, connections: ConnectionSet, *, max_message: int = 4096
) -> tuple[asyncio.Server, int]:
    server = await serve_mllp(
        _echo_aa,
        host="127.0.0.1",
        port=0,
        counters=counters,
        connections=connections,
        max_message=max_message,
        idle_timeout=5.0,
        clock=FakeClock(NOW),
    )
    return server, int(server.sockets[0].getsockname()[1])


async def test_real_socket_hl7_client_bad_framing_and_our_client() -> None:
    counters, connections = MllpCounters(), ConnectionSet()
    server, port = await _listener(counters, connections, max_message=1000)
    try:
        # The hl7 package's blocking MLLP client, two messages on one connection.
        def send_two() -> list[str]:
            with MLLPClient("127.0.0.1", port) as client:
                return [client.send_message(MSG), client.send_message(MSG2)]

        replies = await asyncio.to_thread(send_two)
        assert [str(hl7.parse(r).segment("MSA")(2)) for r in replies] == ["M1", "M2"]
        # Garbage outside a block: the connection is closed, the listener stays up.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""
        writer.close()
        # Oversize with a readable MSH: AR, then closed.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x0b" + MSG + b"x" * 2000)
        data = await asyncio.wait_for(reader.read(), timeout=5)
        assert ack.ack_code(MllpFramer().feed(data)[0]) is ack.AckCode.AR
        writer.close()
        reply = await send_mllp(MSG, host="127.0.0.1", port=port, timeout=5)
        assert ack.ack_code(reply) is ack.AckCode.AA
    finally:
        await close_mllp(server, connections)
    assert counters.messages == 3
    assert (counters.acked_aa, counters.acked_ar) == (3, 1)
    assert (counters.framing_errors, counters.oversize) == (2, 1)
    assert counters.connections == 4
    assert counters.open_connections == 0
    assert counters.last_message_at == NOW


async def test_close_ends_open_connections() -> None:
    counters, connections = MllpCounters(), ConnectionSet()
    server, port = await _listener(counters, connections)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\x0b" + MSG)  # half a block: the connection waits for the rest
    await writer.drain()
    for _ in range(100):
        if counters.open_connections:
            break
        await asyncio.sleep(0.01)
    await close_mllp(server, connections)
    # Closed with our half block unread, the kernel may answer RST instead of FIN.
    with contextlib.suppress(ConnectionResetError):
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""
    assert counters.open_connections == 0
    writer.close()


async def test_a_handler_bug_answers_ae_and_the_connection_goes_on() -> None:
    async def broken(message: bytes) -> bytes:
        if b"|M1|" in message:
            raise RuntimeError("bug")
        return await _echo_aa(message)

    counters, connections = MllpCounters(), ConnectionSet()
    server = await serve_mllp(
        broken, host="127.0.0.1", port=0, counters=counters, connections=connections
    )
    port = int(server.sockets[0].getsockname()[1])
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame(MSG) + frame(MSG2))
        framer, replies = MllpFramer(), list[bytes]()
        while len(replies) < 2:
            replies += framer.feed(await asyncio.wait_for(reader.read(4096), timeout=5))
        assert [ack.ack_code(r) for r in replies] == [ack.AckCode.AE, ack.AckCode.AA]
        writer.close()
    finally:
        await close_mllp(server, connections)
