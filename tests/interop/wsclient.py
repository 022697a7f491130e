"""An RFC 7395 (XMPP over WebSocket) test client on the `websockets` library."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Self
from xml.sax.saxutils import escape, quoteattr

from scramp import ScramClient
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.interop.rawclient import NS_BIND, NS_SASL, client_tls_context
from tests.serverproc import RunningServer

NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
TIMEOUT = 10.0


class WsXmpp:
    """One RFC 7395 connection: one XML element per WebSocket text message."""

    def __init__(self, ws: ClientConnection, domain: str) -> None:
        self.ws = ws
        self.domain = domain
        self.pending: list[str] = []  # received, not yet consumed
        self.log: list[str] = []  # everything received
        self.jid = ""
        self._n = 0

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, server: RunningServer, subprotocols: list[str] | None = None
    ) -> AsyncIterator[Self]:
        """Open wss://127.0.0.1:{https}/xmpp-websocket (subprotocol 'xmpp' unless told)."""
        url = f"wss://127.0.0.1:{server.ports['https']}/xmpp-websocket"
        async with connect(
            url,
            subprotocols=[
                Subprotocol(p) for p in (["xmpp"] if subprotocols is None else subprotocols)
            ],
            ssl=client_tls_context(),
            server_hostname=server.domain,
            proxy=None,
            open_timeout=TIMEOUT,
            close_timeout=5,
        ) as ws:
            yield cls(ws, server.domain)

    def next_id(self) -> str:
        self._n += 1
        return f"ws{self._n}"

    async def send(self, text: str) -> None:
        await asyncio.wait_for(self.ws.send(text), TIMEOUT)

    async def expect(self, pattern: str, timeout: float = TIMEOUT) -> str:
        """The first received message matching the regex ``pattern`` (others stay pending)."""
        rx = re.compile(pattern, re.S)

        async def loop() -> str:
            while True:
                for i, msg in enumerate(self.pending):
                    if rx.search(msg):
                        return self.pending.pop(i)
                received = await self.ws.recv()
                text = received if isinstance(received, str) else bytes(received).decode()
                self.log.append(text)
                self.pending.append(text)

        try:
            return await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            raise TimeoutError(f"no {pattern!r} within {timeout}s; received {self.log!r}") from None

    async def open(self) -> str:
        """Send <open/>; returns the features message."""
        await self.send(f"<open xmlns='{NS_FRAMING}' to='{self.domain}' version='1.0'/>")
        opened = await self.expect(r"^<open\b")
        assert NS_FRAMING in opened and "version" in opened, opened
        return await self.expect(r"<stream:features\b")

    async def auth(self, login: str, password: str, mechanism: str) -> str:
        """One SASL exchange; the <success/> or <failure/> message."""
        if mechanism == "PLAIN":
            token = base64.b64encode(f"\0{login}\0{password}".encode()).decode()
            await self.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>")
            return await self.expect(r"^<(success|failure)\b")
        scram = ScramClient([mechanism], login, password)
        first = base64.b64encode(scram.get_client_first().encode()).decode()
        await self.send(f"<auth xmlns='{NS_SASL}' mechanism='{mechanism}'>{first}</auth>")
        challenge = await self.expect(r"^<(challenge|failure)\b")
        m = re.search(r"<challenge[^>]*>([^<]+)</challenge>", challenge)
        assert m is not None, challenge
        scram.set_server_first(base64.b64decode(m.group(1)).decode())
        final = base64.b64encode(scram.get_client_final().encode()).decode()
        await self.send(f"<response xmlns='{NS_SASL}'>{final}</response>")
        result = await self.expect(r"^<(success|failure)\b")
        m = re.search(r"<success[^>]*>([^<]+)</success>", result)
        if m:
            scram.set_server_final(base64.b64decode(m.group(1)).decode())
        return result

    async def login(
        self, login: str, password: str, mechanism: str = "PLAIN", resource: str = ""
    ) -> str:
        """Open, authenticate, reopen and bind; returns the full JID."""
        features = await self.open()
        assert "<mechanisms" in features and f">{mechanism}<" in features, features
        assert "starttls" not in features, "WebSocket runs inside HTTPS: no STARTTLS"
        result = await self.auth(login, password, mechanism)
        assert result.startswith("<success"), result
        features = await self.open()
        assert "urn:ietf:params:xml:ns:xmpp-bind" in features, features
        iq_id = self.next_id()
        inner = f"<resource>{escape(resource)}</resource>" if resource else ""
        await self.send(
            f"<iq xmlns='jabber:client' type='set' id='{iq_id}'>"
            f"<bind xmlns='{NS_BIND}'>{inner}</bind></iq>"
        )
        reply = await self.expect(rf"<iq\b[^>]*\bid=[\"']{iq_id}[\"']")
        m = re.search(r"<jid>([^<]+)</jid>", reply)
        assert m is not None, reply
        self.jid = m.group(1)
        return self.jid

    async def message(self, to: str, body: str) -> None:
        await self.send(
            f"<message xmlns='jabber:client' to={quoteattr(to)} type='chat' id='{self.next_id()}'>"
            f"<body>{escape(body)}</body></message>"
        )

    async def iq(self, iq_type: str, payload: str, to: str | None = None) -> str:
        iq_id = self.next_id()
        to_attr = f" to={quoteattr(to)}" if to else ""
        await self.send(
            f"<iq xmlns='jabber:client' type='{iq_type}' id='{iq_id}'{to_attr}>{payload}</iq>"
        )
        return await self.expect(rf"^<iq\b[^>]*\bid=[\"']{iq_id}[\"']")

    async def close(self) -> None:
        """RFC 7395 §3.6: <close/>, the server's <close/>, then the WebSocket closes."""
        await self.send(f"<close xmlns='{NS_FRAMING}'/>")
        closing = await self.expect(r"^<close\b")
        assert NS_FRAMING in closing, closing
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Drain until the server closes the WebSocket (bounded)."""

        async def drain() -> None:
            try:
                while True:
                    msg = await self.ws.recv()
                    self.log.append(msg if isinstance(msg, str) else msg.decode())
            except ConnectionClosed:
                return

        await asyncio.wait_for(drain(), TIMEOUT)
