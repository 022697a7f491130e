"""Hostile and broken clients: each gets a clear error, and other sessions keep working.

Every test keeps a second, already-logged-in session (the *witness*) on the
same server and checks it still gets pings answered and messages routed
after the bad client has been dealt with.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import cast

import pytest

from tests.interop.helpers import (
    assert_healthy,
    log_tail,
    own_server,
    raw_login,
    wait_audit_rows,
)
from tests.interop.rawclient import NS_STREAM, RawClient, client_tls_context
from tests.interop.slix import SlixClient
from tests.interop.wsclient import WsXmpp
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop

NS_STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams"
POLICY_DELAY_TEXT = "Invalid login hard limit reached. Delaying login attempts."


# -- fixtures ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def limits_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Small stanza and send-buffer limits, a short auth timeout and a 1 s login delay."""
    env = {
        "CAREWIRE_XMPP_MAX_STANZA_BYTES": "20000",
        "CAREWIRE_XMPP_MAX_SEND_BUFFER": "65536",
        "CAREWIRE_XMPP_AUTH_TIMEOUT": "2s",
        "CAREWIRE_XMPP_LOGIN_DELAY": "1s",
        "CAREWIRE_XMPP_LOGIN_DELAY_AFTER": "5",
        "CAREWIRE_XMPP_LOCKOUT_AFTER": "10",
    }
    with own_server(tmp_path_factory, "limits", env) as server:
        yield server


