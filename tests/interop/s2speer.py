"""A raw XMPP server peer for the federation tests: it initiates a server stream byte by byte.

It does just enough of RFC 6120 / XEP-0178 to reach an authenticated stream
(header, STARTTLS with its own client certificate, SASL EXTERNAL, the optional
``<bidi/>`` of XEP-0288) and otherwise lets a test misbehave: send anything,
stop reading, or read what the server answers with :meth:`S2SPeer.read_until`.
Every wait is bounded. Much cheaper than a whole second server.
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import ssl
from pathlib import Path

HOST = "127.0.0.1"
TIMEOUT = 20.0
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"


_open: set[S2SPeer] = set()


def close_leftover_peers() -> None:
    """Abort every peer a test left open (a failed assertion skips its cleanup)."""
    for peer in list(_open):
        peer.close()


class S2SPeer:
    """One initiating server stream from ``domain`` to ``to``."""

    def __init__(self, domain: str, to: str) -> None:
        self.domain = domain
        self.to = to
        self.buffer = ""
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    @classmethod
    async def connect(
        cls, port: int, *, domain: str, to: str, recv_buffer: int | None = None
    ) -> S2SPeer:
        """A TCP connection and our first header; the server's features are in :attr:`buffer`."""
        peer = cls(domain, to)
        sock = socket.socket()
        if recv_buffer is not None:  # a small window makes a peer that stops reading cheap
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, recv_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (HOST, port))
        peer.reader, peer.writer = await asyncio.open_connection(sock=sock)
        _open.add(peer)
        await peer.header()
        return peer

    async def header(self) -> str:
        """Send our stream header; return the server's features."""
        self.buffer = ""
        await self.send(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
            "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
            f"from='{self.domain}' to='{self.to}' version='1.0'>"
        )
        return await self.read_until(r"</stream:features>|<stream:features/>|</stream:stream>")

    async def starttls(self, cert_file: Path | None, key_file: Path | None) -> str:
        """STARTTLS with our certificate (none: no client certificate); the new features."""
        await self.send(f"<starttls xmlns='{NS_TLS}'/>")
        await self.read_until(r"<proceed[^>]*/>")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if cert_file is not None and key_file is not None:
            ctx.load_cert_chain(cert_file, key_file)
        assert self.writer is not None
        await self.writer.start_tls(ctx, server_hostname=self.to)
        return await self.header()

    async def external(self, *, bidi: bool = True) -> str:
        """SASL EXTERNAL for our domain; on success the restarted stream's features."""
        if bidi:
            await self.send("<bidi xmlns='urn:xmpp:bidi'/>")
        authzid = base64.b64encode(self.domain.encode()).decode()
        await self.send(f"<auth xmlns='{NS_SASL}' mechanism='EXTERNAL'>{authzid}</auth>")
        answer = await self.read_until(r"<success[^>]*/>|</failure>|</stream:stream>")
        if "<success" not in answer:
            return answer
        return await self.header()

    async def send(self, text: str | bytes) -> None:
        assert self.writer is not None
        self.writer.write(text.encode() if isinstance(text, str) else text)
        await self.writer.drain()

    async def message(self, frm: str, to: str, body: str) -> None:
        await self.send(
            f"<message from='{frm}' to='{to}' type='chat'><body>{body}</body></message>"
        )

    async def read_until(self, pattern: str, timeout: float = TIMEOUT) -> str:
        """Read until ``pattern`` matches what arrived since the last match; return that text."""
        assert self.reader is not None
        async with asyncio.timeout(timeout):
            while True:
                m = re.search(pattern, self.buffer, re.S)
                if m:
                    text, self.buffer = self.buffer[: m.end()], self.buffer[m.end() :]
                    return text
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise EOFError(f"closed before {pattern!r}; got {self.buffer!r}")
                self.buffer += chunk.decode(errors="replace")

    async def closed_with(self, timeout: float = TIMEOUT) -> str:
        """Everything until the server closes the stream (a stream error, if any, is in it)."""
        text = await self.read_until(r"</stream:stream>", timeout)
        return text

    def close(self) -> None:
        _open.discard(self)
        if self.writer is not None:
            self.writer.transport.abort()
            self.writer = None
