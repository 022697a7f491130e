"""A small raw XMPP client for the integration tests: bytes in, text out, nothing hidden.

It speaks just enough of RFC 6120 to reach a bound session (stream header,
STARTTLS or direct TLS, SASL PLAIN / SCRAM / SCRAM-PLUS, resource binding)
and otherwise lets a test send arbitrary bytes and read what the server
answers with :meth:`RawClient.read_until`. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import contextlib
import itertools
import re
import socket
import ssl
from collections.abc import Callable
from typing import Literal, Self
from xml.sax.saxutils import escape, quoteattr

from scramp import ScramClient

HOST = "127.0.0.1"
DEFAULT_TIMEOUT = 10.0

NS_STREAM = "http://etherx.jabber.org/streams"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"

_SASL_END = re.compile(r"<(success|failure)\b[^>]*?(/>|>.*?</\1>)", re.S)
_BIND_RESULT = re.compile(r"<iq\b[^>]*>.*?</iq>", re.S)


def client_tls_context(*, max_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A client context for the test server's self-signed certificate (no verification)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if max_version is not None:
        # Old protocol versions are disabled by OpenSSL's default security level:
        # lower it so that it is the *server* that refuses them, not our own library.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = max_version
    return ctx


_open_clients: set[RawClient] = set()


async def close_leftover_clients() -> None:
    """Abort every client a test left open (a failed assertion skips its cleanup)."""
    for client in list(_open_clients):
        await client.aclose()


class StreamClosedError(AssertionError):
    """The server closed the connection before the expected text arrived."""


class RawClient:
    """One TCP (optionally TLS) connection to the server, driven by the test."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, domain: str
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.domain = domain
        self.buffer = ""  # received and not yet consumed by read_until
        self.transcript = ""  # everything received, for failure messages
        self.jid = ""
        self.is_eof = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._ids = itertools.count(1)
        _open_clients.add(self)

    # -- connecting ------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        port: int,
        *,
        domain: str,
        direct_tls: bool = False,
        tls_context: ssl.SSLContext | None = None,
        rcvbuf: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Self:
        """Open a TCP connection (and the TLS handshake at once when ``direct_tls``)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # Before connect(), so that the advertised TCP window stays small too.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(
                asyncio.get_running_loop().sock_connect(sock, (HOST, port)), timeout
            )
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    sock=sock,
                    ssl=(tls_context or client_tls_context()) if direct_tls else None,
                    server_hostname=domain if direct_tls else None,
                ),
                timeout,
            )
        except BaseException:
            sock.close()
            raise
        return cls(reader, writer, domain=domain)

    @classmethod
    async def login(
        cls,
        port: int,
        login: str,
        password: str,
        *,
        domain: str,
        resource: str | None = None,
        mechanism: str = "PLAIN",
        direct_tls: bool = False,
        rcvbuf: int | None = None,
    ) -> Self:
        """Connect, secure, authenticate and bind: a ready session."""
        client = await cls.connect(port, domain=domain, direct_tls=direct_tls, rcvbuf=rcvbuf)
        try:
            await client.open_stream()
            if not direct_tls:
                await client.starttls()
            reply = await client.authenticate(login, password, mechanism)
            assert reply.startswith("<success"), f"login of {login} failed: {reply}"
            await client.open_stream()
            client.jid = await client.bind(resource)
        except BaseException:
            await client.aclose()
            raise
        return client

    # -- I/O -------------------------------------------------------------------

    async def send(self, data: str | bytes) -> None:
        """Write raw bytes (str is UTF-8 encoded) and drain."""
        self.writer.write(data.encode("utf-8") if isinstance(data, str) else data)
        await asyncio.wait_for(self.writer.drain(), DEFAULT_TIMEOUT)

    async def _receive(self) -> bool:
        """Read one chunk into the buffer; False at end of stream."""
        try:
            chunk = await self.reader.read(65536)
        except (ConnectionError, ssl.SSLError):
            chunk = b""
        if not chunk:
            self.is_eof = True
            text = self._decoder.decode(b"", final=True)
        else:
            text = self._decoder.decode(chunk)
        self.buffer += text
        self.transcript += text
        return bool(chunk)

    async def read_until(
        self, pattern: str | re.Pattern[str], timeout: float = DEFAULT_TIMEOUT
    ) -> str:
        """Text received up to and including the first match of ``pattern`` (substring or regex).

        The rest stays buffered for the next call. Raises :class:`StreamClosedError`
        if the connection ends first and ``TimeoutError`` after ``timeout`` seconds.
        """
        find: Callable[[str], int]
        if isinstance(pattern, re.Pattern):

            def find(text: str) -> int:
                m = pattern.search(text)
                return m.end() if m else -1
        else:

            def find(text: str) -> int:
                i = text.find(pattern)
                return i + len(pattern) if i >= 0 else -1

        async def loop() -> str:
            while True:
                end = find(self.buffer)
                if end >= 0:
                    found, self.buffer = self.buffer[:end], self.buffer[end:]
                    return found
                if self.is_eof or not await self._receive():
                    end = find(self.buffer)
                    if end >= 0:
                        continue
                    raise StreamClosedError(
                        f"connection closed before {pattern!r}; "
                        f"received: {self.transcript[-3000:]!r}"
                    )

        try:
            return await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"no {pattern!r} within {timeout}s; received: {self.transcript[-3000:]!r}"
            ) from None

    async def read_until_closed(self, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Everything received until the server closes the connection."""

        async def loop() -> None:
            while not self.is_eof and await self._receive():
                pass

        try:
            await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"the server did not close within {timeout}s; received: {self.transcript[-3000:]!r}"
            ) from None
        found, self.buffer = self.buffer, ""
        return found

    async def aclose(self) -> None:
        """Drop the connection at once (TCP abort, no TLS close_notify: see :meth:`tls_close`)."""
        _open_clients.discard(self)
        self.writer.transport.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 2)

    async def tls_close(self, timeout: float = 5.0) -> None:
        """Close politely: TLS close_notify, then wait for the server's close (bounded)."""
        _open_clients.discard(self)
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), timeout)
        finally:
            self.writer.transport.abort()

    async def end_stream(self, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Close the stream politely (RFC 6120 §4.4) and wait for the server to close too."""
        await self.send("</stream:stream>")
        try:
            return await self.read_until_closed(timeout)
        finally:
            await self.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- negotiation -----------------------------------------------------------

    def next_id(self) -> str:
        """A fresh stanza id."""
        return f"t{next(self._ids)}"

    async def open_stream(self, *, to: str | None = None) -> str:
        """Send a stream header; returns the header and features the server answers with."""
        await self.send(
            "<?xml version='1.0'?>"
            f"<stream:stream xmlns='jabber:client' xmlns:stream='{NS_STREAM}' "
            f"to={quoteattr(to or self.domain)} version='1.0'>"
        )
        return await self.read_until("</stream:features>")

    async def starttls(self, *, context: ssl.SSLContext | None = None) -> str:
        """``<starttls/>``, the TLS handshake, and the new stream's features."""
        await self.send(f"<starttls xmlns='{NS_TLS}'/>")
        await self.read_until(re.compile(r"<proceed\b[^>]*/>"))
        await self.upgrade_tls(context)
        return await self.open_stream()

    async def upgrade_tls(self, context: ssl.SSLContext | None = None) -> None:
        """Run the TLS handshake on the open connection."""
        assert not self.buffer.strip(), f"plaintext left after <proceed/>: {self.buffer!r}"
        await asyncio.wait_for(
            self.writer.start_tls(context or client_tls_context(), server_hostname=self.domain),
            DEFAULT_TIMEOUT,
        )

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        """The TLS session, once there is one."""
        obj: ssl.SSLObject | None = self.writer.get_extra_info("ssl_object")
        return obj

    async def sasl_result(self) -> str:
        """The next ``<success/>`` or ``<failure/>`` element."""
        found = await self.read_until(_SASL_END)
        m = _SASL_END.search(found)
        assert m is not None
        return found[m.start() :]

    async def authenticate(self, login: str, password: str, mechanism: str = "PLAIN") -> str:
        """Run one SASL exchange; returns the ``<success/>`` or ``<failure/>`` element."""
        if mechanism == "PLAIN":
            return await self.auth_plain(login, password)
        return await self.auth_scram(login, password, mechanism)

    async def auth_plain(self, login: str, password: str) -> str:
        """SASL PLAIN (RFC 4616) with an initial response."""
        token = base64.b64encode(f"\0{login}\0{password}".encode()).decode()
        await self.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>")
        return await self.sasl_result()

    async def auth_scram(
        self,
        login: str,
        password: str,
        mechanism: str = "SCRAM-SHA-256",
        *,
        channel_binding: tuple[str, bytes | ssl.SSLObject] | Literal["auto"] | None = "auto",
    ) -> str:
        """SASL SCRAM (RFC 5802/7677), -PLUS with tls-server-end-point channel binding.

        ``channel_binding`` overrides the binding data: ``"auto"`` binds the -PLUS variants
        to this TLS session; binding data with a non-PLUS mechanism sends the GS2 flag 'y'.
        """
        binding: tuple[str, bytes | ssl.SSLObject] | None = None
        if channel_binding != "auto":
            binding = channel_binding
        elif mechanism.endswith("-PLUS"):
            assert self.ssl_object is not None
            binding = ("tls-server-end-point", self.ssl_object)
        scram = ScramClient([mechanism], login, password, channel_binding=binding)
        first = base64.b64encode(scram.get_client_first().encode()).decode()
        await self.send(f"<auth xmlns='{NS_SASL}' mechanism='{mechanism}'>{first}</auth>")
        found = await self.read_until(
            re.compile(r"</challenge>|<(success|failure)\b.*?(/>|</\1>)", re.S)
        )
        if "<challenge" not in found:
            return found[found.rindex("<success" if "<success" in found else "<failure") :]
        m = re.search(r"<challenge[^>]*>([^<]*)</challenge>", found)
        assert m is not None, found
        scram.set_server_first(base64.b64decode(m.group(1)).decode())
        final = base64.b64encode(scram.get_client_final().encode()).decode()
        await self.send(f"<response xmlns='{NS_SASL}'>{final}</response>")
        result = await self.sasl_result()
        if result.startswith("<success"):
            m = re.search(r"<success[^>]*>([^<]*)</success>", result)
            assert m is not None and m.group(1), f"SCRAM success without server-final: {result}"
            scram.set_server_final(base64.b64decode(m.group(1)).decode())  # verifies the server
        return result

    async def bind(self, resource: str | None = None) -> str:
        """Bind a resource; returns the full JID (AssertionError with the reply if refused)."""
        reply = await self.bind_raw(resource)
        m = re.search(r"<jid>([^<]+)</jid>", reply)
        assert m is not None, f"bind failed: {reply}"
        return m.group(1)

    async def bind_raw(self, resource: str | None = None) -> str:
        """Send a bind request; returns the ``<iq/>`` reply as text."""
        iq_id = self.next_id()
        inner = f"<resource>{escape(resource)}</resource>" if resource is not None else ""
        await self.send(f"<iq type='set' id='{iq_id}'><bind xmlns='{NS_BIND}'>{inner}</bind></iq>")
        return await self.read_iq_reply(iq_id)

    # -- stanzas ---------------------------------------------------------------

    async def read_iq_reply(self, iq_id: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """The result/error ``<iq/>`` with this id (anything before it is skipped)."""
        pattern = re.compile(
            rf"<iq\b(?=[^>]*\bid=['\"]{re.escape(iq_id)}['\"])(?=[^>]*\btype=['\"](?:result|error)['\"])"
            r"[^>]*?(/>|>.*?</iq>)",
            re.S,
        )
        found = await self.read_until(pattern, timeout)
        m = pattern.search(found)
        assert m is not None
        return m.group(0)

    async def iq(self, iq_type: str, payload: str, *, to: str | None = None) -> str:
        """Send an IQ and return its reply."""
        iq_id = self.next_id()
        to_attr = f" to={quoteattr(to)}" if to else ""
        await self.send(f"<iq type='{iq_type}' id='{iq_id}'{to_attr}>{payload}</iq>")
        return await self.read_iq_reply(iq_id)

    async def ping(self, to: str | None = None) -> str:
        """XEP-0199 ping (of the server by default); returns the reply."""
        return await self.iq("get", "<ping xmlns='urn:xmpp:ping'/>", to=to or self.domain)

    async def message(self, to: str, body: str, *, msg_type: str = "chat") -> None:
        """Send a message stanza."""
        await self.send(
            f"<message to={quoteattr(to)} type='{msg_type}' id='{self.next_id()}'>"
            f"<body>{escape(body)}</body></message>"
        )

    async def read_message(self, body: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Text received up to and including the message whose body is ``body``."""
        return await self.read_until(f"<body>{escape(body)}</body>", timeout)