@pytest.fixture(scope="module")
def ping_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The server pings sessions idle for 2 s and drops them after 2 s without an answer."""
    env = {"CAREWIRE_XMPP_PING_INTERVAL": "2s", "CAREWIRE_XMPP_PING_TIMEOUT": "2s"}
    with own_server(tmp_path_factory, "ping", env, accounts=10) as server:
        yield server


@pytest.fixture
async def witness(server: RunningServer) -> AsyncIterator[RawClient]:
    """An innocent bystander session on the shared server."""
    client = await raw_login(server)
    yield client
    await client.aclose()


# -- helpers ----------------------------------------------------------------------


def stream_error_condition(text: str) -> str | None:
    """The defined condition of the ``<stream:error/>`` in ``text`` (None if there is none)."""
    m = re.search(r"<stream:error\b[^>]*>(.*?)</stream:error>", text, re.S)
    if m is None:
        return None
    for cond in re.finditer(r"<([a-z-]+)\b([^>]*)>|<([a-z-]+)\b([^>]*)/>", m.group(1)):
        name = cond.group(1) or cond.group(3)
        attrs = cond.group(2) or cond.group(4) or ""
        if NS_STREAMS_ERR in attrs and name != "text":
            return name
    return None


async def expect_stream_error(client: RawClient, condition: str, timeout: float = 10.0) -> str:
    """Read until the server closes; assert ``<stream:error><condition/>`` and the stream end."""
    text = await client.read_until_closed(timeout)
    found = stream_error_condition(client.transcript)
    assert found == condition, (
        f"expected stream error <{condition}/>, got {found}: {client.transcript[-2000:]!r}"
    )
    assert client.transcript.rstrip().endswith("</stream:stream>"), client.transcript[-500:]
    await client.aclose()
    return text


def stanza_error_condition(text: str) -> str | None:
    """The defined condition of the stanza ``<error/>`` in ``text``."""
    m = re.search(r"<([a-z-]+)\b[^>]*xmlns=[\"']urn:ietf:params:xml:ns:xmpp-stanzas[\"']", text)
    return m.group(1) if m else None


async def connect_tls_stream(server: RunningServer) -> RawClient:
    """A connection with TLS done and the post-TLS stream open, not authenticated."""
    client = await RawClient.connect(server.ports["c2s"], domain=server.domain)
    await client.open_stream()
    await client.starttls()
    return client


# -- malformed and restricted XML -------------------------------------------------


async def test_malformed_xml_gets_not_well_formed(
    server: RunningServer, witness: RawClient
) -> None:
    """Mismatched tags after binding end the stream with <not-well-formed/>."""
    bad = await raw_login(server)
    await bad.send("<message to='nobody@carewire.test'><body>oops</message>")
    await expect_stream_error(bad, "not-well-formed")
    await assert_healthy(witness)


async def test_invalid_utf8_gets_an_xml_stream_error(
    server: RunningServer, witness: RawClient
) -> None:
    """Bytes that are not UTF-8 end the stream with <not-well-formed/> or <bad-format/>."""
    bad = await raw_login(server)
    await bad.send(b"<message to='nobody@carewire.test'><body>\xff\xfe</body></message>")
    text = await bad.read_until_closed()
    found = stream_error_condition(bad.transcript)
    assert found in ("not-well-formed", "bad-format", "unsupported-encoding"), (found, text)
    await bad.aclose()
    await assert_healthy(witness)


DOCTYPE = '<!DOCTYPE stream:stream [<!ENTITY boom "boom">]>'


@pytest.mark.parametrize(
    "where",
    ["doctype-before-tls", "doctype-after-auth", "entity-declaration-after-bind", "comment", "pi"],
)
async def test_restricted_xml(server: RunningServer, witness: RawClient, where: str) -> None:
    """DTDs, entity declarations, comments and PIs get <restricted-xml/> (RFC 6120 §11.1)."""
    header = (
        f"<stream:stream xmlns='jabber:client' xmlns:stream='{NS_STREAM}' "
        f"to='{server.domain}' version='1.0'>"
    )
    if where == "doctype-before-tls":
        bad = await RawClient.connect(server.ports["c2s"], domain=server.domain)
        await bad.send(f"<?xml version='1.0'?>{DOCTYPE}{header}")
    elif where == "doctype-after-auth":
        login, password = server.account()
        bad = await connect_tls_stream(server)
        assert (await bad.auth_plain(login, password)).startswith("<success")
        await bad.send(f"<?xml version='1.0'?>{DOCTYPE}{header}")
    else:
        bad = await raw_login(server)
        payload = {
            "entity-declaration-after-bind": f'<!ENTITY boom "boom"><message to="{bad.jid}"/>',
            "comment": f"<message to='{bad.jid}'><!-- hidden --><body>x</body></message>",
            "pi": f"<message to='{bad.jid}'><?evil data?><body>x</body></message>",
        }[where]
        await bad.send(payload)
    text = await bad.read_until_closed()
    found = stream_error_condition(bad.transcript)
    await bad.aclose()
    if where == "entity-declaration-after-bind":
        # A markup declaration outside a DTD is not even well-formed XML; either answer is clear.
        assert found in ("restricted-xml", "not-well-formed"), (found, text)
    else:
        assert found == "restricted-xml", f"got {found}: {bad.transcript[-1500:]!r}"
    assert "boom</body>" not in bad.transcript
    await assert_healthy(witness)


async def test_undefined_entity_reference_is_refused(
    server: RunningServer, witness: RawClient
) -> None:
    """An entity reference other than the five predefined ones ends the stream, never expanded."""
    bad = await raw_login(server)
    await bad.send(f"<message to='{bad.jid}'><body>&xxe;</body></message>")
    await bad.read_until_closed()
    found = stream_error_condition(bad.transcript)
    await bad.aclose()
    assert found in ("restricted-xml", "not-well-formed"), bad.transcript[-1500:]
    await assert_healthy(witness)


async def test_oversized_stanza_gets_policy_violation(limits_server: RunningServer) -> None:
    """A stanza above max_stanza_bytes (20000) ends the stream with <policy-violation/>."""
    witness = await raw_login(limits_server)
    bad = await raw_login(limits_server)
    await bad.message(witness.jid, "x" * 25_000)
    await expect_stream_error(bad, "policy-violation")
    await assert_healthy(witness)
    # The oversized message was not delivered.
    assert "xxxxxxxxxx" not in witness.transcript
    # A large stanza under the limit still goes through.
    await witness.message(witness.jid, "y" * 15_000)
    await witness.read_message("y" * 15_000)
    await witness.aclose()


# -- stanzas the server does not know ----------------------------------------------


async def test_iq_with_unknown_payload_gets_service_unavailable(
    server: RunningServer, witness: RawClient
) -> None:
    """An IQ get with an unknown child namespace gets an error reply, and the stream stays up."""
    client = await raw_login(server)
    reply = await client.iq(
        "get", "<query xmlns='urn:example:no-such-protocol'/>", to=server.domain
    )
    assert 'type="error"' in reply or "type='error'" in reply, reply
    assert stanza_error_condition(reply) == "service-unavailable", reply
    reply = await client.iq("get", "<query xmlns='urn:example:no-such-protocol'/>")
    assert stanza_error_condition(reply) == "service-unavailable", reply
    await assert_healthy(client)
    await client.end_stream()
    await assert_healthy(witness)


async def test_unknown_top_level_element_gets_unsupported_stanza_type(
    server: RunningServer, witness: RawClient
) -> None:
    """An element that is not message/presence/iq after binding → <unsupported-stanza-type/>."""
    bad = await raw_login(server)
    await bad.send("<note to='nobody@carewire.test'><body>x</body></note>")
    await expect_stream_error(bad, "unsupported-stanza-type")
    await assert_healthy(witness)


# -- authentication ------------------------------------------------------------------


async def test_auth_before_starttls_gets_encryption_required(
    server: RunningServer, witness: RawClient
) -> None:
    """<auth/> on the plaintext stream → SASL <encryption-required/>; STARTTLS then still works."""
    login, password = server.account()
    client = await RawClient.connect(server.ports["c2s"], domain=server.domain)
    features = await client.open_stream()
    assert "<mechanisms" not in features, f"SASL offered before TLS: {features}"
    assert "<starttls" in features and "<required" in features, features
    failure = await client.auth_plain(login, password)
    assert failure.startswith("<failure") and "<encryption-required" in failure, failure
    await client.starttls()
    assert (await client.auth_plain(login, password)).startswith("<success")
    await client.open_stream()
    client.jid = await client.bind()
    await assert_healthy(client)
    await client.end_stream()
    await assert_healthy(witness)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-1"])
async def test_wrong_password_gets_not_authorized(
    server: RunningServer, witness: RawClient, mechanism: str
) -> None:
    """A wrong password → SASL <not-authorized/>; the right one then works on the same stream."""
    login, password = server.account()
    client = await connect_tls_stream(server)
    failure = await client.authenticate(login, password + "-wrong", mechanism)
    assert failure.startswith("<failure") and "<not-authorized" in failure, failure
    success = await client.authenticate(login, password, mechanism)
    assert success.startswith("<success"), success
    await client.open_stream()
    client.jid = await client.bind()
    await assert_healthy(client)
    await client.end_stream()
    await assert_healthy(witness)


async def test_unknown_account_gets_not_authorized(
    server: RunningServer, witness: RawClient
) -> None:
    """A login that does not exist fails like a wrong password (no account enumeration)."""
    client = await connect_tls_stream(server)
    for mechanism in ("PLAIN", "SCRAM-SHA-256"):
        failure = await client.authenticate("no-such-user", "whatever", mechanism)
        assert failure.startswith("<failure") and "<not-authorized" in failure, failure
    await client.aclose()
    await assert_healthy(witness)


async def _attempt(
    server: RunningServer, login: str, password: str, mechanism: str = "PLAIN"
) -> str:
    """One login attempt on a new connection; the SASL <success/> or <failure/>."""
    client = await connect_tls_stream(server)
    try:
        return await client.authenticate(login, password, mechanism)
    finally:
        await client.aclose()


def _condition(sasl_reply: str) -> str:
    m = re.match(r"<(success|failure)\b[^>]*>(?:<([a-z-]+)\b)?", sasl_reply)
    assert m is not None, sasl_reply
    return m.group(1) if m.group(1) == "success" else (m.group(2) or "")


async def test_lockout_sequence(limits_server: RunningServer) -> None:
    """Security policy: delay after the 5th failure, lock after the 10th, `user unlock` lifts it."""
    server = limits_server
    witness = await raw_login(server)
    login, password = server.account()
    wrong = password + "-wrong"
    mechs = ["PLAIN", "SCRAM-SHA-256"]
    for i in range(5):
        reply = await _attempt(server, login, wrong, mechs[i % 2])
        assert _condition(reply) == "not-authorized", f"failure {i + 1}: {reply}"
    # Inside the wait even the right password is refused, with the policy's text.
    reply = await _attempt(server, login, password)
    assert _condition(reply) == "temporary-auth-failure", reply
    assert POLICY_DELAY_TEXT in reply, reply
    reply = await _attempt(server, login, wrong, "SCRAM-SHA-256")
    assert _condition(reply) == "temporary-auth-failure", reply
    for i in range(5, 10):
        await asyncio.sleep(1.2)  # past login_delay
        reply = await _attempt(server, login, wrong, mechs[i % 2])
        assert _condition(reply) == "not-authorized", f"failure {i + 1} after the delay: {reply}"
    listed = await asyncio.to_thread(server.cli, "user", "list", "--locked")
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"^{login}@", listed.stdout, re.M), listed.stdout
    await asyncio.sleep(1.2)  # the delay is over: what remains is the lock
    for mechanism in ("PLAIN", "SCRAM-SHA-256"):
        reply = await _attempt(server, login, password, mechanism)
        assert _condition(reply) == "account-disabled", f"{mechanism}: {reply}"
    unlocked = await asyncio.to_thread(server.cli, "user", "unlock", login)
    assert unlocked.returncode == 0, unlocked.stderr
    listed = await asyncio.to_thread(server.cli, "user", "list", "--locked")
    assert not re.search(rf"^{login}@", listed.stdout, re.M), listed.stdout
    client = await RawClient.login(server.ports["c2s"], login, password, domain=server.domain)
    await assert_healthy(client)
    await client.end_stream()
    # The login audit tells the whole story, refused attempts included.
    rows = await wait_audit_rows(server, login, 15)
    outcomes = [r["outcome"] for r in rows]
    assert outcomes == ["failure"] * 5 + ["delayed"] * 2 + ["failure"] * 5 + ["locked"] * 2 + [
        "success"
    ], rows
    await assert_healthy(witness)
    await witness.aclose()


# -- binding and ordering --------------------------------------------------------------


@pytest.mark.parametrize(
    "resource",
    ["line\u2028separator", "zero\u200bwidth", "r" * 1100],
    ids=["U+2028", "U+200B", "too-long"],
)
async def test_bind_invalid_resource_gets_bad_request(
    server: RunningServer, witness: RawClient, resource: str
) -> None:
    """A resourcepart the JID rules reject → bind error <bad-request/>; a valid one then binds."""
    login, password = server.account()
    client = await connect_tls_stream(server)
    assert (await client.auth_plain(login, password)).startswith("<success")
    await client.open_stream()
    reply = await client.bind_raw(resource)
    assert 'type="error"' in reply, reply
    assert stanza_error_condition(reply) == "bad-request", reply
    client.jid = await client.bind("valid")
    assert client.jid == f"{login}@{server.domain}/valid"
    await assert_healthy(client)
    await client.end_stream()
    await assert_healthy(witness)


@pytest.mark.parametrize("stage", ["before-tls", "before-auth", "before-bind"])
async def test_stanza_before_authentication_gets_not_authorized(
    server: RunningServer, witness: RawClient, stage: str
) -> None:
    """A message before the session is bound ends the stream with an error and is not routed."""
    body = f"sneaky-{uuid.uuid4().hex}"
    client = await RawClient.connect(server.ports["c2s"], domain=server.domain)
    await client.open_stream()
    if stage != "before-tls":
        await client.starttls()
    if stage == "before-bind":
        login, password = server.account()
        assert (await client.auth_plain(login, password)).startswith("<success")
        await client.open_stream()
    await client.message(witness.jid, body)
    # Before TLS the stream violates the mandatory-to-negotiate TLS policy (RFC 6120 §5.3.1);
    # after it, unauthenticated data is <not-authorized/> (RFC 6120 §4.9.3.12).
    await expect_stream_error(
        client, "policy-violation" if stage == "before-tls" else "not-authorized"
    )
    await assert_healthy(witness)
    assert body not in witness.transcript


async def test_same_resource_replaces_the_first_session_with_conflict(
    server: RunningServer, witness: RawClient
) -> None:
    """Rebinding a full JID kicks the first session with <conflict/> (RFC 6120 §7.7.2.2)."""
    login, password = server.account()
    first = await RawClient.login(
        server.ports["c2s"], login, password, domain=server.domain, resource="desk"
    )
    second = await RawClient.login(
        server.ports["c2s_tls"],
        login,
        password,
        domain=server.domain,
        resource="desk",
        direct_tls=True,
    )
    assert first.jid == second.jid == f"{login}@{server.domain}/desk"
    await expect_stream_error(first, "conflict")
    await assert_healthy(second)
    await second.end_stream()
    await assert_healthy(witness)


# -- TLS ---------------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["c2s", "c2s_tls"])
@pytest.mark.filterwarnings(r"ignore:ssl\.TLSVersion\.TLSv1(_1)? is deprecated:DeprecationWarning")
async def test_tls11_client_fails_the_handshake(
    server: RunningServer, witness: RawClient, port: str
) -> None:
    """A client limited to TLS 1.1 cannot complete a handshake (TLS 1.2+ only, RFC 7590)."""
    old = client_tls_context(max_version=ssl.TLSVersion.TLSv1_1)
    if port == "c2s":
        client = await RawClient.connect(server.ports[port], domain=server.domain)
        await client.open_stream()
        await client.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        await client.read_until(re.compile(r"<proceed\b[^>]*/>"))
        with pytest.raises((ssl.SSLError, ConnectionError)) as info:
            await client.upgrade_tls(old)
        await client.aclose()
    else:
        with pytest.raises((ssl.SSLError, ConnectionError)) as info:
            await asyncio.wait_for(
                asyncio.open_connection(
                    "127.0.0.1", server.ports[port], ssl=old, server_hostname=server.domain
                ),
                10,
            )
    # The refusal comes from the server (a protocol-version alert), not from our own library.
    assert "NO_PROTOCOLS_AVAILABLE" not in str(info.value).upper(), info.value
    # Control: the same client settings capped at TLS 1.2 do get through.
    tls12 = client_tls_context(max_version=ssl.TLSVersion.TLSv1_2)
    direct = port == "c2s_tls"
    client = await RawClient.connect(
        server.ports[port], domain=server.domain, direct_tls=direct, tls_context=tls12
    )
    await client.open_stream()
    if not direct:
        await client.starttls(context=tls12)
    assert client.ssl_object is not None and client.ssl_object.version() == "TLSv1.2"
    await client.aclose()
    await assert_healthy(witness)


@pytest.mark.parametrize("stage", ["after-tls", "bound"])
async def test_tls_close_notify_closes_the_connection(
    server: RunningServer, witness: RawClient, stage: str
) -> None:
    """A client's TLS close_notify (without </stream:stream>) makes the server close its side too.

    RFC 8446 §6.1: on close_notify the peer closes its write side; otherwise the
    server keeps a dead session (and its presence) until a timeout notices it.
    """
    if stage == "bound":
        client = await raw_login(server)
    else:
        client = await connect_tls_stream(server)
    started = time.monotonic()
    try:
        await client.tls_close(timeout=5)
    except TimeoutError:
        pytest.fail(
            f"the server neither answered close_notify nor closed the TCP connection within 5 s "
            f"(stage {stage})"
        )
    assert time.monotonic() - started < 5
    await assert_healthy(witness)


# -- timeouts and slow clients ---------------------------------------------------------------


@pytest.mark.parametrize("stage", ["silent", "after-tls", "after-auth"])
async def test_connection_that_never_binds_is_closed(
    limits_server: RunningServer, stage: str
) -> None:
    """With auth_timeout=2s a connection that does not authenticate and bind is closed."""
    server = limits_server
    witness = await raw_login(server)
    started = time.monotonic()
    client = await RawClient.connect(server.ports["c2s"], domain=server.domain)
    if stage != "silent":
        await client.open_stream()
        await client.starttls()
    if stage == "after-auth":
        login, password = server.account()
        assert (await client.auth_plain(login, password)).startswith("<success")
    await client.read_until_closed(timeout=10)
    elapsed = time.monotonic() - started
    await client.aclose()
    assert 1.5 <= elapsed <= 8, f"closed after {elapsed:.1f}s"
    if stage != "silent":
        assert stream_error_condition(client.transcript) == "connection-timeout", client.transcript
    await assert_healthy(witness)
    await witness.aclose()


async def test_websocket_that_never_binds_is_closed(limits_server: RunningServer) -> None:
    """The auth timeout applies to WebSocket connections too (RFC 7395 transport)."""
    started = time.monotonic()
    async with WsXmpp.connect(limits_server) as ws:
        await ws.open()
        error = await ws.expect(r"<stream:error\b", timeout=10)
        assert "connection-timeout" in error, error
        await ws.wait_closed()
    assert 1.5 <= time.monotonic() - started <= 8


async def test_client_that_stops_reading_is_disconnected(limits_server: RunningServer) -> None:
    """A session that does not read is dropped past max_send_buffer; other sessions live on."""
    server = limits_server
    login, password = server.account()
    port = server.ports["c2s"]
    stalled = await RawClient.login(
        port, login, password, domain=server.domain, resource="stalled", rcvbuf=4096
    )
    other = await RawClient.login(port, login, password, domain=server.domain, resource="other")
    flooder = await raw_login(server)
    stalled_sock: socket.socket = stalled.writer.get_extra_info("socket")
    cast(asyncio.Transport, stalled.writer.transport).pause_reading()
    started = time.monotonic()
    chunk = "z" * 15_000
    sent = 0
    # Bounded flood (~6 MB, far above the kernel buffers and the 64 KiB limit).
    for i in range(400):
        await flooder.message(stalled.jid, chunk)
        sent += 1
        if i % 20 == 19:
            reply = await flooder.ping()
            assert "result" in reply, f"the flooder itself must stay healthy: {reply}"
            if _tcp_state(stalled_sock) != 1:  # no longer ESTABLISHED: the server closed it
                break
    cast(asyncio.Transport, stalled.writer.transport).resume_reading()
    try:
        await stalled.read_until_closed(timeout=15)
    except TimeoutError:
        pytest.fail(
            f"the stalled session was not disconnected after {sent} messages of 15 kB "
            f"({time.monotonic() - started:.1f}s)\n{log_tail(server)}"
        )
    elapsed = time.monotonic() - started
    await stalled.aclose()
    assert elapsed < 30, elapsed
    received = stalled.transcript.count(chunk)
    assert received < sent, f"the stalled session got all {sent} messages: it was not cut off"
    await assert_healthy(other)
    await assert_healthy(flooder)
    await other.end_stream()
    await flooder.end_stream()


def _tcp_state(sock: socket.socket) -> int:
    """The kernel TCP state of a socket (1 = ESTABLISHED); Linux TCP_INFO."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    except OSError:
        return 0
    return info[0]


