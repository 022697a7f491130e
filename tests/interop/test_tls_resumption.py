"""TLS session resumption on c2s (docs/sasl2.md, "Reconnecting"), over real sockets.

A reconnecting phone resumes the TLS session of its previous connection (a
TLS 1.3 session ticket: no certificate, no signature) and signs in with its
FAST token in the same reconnect. These tests check that the server issues a
ticket on direct TLS and after STARTTLS, accepts it on the next connection,
that a FAST login with channel binding works on the resumed session, and
that TLS 1.2 clients resume too.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import socket
import ssl
import uuid

import pytest
from scramp import ScramClient

from tests.interop.rawclient import client_tls_context
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop

SASL2 = "urn:xmpp:sasl:2"
FAST = "urn:xmpp:fast:0"
TIMEOUT = 10.0
_SASL2_END = re.compile(rb"<(success|failure|challenge)\b.*?</\1>", re.S)
_FEATURES_END = re.compile(rb"</stream:features>")
_PROCEED = re.compile(rb"<proceed\b[^>]*/>")


def _header(domain: str) -> bytes:
    return (
        f"<?xml version='1.0'?><stream:stream to='{domain}' version='1.0' "
        "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    ).encode()


def _read_until(sock: socket.socket | ssl.SSLSocket, pattern: re.Pattern[bytes]) -> bytes:
    """Read until ``pattern`` matches what arrived (blocking, bounded by the socket timeout)."""
    data = b""
    while pattern.search(data) is None:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection; received: {data[-500:]!r}"
        data += chunk
    return data


def _open(
    server: RunningServer,
    ctx: ssl.SSLContext,
    session: ssl.SSLSession | None,
    *,
    starttls: bool,
) -> tuple[ssl.SSLSocket, bytes]:
    """A TLS stream up to its features (direct TLS, or STARTTLS on the plain port).

    The features arrive after the server's TLS 1.3 ticket, so the socket's
    ``session`` holds the ticket when this returns.
    """
    port = server.ports["c2s" if starttls else "c2s_tls"]
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        if starttls:
            sock.sendall(_header(server.domain))
            _read_until(sock, _FEATURES_END)
            sock.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            _read_until(sock, _PROCEED)
        tls = ctx.wrap_socket(sock, server_hostname=server.domain, session=session)
    except BaseException:
        sock.close()
        raise
    tls.sendall(_header(server.domain))
    return tls, _read_until(tls, _FEATURES_END)


def _reconnects(
    server: RunningServer, ctx: ssl.SSLContext, *, starttls: bool
) -> list[tuple[bool | None, bool, str | None]]:
    """Three connections, each resuming the previous one's session: (reused, ticket, version)."""
    seen = []
    session = None
    for _ in range(3):
        tls, _ = _open(server, ctx, session, starttls=starttls)
        with tls:
            session = tls.session
            assert session is not None
            seen.append((tls.session_reused, session.has_ticket, tls.version()))
    return seen


@pytest.mark.parametrize("starttls", [False, True], ids=["direct-tls", "starttls"])
async def test_tls13_session_is_resumed(server: RunningServer, starttls: bool) -> None:
    ctx = client_tls_context()
    seen = await asyncio.to_thread(_reconnects, server, ctx, starttls=starttls)
    first, *later = seen
    assert first == (False, True, "TLSv1.3"), seen  # a full handshake that left a ticket
    assert later == [(True, True, "TLSv1.3")] * 2, seen  # each resumes and gets a new ticket


async def test_tls12_session_is_resumed(server: RunningServer) -> None:
    """TLS 1.2 clients resume too (below 1.2 nothing connects: test_bad_input.py)."""
    tls12 = client_tls_context(max_version=ssl.TLSVersion.TLSv1_2)
    seen = await asyncio.to_thread(_reconnects, server, tls12, starttls=False)
    assert [(reused, version) for reused, _, version in seen] == [
        (False, "TLSv1.2"),
        (True, "TLSv1.2"),
        (True, "TLSv1.2"),
    ], seen


def _sasl2(tls: ssl.SSLSocket, payload: str) -> bytes:
    tls.sendall(payload.encode())
    data = _read_until(tls, _SASL2_END)
    found = _SASL2_END.search(data)
    assert found is not None
    return found.group(0)


def _login_then_fast_on_resumed_tls(server: RunningServer) -> tuple[bool | None, bytes]:
    """SCRAM + token on a full handshake; FAST (HT-SHA-256-ENDP) + Bind2 on the resumed one."""
    login, password = server.account()
    agent = f"<user-agent id='{uuid.uuid4()}'/>"
    ctx = client_tls_context()
    tls, features = _open(server, ctx, None, starttls=False)
    with tls:
        assert b"HT-SHA-256-ENDP" in features, features
        scram = ScramClient(["SCRAM-SHA-256"], login, password)
        first = base64.b64encode(scram.get_client_first().encode()).decode()
        challenge = _sasl2(
            tls,
            f"<authenticate xmlns='{SASL2}' mechanism='SCRAM-SHA-256'>"
            f"<initial-response>{first}</initial-response>{agent}"
            f"<request-token xmlns='{FAST}' mechanism='HT-SHA-256-ENDP'/></authenticate>",
        )
        text = re.sub(rb"<[^>]+>", b"", challenge)
        scram.set_server_first(base64.b64decode(text).decode())
        final = base64.b64encode(scram.get_client_final().encode()).decode()
        success = _sasl2(tls, f"<response xmlns='{SASL2}'>{final}</response>")
        token = re.search(rb'token="([^"]+)"', success)
        assert token is not None, success
        session = tls.session
    again, _ = _open(server, ctx, session, starttls=False)
    with again:
        der = again.getpeercert(binary_form=True)
        assert der is not None  # the resumed session still carries the certificate
        end_point = hashlib.sha256(der).digest()
        mac = hmac.new(token.group(1), b"Initiator" + end_point, "sha256").digest()
        initial = base64.b64encode(login.encode() + b"\x00" + mac).decode()
        answer = _sasl2(
            again,
            f"<authenticate xmlns='{SASL2}' mechanism='HT-SHA-256-ENDP'>"
            f"<initial-response>{initial}</initial-response>{agent}"
            "<bind xmlns='urn:xmpp:bind:0'><tag>Ward</tag></bind>"
            f"<fast xmlns='{FAST}'/></authenticate>",
        )
        return again.session_reused, answer


async def test_fast_with_channel_binding_on_a_resumed_session(server: RunningServer) -> None:
    reused, answer = await asyncio.to_thread(_login_then_fast_on_resumed_tls, server)
    assert reused is True
    assert answer.startswith(b"<success"), answer
    assert b"/Ward/" in answer  # bound inline (Bind2)
