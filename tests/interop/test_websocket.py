"""XMPP over WebSocket (RFC 7395) with the `websockets` library, talking to TCP clients."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

import pytest
from slixmpp import JID
from websockets.exceptions import InvalidHandshake, InvalidStatus

from tests.interop.slix import SlixClient
from tests.interop.wsclient import WsXmpp
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-1"])
async def test_websocket_chat_with_tcp_client(
    server: RunningServer, slix: Callable[..., Awaitable[SlixClient]], mechanism: str
) -> None:
    """A WebSocket session logs in, chats with a slixmpp (TCP) user both ways and closes cleanly."""
    ws_login, ws_pw = server.account()
    tcp_login, tcp_pw = server.account()
    tcp = await slix(server, tcp_login, tcp_pw, resource="tcp")
    async with WsXmpp.connect(server) as ws:
        jid = await ws.login(ws_login, ws_pw, mechanism, resource="browser")
        assert jid == f"{ws_login}@{server.domain}/browser"
        assert ws.ws.subprotocol == "xmpp"

        body = f"from the browser {uuid.uuid4().hex[:6]}"
        await ws.message(str(tcp.jid), body)
        msg = await tcp.next(tcp.messages)
        assert msg["body"] == body and str(msg["from"]) == jid, msg

        reply = f"from tcp {uuid.uuid4().hex[:6]}"
        tcp.xmpp.send_message(mto=JID(jid), mbody=reply, mtype="chat")
        got = await ws.expect(rf"<body>{re.escape(reply)}</body>")
        assert got.startswith("<message") and "jabber:client" in got, got

        # Bare-JID delivery to the WebSocket session once it is available (its only resource).
        await ws.send("<presence xmlns='jabber:client'/>")
        await ws.expect(r"^<presence\b")  # our own presence, reflected (RFC 6121 §4.2.2)
        tcp.xmpp.send_message(mto=JID(f"{ws_login}@{server.domain}"), mbody="to-bare", mtype="chat")
        await ws.expect(r"<body>to-bare</body>")

        pong = await ws.iq("get", "<ping xmlns='urn:xmpp:ping'/>", to=server.domain)
        assert 'type="result"' in pong or "type='result'" in pong, pong
        await ws.close()
    await tcp.disconnect()


async def test_websocket_wrong_password(server: RunningServer) -> None:
    """A wrong password over WebSocket is <not-authorized/>; the right one then works."""
    login, password = server.account()
    async with WsXmpp.connect(server) as ws:
        await ws.open()
        failure = await ws.auth(login, password + "-wrong", "PLAIN")
        assert failure.startswith("<failure") and "<not-authorized" in failure, failure
        assert (await ws.auth(login, password, "SCRAM-SHA-256")).startswith("<success")
        await ws.close()


@pytest.mark.parametrize("subprotocols", [[], ["chat"]], ids=["none", "other"])
async def test_handshake_without_xmpp_subprotocol_is_refused(
    server: RunningServer, subprotocols: list[str]
) -> None:
    """RFC 7395 §3.1: a handshake that does not offer the 'xmpp' subprotocol is refused."""
    with pytest.raises(InvalidHandshake) as info:
        async with WsXmpp.connect(server, subprotocols=subprotocols):
            pass
    if isinstance(info.value, InvalidStatus):
        assert info.value.response.status_code >= 400, info.value


async def test_websocket_malformed_xml_gets_stream_error(server: RunningServer) -> None:
    """A message that is not one well-formed element gets a stream error, then <close/>."""
    login, password = server.account()
    async with WsXmpp.connect(server) as ws:
        await ws.login(login, password)
        await ws.send("<message xmlns='jabber:client'><body>oops</message>")
        error = await ws.expect(r"<stream:error\b")
        assert "not-well-formed" in error, error
        await ws.expect(r"^<close\b")
        await ws.wait_closed()


async def test_websocket_stanza_before_auth_is_refused(server: RunningServer) -> None:
    """A message before authentication over WebSocket ends the stream with <not-authorized/>."""
    async with WsXmpp.connect(server) as ws:
        await ws.open()
        await ws.message(f"someone@{server.domain}", "sneaky")
        error = await ws.expect(r"<stream:error\b")
        assert "not-authorized" in error, error
        await ws.wait_closed()
