"""The connection pump: real sockets on 127.0.0.1, TLS in memory BIOs, flow control, closing.

Each test serves a real kernel (SQLite stores, the c2s, message and ping
features) through :class:`XmppConnection` listeners on ports the system
picks, and drives them with the raw test client: bytes in, text out.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.assembly import Options, open_core
from carewire.clock import FakeClock
from carewire.core import hook_names as H
from carewire.core.accounts import AccountInput
from carewire.core.auth import Authenticator, LoginAuditor
from carewire.core.events import StanzaEvent
from carewire.core.kernel import Kernel
from carewire.core.sessions import Session
from carewire.net.connection import XmppConnection
from carewire.net.context import NetContext, NetLimits
from carewire.net.listeners import bound_port, listen_c2s
from carewire.net.tls import server_context, tls_server_end_point
from carewire.security.certificates import create_self_signed
from carewire.xmpp import ns
from carewire.xmpp.errors import StreamCondition
from carewire.xmpp.jid import JID
from carewire.xmpp.parser import parse_document
from tests.interop.rawclient import RawClient, client_tls_context, close_leftover_clients

DOMAIN = "example.test"
PASSWORD = "wonderland"
PING = "<ping xmlns='urn:xmpp:ping'/>"


def x(xml: str) -> Element:
    """A stanza written in a test (``jabber:client`` is the default namespace)."""
    return parse_document(f"<stream xmlns='{ns.CLIENT}'>{xml}</stream>")[0]


@dataclass(eq=False)
class Served:
    """A kernel behind a STARTTLS and a direct-TLS listener."""

    kernel: Kernel
    clock: FakeClock
    net: NetContext
    starttls_port: int
    tls_port: int

    def connection(self) -> XmppConnection:
        """The one open connection of the test."""
        (conn,) = self.net.connections
        assert isinstance(conn, XmppConnection)
        return conn

    def session(self, login: str = "alice") -> Session:
        """The one bound session of ``login``."""
        (session,) = self.kernel.sessions.of_user(login)
        return session

    async def login(self, *, direct_tls: bool = False, rcvbuf: int | None = None) -> RawClient:
        """A bound session of alice."""
        port = self.tls_port if direct_tls else self.starttls_port
        return await RawClient.login(
            port, "alice", PASSWORD, domain=DOMAIN, direct_tls=direct_tls, rcvbuf=rcvbuf
        )

    async def connect(self, *, direct_tls: bool = False) -> RawClient:
        """A connection, nothing sent yet."""
        port = self.tls_port if direct_tls else self.starttls_port
        return await RawClient.connect(port, domain=DOMAIN, direct_tls=direct_tls)


Serve = Callable[..., Awaitable[Served]]


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (bounded) until ``condition()`` holds: the server acts in its own tasks."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def _is_idle(net: NetContext) -> Callable[[], bool]:
    return lambda: not net.connections and not net.tasks


def record_reading(conn: XmppConnection, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every pause_reading/resume_reading the connection asks of its (real) transport."""
    assert conn.transport is not None
    calls: list[str] = []
    pause, resume = conn.transport.pause_reading, conn.transport.resume_reading

    def record_pause() -> None:
        calls.append("pause")
        pause()

    def record_resume() -> None:
        calls.append("resume")
        resume()

    monkeypatch.setattr(conn.transport, "pause_reading", record_pause)
    monkeypatch.setattr(conn.transport, "resume_reading", record_resume)
    return calls


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    """``await serve(limits)``: start the listeners (stopped, and connections aborted, after)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}"
    clock = FakeClock()
    core = await open_core(Options(url=url, domain=DOMAIN, clock=clock))
    core.load_features(["c2s", "message", "ping"])
    db, stores, kernel = core.db, core.stores, core.kernel
    await kernel.hooks.fire(H.SERVER_STARTED, None)
    await kernel.accounts.create(AccountInput(login="alice", password=PASSWORD))
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    create_self_signed(DOMAIN, cert, key)
    listeners: list[asyncio.Server] = []
    nets: list[NetContext] = []

    async def start(limits: NetLimits | None = None) -> Served:
        net = NetContext(
            kernel=kernel,
            auth=Authenticator(stores, clock, LoginAuditor(stores)),
            ssl_context=server_context(cert, key),
            channel_binding=tls_server_end_point(cert),
            fake_secret=b"s" * 32,
            limits=limits or NetLimits(),
        )
        nets.append(net)
        plain = await listen_c2s(net, "127.0.0.1", 0, direct_tls=False)
        listeners.append(plain)
        direct = await listen_c2s(net, "127.0.0.1", 0, direct_tls=True)
        listeners.append(direct)
        return Served(
            kernel=kernel,
            clock=clock,
            net=net,
            starttls_port=bound_port(plain),
            tls_port=bound_port(direct),
        )

    try:
        yield start
    finally:
        await close_leftover_clients()
        for listener in listeners:
            listener.close()
        for net in nets:
            for conn in list(net.connections):
                conn.close()
        for net in nets:
            await eventually(_is_idle(net))
        for listener in listeners:
            await listener.wait_closed()
        await kernel.hooks.fire(H.SERVER_STOPPING, None)
        await db.close()


# -- TLS and STARTTLS ------------------------------------------------------------


async def test_starttls_is_required_and_switches_the_connection_to_tls(serve: Serve) -> None:
    served = await serve()
    client = await served.connect()
    features = await client.open_stream()
    assert re.search(r"<starttls [^>]*><required ?/></starttls>", features)
    assert "mechanisms" not in features
    after = await client.starttls()
    assert client.ssl_object is not None
    assert client.ssl_object.version() in ("TLSv1.2", "TLSv1.3")
    # The stream restarted over TLS: now authentication is offered, STARTTLS no longer.
    assert "<mechanisms" in after and "starttls" not in after
    conn = served.connection()
    assert conn.stream is not None and conn.stream.is_tls_active
    assert (await client.authenticate("alice", PASSWORD)).startswith("<success")
    await client.open_stream()
    assert await client.bind("desk") == f"alice@{DOMAIN}/desk"
    assert 'type="result"' in await client.ping()
    session = served.session()
    assert (session.transport, session.remote_ip) == ("c2s", "127.0.0.1")
    await client.aclose()


async def test_bytes_after_starttls_are_never_read_as_plaintext(serve: Serve) -> None:
    served = await serve()
    client = await served.connect()
    await client.open_stream()
    # A man in the middle appends a plaintext login to the client's <starttls/>.
    await client.send(
        f"<starttls xmlns='{ns.TLS}'/>"
        f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>AGFsaWNlAHdvbmRlcmxhbmQ=</auth>"
    )
    await client.read_until("<proceed")
    await client.read_until("/>")
    await client.upgrade_tls()  # asserts that nothing but <proceed/> came in plaintext
    features = await client.open_stream()
    assert "<mechanisms" in features  # still not authenticated
    stream = served.connection().stream
    assert stream is not None and stream.authenticated_as is None
    await client.aclose()


async def test_direct_tls_serves_a_tls_stream_from_the_first_byte(serve: Serve) -> None:
    served = await serve()
    client = await served.connect(direct_tls=True)
    assert client.ssl_object is not None
    features = await client.open_stream()
    assert "<mechanisms" in features and "starttls" not in features
    assert (await client.authenticate("alice", PASSWORD)).startswith("<success")
    await client.open_stream()
    await client.bind("phone")
    assert 'type="result"' in await client.ping()
    assert served.session().transport == "c2s-tls"
    await client.aclose()


async def test_a_failed_tls_handshake_aborts_the_connection(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    served = await serve()
    # Plaintext XMPP to the direct-TLS port.
    reader, writer = await asyncio.open_connection("127.0.0.1", served.tls_port)
    with caplog.at_level(logging.INFO, logger="carewire.net.connection"):
        writer.write(b"<?xml version='1.0'?><stream:stream to='example.test' version='1.0'>")
        received = await asyncio.wait_for(_read_to_eof(reader), 5)
        await eventually(lambda: not served.net.connections)
    writer.close()
    assert b"stream" not in received  # not one plaintext byte in answer
    assert "TLS handshake with 127.0.0.1 failed" in caplog.text


async def _read_to_eof(reader: asyncio.StreamReader) -> bytes:
    data = b""
    try:
        while chunk := await reader.read(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


async def test_sockets_are_tuned_for_latency_and_dead_peers(serve: Serve) -> None:
    limits = NetLimits(tcp_keepalive_idle=42)
    served = await serve(limits)
    client = await served.connect()
    await client.open_stream()
    conn = served.connection()
    assert conn.transport is not None
    sock = conn.transport.get_extra_info("socket")
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
    if hasattr(socket, "TCP_KEEPIDLE"):
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 42
    assert conn.remote_ip == "127.0.0.1"
    await client.aclose()


# -- output -------------------------------------------------------------------------


async def test_stanzas_sent_in_one_loop_iteration_are_written_at_once(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = await serve()
    client = await served.login()
    conn, session = served.connection(), served.session()
    assert conn.transport is not None
    writes: list[bytes] = []
    write = conn.transport.write

    def counting_write(data: bytes | bytearray | memoryview) -> None:
        writes.append(bytes(data))
        write(data)

    monkeypatch.setattr(conn.transport, "write", counting_write)
    for n in range(3):
        session.send(x(f"<message type='chat' id='c{n}'><body>coalesced {n}</body></message>"))
    assert writes == []  # nothing is written while the loop iteration runs
    await asyncio.sleep(0)
    assert len(writes) == 1
    received = await client.read_until("coalesced 2</body>")
    assert received.index("coalesced 0") < received.index("coalesced 1")
    await client.aclose()


async def test_a_client_that_stops_reading_is_cut_off(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    served = await serve(NetLimits(max_send_buffer=64 * 1024))
    client = await served.login(rcvbuf=4096)  # and it never reads again
    conn, session = served.connection(), served.session()
    assert conn.transport is not None
    conn.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    body = "z" * 8192
    with caplog.at_level(logging.WARNING, logger="carewire.net.connection"):
        for n in range(2000):  # 16 MB at most; the limit is 64 KB past the kernel buffers
            if conn.transport.is_closing():
                break
            session.send(x(f"<message type='chat' id='f{n}'><body>{body}</body></message>"))
            await asyncio.sleep(0)
        assert conn.transport.is_closing(), "the send buffer grew without bound"
        await eventually(lambda: not served.kernel.sessions.of_user("alice"))
    assert n * len(body) < 8 * 1024 * 1024
    assert "the client stopped reading" in caplog.text
    await client.aclose()


# -- input ---------------------------------------------------------------------------


async def test_reading_is_throttled_to_the_rate_and_nothing_is_lost(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    rate, burst = 100_000, 8_192
    served = await serve(NetLimits(read_rate=rate, read_burst=burst))
    client = await served.login()
    conn = served.connection()
    assert conn.transport is not None
    pauses = record_reading(conn, monkeypatch)
    body = "y" * 2000
    flood = "".join(
        f"<message to='{client.jid}' type='chat' id='m{n}'><body>{n}:{body}</body></message>"
        for n in range(30)
    )
    started = time.monotonic()
    await client.send(flood + f"<iq type='get' id='last' to='{DOMAIN}'>{PING}</iq>")
    received = await client.read_until(re.compile(r'<iq [^>]*id="last"'), timeout=20)
    elapsed = time.monotonic() - started
    minimum = (len(flood) - burst) / rate
    assert elapsed >= minimum * 0.8, f"not throttled: {elapsed:.2f}s < {minimum:.2f}s"
    # Every message was processed, in order, before the IQ sent after them.
    assert re.findall(r"<body>(\d+):", received) == [str(n) for n in range(30)]
    assert pauses[0] == "pause" and pauses[-1] == "resume"
    assert conn.transport.is_reading()
    await client.aclose()


async def test_a_backlog_of_stanzas_pauses_reading_until_it_is_handled(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = await serve(NetLimits(max_pending_events=2, read_rate=0))
    client = await served.login()
    conn = served.connection()
    assert conn.transport is not None
    pauses = record_reading(conn, monkeypatch)
    await client.send(
        "".join(f"<iq type='get' id='b{n}' to='{DOMAIN}'>{PING}</iq>" for n in range(20))
    )
    received = await client.read_until(re.compile(r'<iq [^>]*id="b19"'))
    assert re.findall(r'id="(b\d+)"', received) == [f"b{n}" for n in range(20)]
    assert pauses[:2] == ["pause", "resume"]
    assert conn.transport.is_reading()
    await client.aclose()


async def test_activity_is_stamped_on_the_session(serve: Serve) -> None:
    served = await serve()
    client = await served.login()
    session = served.session()
    bound_at = session.data["last_active"]
    served.clock.advance(30)
    await client.ping()
    assert session.data["last_active"] == bound_at + 30
    await client.aclose()


# -- closing ---------------------------------------------------------------------------


async def test_close_with_a_stream_error_ends_stream_and_session(serve: Serve) -> None:
    served = await serve()
    client = await served.login()
    served.connection().close(StreamCondition.SYSTEM_SHUTDOWN, "maintenance")
    rest = await client.read_until_closed()
    assert re.search(
        r"<stream:error><system-shutdown [^>]*/><text [^>]*>maintenance</text></stream:error>"
        r"</stream:stream>$",
        rest,
    )
    await eventually(lambda: not served.net.connections)
    await eventually(lambda: not served.kernel.sessions.of_user("alice"))
    await client.aclose()


async def test_the_clients_closing_tag_is_answered_and_the_session_ends(serve: Serve) -> None:
    served = await serve()
    client = await served.login()
    assert (await client.end_stream()).endswith("</stream:stream>")
    await eventually(lambda: not served.kernel.sessions.of_user("alice"))
    assert not served.net.connections


async def test_tls_close_notify_from_the_client_ends_the_session(serve: Serve) -> None:
    served = await serve()
    client = await served.login(direct_tls=True)
    assert served.kernel.sessions.of_user("alice")
    await client.tls_close()
    await eventually(lambda: not served.kernel.sessions.of_user("alice"))
    await eventually(lambda: not served.net.connections)


class BioClient:
    """A direct-TLS client on memory BIOs: the test decides what each TCP write holds."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = client_tls_context().wrap_bio(self._in, self._out, server_hostname=DOMAIN)
        self.text = ""
        self._loop = asyncio.get_running_loop()

    async def _flush(self) -> None:
        if self._out.pending:
            await self._loop.sock_sendall(self.sock, self._out.read())

    async def _receive(self) -> None:
        data = await asyncio.wait_for(self._loop.sock_recv(self.sock, 65536), 10)
        assert data, f"the server closed the connection; received: {self.text!r}"
        self._in.write(data)

    async def handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._flush()
                await self._receive()
        await self._flush()

    async def send(self, text: str) -> None:
        self.tls.write(text.encode())
        await self._flush()

    async def read_until(self, text: str) -> None:
        while text not in self.text:
            try:
                self.text += self.tls.read(65536).decode()
            except ssl.SSLWantReadError:
                await self._receive()
        self.text = self.text[self.text.index(text) + len(text) :]

    async def login(self) -> None:
        header = (
            f"<stream:stream xmlns='{ns.CLIENT}' xmlns:stream='{ns.STREAM}' "
            f"to='{DOMAIN}' version='1.0'>"
        )
        await self.send(header)
        await self.read_until("</stream:features>")
        token = base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode()
        await self.send(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{token}</auth>")
        await self.read_until("<success")
        await self.send(header)
        await self.read_until("</stream:features>")
        await self.send(f"<iq type='set' id='b'><bind xmlns='{ns.BIND}'/></iq>")
        await self.read_until("</iq>")

    async def send_then_close_notify(self, text: str) -> None:
        """``text`` and the TLS close_notify in one TCP write."""
        self.tls.write(text.encode())
        with contextlib.suppress(ssl.SSLWantReadError):  # the server's close_notify: not awaited
            self.tls.unwrap()
        await self._flush()


@dataclass(eq=False)
class BobSink:
    """Bob's session, bound without a connection: what he receives."""

    bodies: list[str | None] = field(default_factory=list)

    def send_element(self, element: Element) -> None:
        self.bodies.append(element.findtext(f"{{{ns.CLIENT}}}body"))

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        """Nothing to close."""


async def test_stanzas_that_arrive_with_the_close_notify_are_handled(serve: Serve) -> None:
    served = await serve()
    bob = BobSink()
    served.kernel.sessions.add(Session(jid=JID.parse(f"bob@{DOMAIN}/desk"), sink=bob))
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", served.tls_port))
        client = BioClient(sock)
        await client.handshake()
        await client.login()
        # RFC 8446 §6.1: data sent before close_notify is data; the stream just ends after it.
        await client.send_then_close_notify(
            f"<message to='bob@{DOMAIN}/desk' type='chat'><body>last words</body></message>"
        )
        await eventually(lambda: not served.kernel.sessions.of_user("alice"))
    finally:
        sock.close()
    assert bob.bodies == ["last words"]


async def test_malformed_xml_is_a_stream_error(serve: Serve) -> None:
    served = await serve()
    client = await served.login()
    await client.send("<message><body>oops</message>")
    rest = await client.read_until_closed()
    assert re.search(r"<stream:error><(not-well-formed|invalid-xml) ", rest)
    await eventually(lambda: not served.kernel.sessions.of_user("alice"))


async def test_a_crash_while_handling_a_stanza_is_an_internal_server_error(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    served = await serve()

    def crash(event: StanzaEvent) -> bool:
        raise RuntimeError("a bug in a feature")

    served.kernel.hooks.on(H.PRE_MESSAGE, crash)
    client = await served.login()
    with caplog.at_level(logging.ERROR, logger="carewire.net.connection"):
        await client.message(f"bob@{DOMAIN}", "hello")
        rest = await client.read_until_closed()
    assert "<stream:error><internal-server-error " in rest
    assert "error handling a stream event from 127.0.0.1" in caplog.text
    # The server is still serving.
    other = await served.login()
    assert 'type="result"' in await other.ping()
    await other.aclose()


async def test_a_client_that_does_not_authenticate_in_time_is_closed(serve: Serve) -> None:
    served = await serve(NetLimits(auth_timeout=1.0))
    prompt = await served.login()  # bound in time: its timer is cancelled
    idle = await served.connect()  # connected later, so its deadline is the later one
    await idle.open_stream()
    rest = await idle.read_until_closed()
    assert "<connection-timeout " in rest and "authenticate and bind sooner" in rest
    assert 'type="result"' in await prompt.ping()
    await prompt.aclose()
    await idle.aclose()


async def test_an_idle_connection_frees_its_parser_and_reads_on_as_before(serve: Serve) -> None:
    served = await serve(NetLimits(idle_compact_after=0.05))
    client = await served.login()
    conn = served.connection()
    assert conn.stream is not None
    parser = conn.stream._reader._parser  # what the sweep frees
    await eventually(lambda: parser._p is None)  # idle for a whole period: compacted
    # The client goes on: a ping over the revived parser is answered.
    assert 'type="result"' in await client.ping()
    assert conn.reads > 0
    await eventually(lambda: parser._p is None)  # and idle again later
    assert 'type="result"' in await client.ping()
    await client.aclose()


async def test_heap_pages_go_back_after_enough_parsers_were_compacted(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    trims: list[int] = []
    monkeypatch.setattr("carewire.net.context.give_back_memory", lambda: trims.append(1))
    limits = NetLimits(idle_compact_after=0.05, trim_after_compactions=2, trim_every=3600.0)
    served = await serve(limits)
    first = await served.login()
    parser = served.connection().stream._reader._parser  # type: ignore[union-attr]
    await eventually(lambda: parser._p is None)
    await asyncio.sleep(0.2)  # several more passes: one compacted parser is not worth a trim
    assert trims == []
    second = await served.login()
    await eventually(lambda: len(trims) == 1)  # the second one makes two: the heap is trimmed
    assert 'type="result"' in await first.ping()
    await first.aclose()
    await second.aclose()
