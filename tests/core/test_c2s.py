"""The kernel side of a client connection, through the real stream machine, no sockets."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
from scramp import ScramClient

from carewire.core import hook_names as H
from carewire.core.auth import DISABLED_TEXT, HARD_LIMIT_TEXT, Authenticator, LoginAuditor
from carewire.core.c2s import ClientConnection, ConnectionInfo, stream_config
from carewire.core.feature import ClientLink, ConnectionLost, FeatureConfig
from carewire.core.sessions import Session
from carewire.core.stores import LoginOutcome
from carewire.xmpp import ns
from carewire.xmpp.errors import StreamCondition
from carewire.xmpp.parser import DEFAULT_LIMITS
from carewire.xmpp.stream import CSI, C2SStream, ClientStateChanged
from tests.features.harness import Harness, make_harness

HEADER = (
    f"<stream:stream xmlns='jabber:client' xmlns:stream='{ns.STREAM}' "
    "to='example.test' version='1.0'>"
).encode()
SECRET = b"s" * 32


@dataclass(eq=False)
class StreamSink:
    """What net does: stanzas go into the stream, close closes it."""

    stream: C2SStream
    closed: list[StreamCondition | None] = field(default_factory=list)

    def send_element(self, element: Element) -> None:
        self.stream.send_element(element)

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        self.closed.append(condition)
        self.stream.close(condition, text)


class Client:
    """One simulated connection: feed bytes, get the text the server wrote."""

    def __init__(self, h: Harness, auth: Authenticator, *, register: bool = False) -> None:
        info = ConnectionInfo(remote_ip="192.0.2.7", transport="c2s-tls", is_tls_active=True)
        self.stream = C2SStream(
            stream_config(h.kernel, info, allow_register=register, limits=DEFAULT_LIMITS)
        )
        self.sink = StreamSink(self.stream)
        self.conn = ClientConnection(
            kernel=h.kernel,
            auth=auth,
            stream=self.stream,
            sink=self.sink,
            info=info,
            fake_secret=SECRET,
        )

    async def feed(self, data: bytes | str) -> str:
        raw = data.encode() if isinstance(data, str) else data
        for event in self.stream.receive_data(raw):
            await self.conn.handle(event)
        return b"".join(self.stream.data_to_send()).decode()

    async def plain(self, login: str, password: str) -> str:
        await self.feed(HEADER)
        cred = base64.b64encode(f"\0{login}\0{password}".encode()).decode()
        return await self.feed(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{cred}</auth>")

    async def bind(self, resource: str | None = None) -> str:
        await self.feed(HEADER)
        res = f"<resource>{resource}</resource>" if resource else ""
        return await self.feed(f"<iq type='set' id='b'><bind xmlns='{ns.BIND}'>{res}</bind></iq>")


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(
        tmp_path,
        features=["c2s", "message", "register"],
        config=FeatureConfig(register_enabled=True),
    )
    await harness.account("alice", "wonderland")
    await harness.account("bob", "builder")
    yield harness
    await harness.close()


@pytest.fixture
def auth(h: Harness) -> Authenticator:
    return Authenticator(h.kernel.stores, h.clock, LoginAuditor(h.kernel.stores))


async def test_plain_login_bind_and_chat(h: Harness, auth: Authenticator) -> None:
    _, bob_sink = await h.bind("bob", "desk")
    from carewire.xmpp.xml import make

    c = Client(h, auth)
    assert "<success" in await c.plain("alice", "wonderland")
    assert "<jid>alice@example.test/phone</jid>" in await c.bind("phone")
    assert c.conn.session is not None
    bob = h.kernel.sessions.of_user("bob")[0]
    bob.presence = make(f"{{{ns.CLIENT}}}presence")
    await c.feed("<message to='bob@example.test' type='chat'><body>hi</body></message>")
    (got,) = bob_sink.take()
    assert got.get("from") == "alice@example.test/phone"
    assert h.kernel.sessions.of_user("alice")
    await c.feed("</stream:stream>")
    assert not h.kernel.sessions.of_user("alice") and c.conn.session is None
    await auth.auditor.flush()
    (row,) = await h.kernel.stores.login_audit.query(login="alice")
    assert (row.outcome, row.mechanism, row.remote_ip, row.transport) == (
        LoginOutcome.SUCCESS,
        "PLAIN",
        "192.0.2.7",
        "c2s-tls",
    )


async def test_scram_sha_256_exchange(h: Harness, auth: Authenticator) -> None:
    c = Client(h, auth)
    await c.feed(HEADER)
    client = ScramClient(["SCRAM-SHA-256"], "alice", "wonderland")
    first = base64.b64encode(client.get_client_first().encode()).decode()
    text = await c.feed(f"<auth xmlns='{ns.SASL}' mechanism='SCRAM-SHA-256'>{first}</auth>")
    challenge = text.split(">", 1)[1].split("<", 1)[0]
    client.set_server_first(base64.b64decode(challenge).decode())
    final = base64.b64encode(client.get_client_final().encode()).decode()
    text = await c.feed(f"<response xmlns='{ns.SASL}'>{final}</response>")
    assert "<success" in text
    server_final = text.split(">", 1)[1].split("<", 1)[0]
    client.set_server_final(base64.b64decode(server_final).decode())  # verifies the server


async def test_wrong_passwords_delay_then_lock(h: Harness, auth: Authenticator) -> None:
    for _ in range(5):
        assert "<not-authorized/>" in await Client(h, auth).plain("alice", "nope")
    text = await Client(h, auth).plain("alice", "wonderland")
    assert "<temporary-auth-failure/>" in text and HARD_LIMIT_TEXT in text
    for _ in range(5):
        h.clock.advance(181)
        assert "<not-authorized/>" in await Client(h, auth).plain("alice", "nope")
    h.clock.advance(3600)
    assert "<account-disabled/>" in await Client(h, auth).plain("alice", "wonderland")
    await h.kernel.accounts.unlock("alice")
    assert "<success" in await Client(h, auth).plain("alice", "wonderland")
    await auth.auditor.flush()
    outcomes = [r.outcome for r in await h.kernel.stores.login_audit.query(login="alice", limit=20)]
    assert outcomes.count(LoginOutcome.DELAYED) == 1 and outcomes.count(LoginOutcome.LOCKED) == 1


async def test_a_disabled_account_is_refused_and_its_sessions_end(
    h: Harness, auth: Authenticator
) -> None:
    c = Client(h, auth)
    await c.plain("alice", "wonderland")
    await c.bind()
    assert await h.kernel.accounts.set_disabled("alice", True)
    assert c.sink.closed == [StreamCondition.NOT_AUTHORIZED]  # ended at once, in this process
    text = await Client(h, auth).plain("alice", "wonderland")  # the right password, refused
    assert "<account-disabled/>" in text and DISABLED_TEXT in text
    account = await h.kernel.stores.accounts.get("alice")
    assert account is not None and account.failed_logins == 0  # not counted as a failure
    await auth.auditor.flush()
    (last, *_) = await h.kernel.stores.login_audit.query(login="alice", limit=1)
    assert (last.outcome, last.reason) == (LoginOutcome.DISABLED, "login disabled")
    await h.kernel.accounts.set_disabled("alice", False)
    assert "<success" in await Client(h, auth).plain("alice", "wonderland")


async def test_unknown_user_and_foreign_domain_fail(h: Harness, auth: Authenticator) -> None:
    assert "<not-authorized/>" in await Client(h, auth).plain("ghost", "x")
    assert "<not-authorized/>" in await Client(h, auth).plain(
        "alice@elsewhere.example", "wonderland"
    )


async def test_bind_variants(h: Harness, auth: Authenticator) -> None:
    c = Client(h, auth)
    await c.plain("alice", "wonderland")
    text = await c.bind()
    assert "<jid>alice@example.test/cw-" in text  # server-generated resource
    second = Client(h, auth)
    await second.plain("alice", "wonderland")
    await second.bind(c.conn.session.resource if c.conn.session else "")
    assert c.sink.closed == [StreamCondition.CONFLICT]  # RFC 6120 §7.7.2.2
    bad = Client(h, auth)
    await bad.plain("alice", "wonderland")
    text = await bad.bind("\u2028")
    assert "<bad-request" in text and bad.conn.session is None


async def test_stanza_after_a_failed_bind_is_not_authorized(
    h: Harness, auth: Authenticator
) -> None:
    c = Client(h, auth)
    await c.plain("alice", "wonderland")
    await c.feed(HEADER)
    await c.feed(
        f"<iq type='set' id='b'><bind xmlns='{ns.BIND}'><resource>\u2028</resource></bind></iq>"
        "<message to='bob@example.test'><body>x</body></message>"
    )
    assert c.sink.closed == [StreamCondition.NOT_AUTHORIZED]


async def test_registration_before_authentication(h: Harness, auth: Authenticator) -> None:
    c = Client(h, auth, register=True)
    text = await c.feed(HEADER)
    assert "iq-register" in text
    text = await c.feed("<iq type='get' id='r1'><query xmlns='jabber:iq:register'/></iq>")
    assert 'type="result"' in text and "<username" in text
    text = await c.feed("<iq type='get' id='r2'><query xmlns='urn:example:other'/></iq>")
    assert "<service-unavailable" in text
    text = await c.feed(
        "<iq type='set' id='r3'><query xmlns='jabber:iq:register'>"
        "<username>carol</username><password>pw-long-enough</password></query></iq>"
    )
    assert 'type="result"' in text
    cred = base64.b64encode(b"\0carol\0pw-long-enough").decode()
    assert "<success" in await c.feed(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{cred}</auth>")


async def test_sasl_abort_then_success(h: Harness, auth: Authenticator) -> None:
    c = Client(h, auth)
    await c.feed(HEADER)
    await c.feed(f"<auth xmlns='{ns.SASL}' mechanism='SCRAM-SHA-1'/>")
    assert "<aborted/>" in await c.feed(f"<abort xmlns='{ns.SASL}'/>")
    cred = base64.b64encode(b"\0alice\0wonderland").decode()
    assert "<success" in await c.feed(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{cred}</auth>")


async def test_nonzas_go_to_the_handler_a_feature_registered(
    h: Harness, auth: Authenticator
) -> None:
    seen: list[tuple[Session | None, bool]] = []

    async def on_state(link: ClientLink, event: ClientStateChanged) -> None:
        seen.append((link.session, event.is_active))

    unknown = Client(h, auth)  # before the registration: the stream refuses the namespace
    h.kernel.ctx.nonzas.register(CSI, ClientStateChanged, on_state)
    with pytest.raises(ValueError, match="two nonza handlers"):
        h.kernel.ctx.nonzas.register(CSI, ClientStateChanged, on_state)
    c = Client(h, auth)
    await c.plain("alice", "wonderland")
    await c.bind("phone")
    assert await c.feed(f"<inactive xmlns='{CSI}'/>") == ""
    assert seen == [(c.conn.session, False)]
    await unknown.plain("bob", "builder")
    await unknown.bind("desk")
    assert "<unsupported-stanza-type" in await unknown.feed(f"<inactive xmlns='{CSI}'/>")


async def test_a_feature_may_keep_a_session_whose_connection_ended(
    h: Harness, auth: Authenticator
) -> None:
    lost: list[ConnectionLost] = []

    def keep(event: ConnectionLost) -> bool:
        lost.append(event)
        return True

    h.kernel.hooks.on(H.SESSION_CONNECTION_LOST, keep)
    c = Client(h, auth)
    await c.plain("alice", "wonderland")
    await c.bind("phone")
    session = c.conn.session
    assert session is not None
    await c.conn.closed()
    await c.conn.closed()  # idempotent: asked once
    assert [(e.session, e.stream) for e in lost] == [(session, c.stream)]
    assert not session.is_closed and h.kernel.sessions.get(session.jid) is session
    h.kernel.hooks.off(H.SESSION_CONNECTION_LOST, keep)
    other = Client(h, auth)
    await other.plain("bob", "builder")
    await other.bind("desk")
    gone = other.conn.session
    assert gone is not None
    await other.feed("</stream:stream>")  # nobody keeps it: the session ends
    assert gone.is_closed and h.kernel.sessions.get(gone.jid) is None