async def test_half_open_client_gets_connection_timeout(
    ping_server: RunningServer, slix: Callable[..., Awaitable[SlixClient]]
) -> None:
    """A session that stops answering is pinged and closed with <connection-timeout/> (XEP-0199)."""
    server = ping_server
    # The witness is a real client: it answers the server's pings and must survive them.
    login, password = server.account()
    witness = await slix(server, login, password, resource="witness")
    silent = await raw_login(server)
    started = time.monotonic()
    ping = await silent.read_until(
        re.compile(r"<iq\b[^>]*>\s*<ping xmlns=[\"']urn:xmpp:ping[\"']"), 8
    )
    assert 'type="get"' in ping or "type='get'" in ping, ping
    # We never answer: the server must give up on its own.
    await expect_stream_error(silent, "connection-timeout", timeout=10)
    elapsed = time.monotonic() - started
    assert elapsed <= 10, elapsed
    # Long enough that the witness was pinged too; it answered and is still connected.
    await asyncio.sleep(max(0.0, 5.0 - elapsed))
    assert not witness.disconnects, f"witness dropped: {witness.disconnects}\n{log_tail(server)}"
    rtt = await witness.plugin["xep_0199"].ping(server.domain, timeout=5)
    assert rtt is not None
    await witness.disconnect()
