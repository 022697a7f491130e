"""XEP-0198 stream management through the real stream machine and kernel, no sockets.

The :class:`Conn` helper (also used by the CSI tests) drives the real
:class:`C2SStream` and :class:`ClientConnection` of the kernel, as the network
layer does, without sockets: feed bytes, read the text the server wrote, drop
the connection.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.core import hook_names as H
from carewire.core.auth import Authenticator, LoginAuditor
from carewire.core.c2s import ClientConnection, ConnectionInfo, stream_config
from carewire.core.feature import FeatureConfig
from carewire.core.sessions import Session, StreamManagement
from carewire.features.smacks import sweep_interval
from carewire.xmpp import ns
from carewire.xmpp.errors import RemoteProtocolError, StreamCondition
from carewire.xmpp.jid import JID
from carewire.xmpp.parser import DEFAULT_LIMITS, parse_document
from carewire.xmpp.stream import MAX_SEQ, C2SStream, StanzaReceived
from tests.features.harness import Harness, error_condition, make_harness

HEADER = (
    f"<stream:stream xmlns='jabber:client' xmlns:stream='{ns.STREAM}' "
    "to='example.test' version='1.0'>"
)
SM = "urn:xmpp:sm:3"
CSI = "urn:xmpp:csi:0"
SECRET = b"s" * 32
PASSWORD = "secret"


@dataclass(eq=False)
class StreamSink:
    """What the network layer does: stanzas go into the stream, close closes it."""

    stream: C2SStream
    closed: list[StreamCondition | None] = field(default_factory=list)

    def send_element(self, element: Element) -> None:
        self.stream.send_element(element)

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        self.closed.append(condition)
        self.stream.close(condition, text)


def elements(text: str) -> list[Element]:
    """The top-level elements of server output written after the stream header."""
    body = text.replace("</stream:stream>", "")
    wrapped = f"<w xmlns='{ns.CLIENT}' xmlns:stream='{ns.STREAM}'>{body}</w>"
    return list(parse_document(wrapped))


class Conn:
    """One simulated client connection to the harness kernel."""

    def __init__(self, h: Harness, remote_ip: str = "192.0.2.7") -> None:
        self.h = h
        info = ConnectionInfo(remote_ip=remote_ip, transport="c2s-tls", is_tls_active=True)
        self.stream = C2SStream(
            stream_config(h.kernel, info, allow_register=False, limits=DEFAULT_LIMITS)
        )
        self.sink = StreamSink(self.stream)
        auth = Authenticator(h.kernel.stores, h.clock, LoginAuditor(h.kernel.stores))
        self.conn = ClientConnection(
            kernel=h.kernel,
            auth=auth,
            stream=self.stream,
            sink=self.sink,
            info=info,
            fake_secret=SECRET,
        )

    async def feed(self, data: str) -> str:
        """Send bytes; the text the server wrote in answer."""
        for event in self.stream.receive_data(data.encode()):
            await self.conn.handle(event)
        return self.take()

    def take(self) -> str:
        """What the server wrote since the last call."""
        return b"".join(self.stream.data_to_send()).decode()

    async def authenticate(self, login: str) -> str:
        """Open the stream, authenticate (PLAIN) and restart it; the post-auth features."""
        await self.h.account(login, PASSWORD)
        await self.feed(HEADER)
        cred = base64.b64encode(f"\0{login}\0{PASSWORD}".encode()).decode()
        assert "<success" in await self.feed(
            f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{cred}</auth>"
        )
        return await self.feed(HEADER)

    async def login(self, login: str, resource: str, *, sm: bool = True) -> list[Element]:
        """Authenticate, bind, send initial presence and enable SM; what SM answered."""
        await self.authenticate(login)
        bind = f"<iq type='set' id='b'><bind xmlns='{ns.BIND}'><resource>{resource}</resource>"
        assert f"{resource}</jid>" in await self.feed(bind + "</bind></iq>")
        await self.feed("<presence/>")
        if not sm:
            return []
        return elements(await self.feed(f"<enable xmlns='{SM}' resume='true'/>"))

    async def drop(self) -> None:
        """The connection breaks (no closing tag)."""
        await self.conn.closed()


FEATURES = ["c2s", "message", "offline", "roster", "presence", "ping", "carbons", "csi", "smacks"]


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(
        tmp_path, features=FEATURES, config=FeatureConfig(smacks_max_unacked=5)
    )
    yield harness
    await harness.close()


def sm_tag(local: str) -> str:
    return f"{{{SM}}}{local}"


def failed_condition(element: Element) -> str:
    assert element.tag == sm_tag("failed"), element.tag
    (cond,) = list(element)
    return cond.tag.rpartition("}")[2]


def bodies(els: list[Element]) -> list[str]:
    return [b.text or "" for e in els if (b := e.find(f"{{{ns.CLIENT}}}body")) is not None]


async def send_chat(h: Harness, sender: Session, to: str, body: str) -> None:
    await h.send(sender, f"<message to='{to}' type='chat'><body>{body}</body></message>")


async def test_sm_is_advertised_after_authentication(h: Harness) -> None:
    features = await Conn(h).authenticate("alice")
    assert f'<sm xmlns="{SM}"' in features and f'<csi xmlns="{CSI}"' in features


async def test_enable_before_bind_twice_and_without_resume(h: Harness) -> None:
    c = Conn(h)
    await c.authenticate("alice")
    (failed,) = elements(await c.feed(f"<enable xmlns='{SM}'/>"))
    assert failed_condition(failed) == "unexpected-request"  # XEP-0198 §3: bind first
    await c.feed(f"<iq type='set' id='b'><bind xmlns='{ns.BIND}'/></iq>")
    (enabled,) = elements(await c.feed(f"<enable xmlns='{SM}'/>"))
    assert enabled.tag == sm_tag("enabled") and enabled.get("id") is None
    assert enabled.get("resume") is None
    (again,) = elements(await c.feed(f"<enable xmlns='{SM}' resume='true'/>"))
    assert failed_condition(again) == "unexpected-request"
    await c.drop()  # not resumable: the session ends at once
    assert not h.kernel.sessions.of_user("alice")


async def test_enable_with_resume_and_client_max(h: Harness) -> None:
    (enabled,) = await Conn(h).login("alice", "phone")
    assert enabled.get("resume") == "true" and enabled.get("max") == "300"
    assert len(enabled.get("id", "")) >= 32  # unguessable
    c = Conn(h)
    await c.login("bob", "phone", sm=False)
    (short,) = elements(await c.feed(f"<enable xmlns='{SM}' resume='1' max='60'/>"))
    assert short.get("max") == "60"


async def test_ack_counts_handled_stanzas_after_durable_flush(h: Harness) -> None:
    c = Conn(h)
    await c.login("alice", "phone")
    await c.feed("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq><presence/>")
    gate = asyncio.Event()
    flushed: list[str] = []

    async def flush() -> None:
        flushed.append(c.take())
        await gate.wait()

    h.kernel.ctx.durability.register(flush)
    task = asyncio.create_task(c.feed(f"<r xmlns='{SM}'/>"))
    await asyncio.sleep(0.01)
    assert flushed and not task.done()  # no <a/> before the archive is durable
    gate.set()
    (ack,) = elements(await task)
    assert ack.tag == sm_tag("a") and ack.get("h") == "2"


async def test_outbound_queue_and_client_acks(h: Harness) -> None:
    c = Conn(h)
    await c.login("alice", "phone")
    c.take()
    bob, _ = await h.login("bob")
    await send_chat(h, bob, "alice@example.test", "one")
    await send_chat(h, bob, "alice@example.test", "two")
    got = elements(c.take())
    # Each stanza is queued; one <r/> is outstanding at a time.
    assert bodies(got) == ["one", "two"] and [e.tag for e in got].count(sm_tag("r")) == 1
    alice = h.kernel.sessions.of_user("alice")[0]
    assert alice.sm is not None and len(alice.sm.unacked) == 2
    (r,) = elements(await c.feed(f"<a xmlns='{SM}' h='1'/>"))
    assert r.tag == sm_tag("r") and len(alice.sm.unacked) == 1  # still one to ack
    assert await c.feed(f"<a xmlns='{SM}' h='2'/>") == ""
    assert not alice.sm.unacked and not alice.sm.is_ack_requested


async def test_ack_for_more_than_was_sent_is_a_stream_error(h: Harness) -> None:
    c = Conn(h)
    await c.login("alice", "phone")
    c.take()
    text = await c.feed(f"<a xmlns='{SM}' h='3'/>")
    assert "<undefined-condition" in text
    assert f'<handled-count-too-high xmlns="{SM}" h="3" send-count="0"/>' in text
    assert c.stream.is_closed
    await c.drop()
    assert not h.kernel.sessions.of_user("alice")  # not resumable after that


@pytest.mark.parametrize(
    ("nonza", "condition"),
    [
        (f"<a xmlns='{SM}' h='x'/>", "bad-format"),
        (f"<a xmlns='{SM}' h='4294967296'/>", "bad-format"),
        (f"<a xmlns='{SM}'/>", "bad-format"),
    ],
)
async def test_malformed_acks(h: Harness, nonza: str, condition: str) -> None:
    c = Conn(h)
    await c.login("alice", "phone")
    with pytest.raises(RemoteProtocolError) as err:
        await c.feed(nonza)
    assert err.value.condition.value == condition


@pytest.mark.parametrize("nonza", [f"<r xmlns='{SM}'/>", f"<a xmlns='{SM}' h='0'/>"])
async def test_acks_without_sm_are_refused(h: Harness, nonza: str) -> None:
    c = Conn(h)
    await c.login("alice", "phone", sm=False)
    with pytest.raises(RemoteProtocolError) as err:
        await c.feed(nonza)
    assert err.value.condition is StreamCondition.UNSUPPORTED_STANZA_TYPE


async def test_without_the_feature_sm_nonzas_are_unknown(tmp_path: Path) -> None:
    h = await make_harness(tmp_path, features=["c2s", "message"])
    try:
        c = Conn(h)
        assert "urn:xmpp:sm:3" not in await c.authenticate("alice")
        await c.feed(f"<iq type='set' id='b'><bind xmlns='{ns.BIND}'/></iq>")
        text = await c.feed(f"<enable xmlns='{SM}'/>")
        assert "<unsupported-stanza-type" in text and c.stream.is_closed
    finally:
        await h.close()


async def test_resume_after_a_broken_connection(h: Harness) -> None:
    closed: list[str] = []
    h.kernel.hooks.on(H.SESSION_CLOSED, lambda e: closed.append(str(e.session.jid)))
    c = Conn(h)
    (enabled,) = await c.login("alice", "phone")
    previd = enabled.get("id", "")
    bob, bob_sink = await h.login("bob")
    await send_chat(h, bob, "alice@example.test", "before")
    await c.feed(f"<a xmlns='{SM}' h='0'/>")  # the client got nothing yet
    await c.feed("<message to='bob@example.test' type='chat'><body>hi</body></message>")
    await c.drop()
    alice = h.kernel.sessions.get(JID.parse("alice@example.test/phone"))
    assert alice is not None and alice.is_detached and alice.is_available
    assert not closed  # still bound: presence unchanged, no unavailable broadcast
    await send_chat(h, bob, "alice@example.test/phone", "while-away")
    assert bodies(bob_sink.take()) == ["hi"]

    again = Conn(h, remote_ip="198.51.100.9")
    bound: list[Session] = []
    again.conn.on_bound = bound.append  # the network layer learns the session
    features = await again.authenticate("alice")
    assert "<bind" in features
    got = elements(await again.feed(f"<resume xmlns='{SM}' previd='{previd}' h='0'/>"))
    resumed = got[0]
    assert resumed.tag == sm_tag("resumed") and resumed.get("previd") == previd
    assert resumed.get("h") == "1"  # the message (presence came before <enable/>)
    # §5: everything not acknowledged is sent again, then an ack is requested.
    assert bodies(got[1:]) == ["before", "while-away"] and got[-1].tag == sm_tag("r")
    assert again.conn.session is alice and not alice.is_detached and bound == [alice]
    assert alice.remote_ip == "198.51.100.9" and not closed
    (ack,) = elements(await again.feed(f"<r xmlns='{SM}'/>"))
    assert ack.get("h") == "1"
    await again.feed(f"<a xmlns='{SM}' h='2'/>")
    assert alice.sm is not None and not alice.sm.unacked
    await again.feed("</stream:stream>")  # a clean close ends the session
    assert closed == ["alice@example.test/phone"]


async def test_resume_closes_a_stream_still_open(h: Harness) -> None:
    c = Conn(h)
    (enabled,) = await c.login("alice", "phone")
    again = Conn(h)
    await again.authenticate("alice")
    text = await again.feed(f"<resume xmlns='{SM}' previd='{enabled.get('id')}' h='0'/>")
    assert "<resumed" in text
    assert c.sink.closed == [StreamCondition.CONFLICT]  # §5: the old stream is terminated
    await c.conn.handle(StanzaReceived(Element("x")))  # ignored: the session moved on
    assert c.sink.closed == [StreamCondition.CONFLICT]
    await c.drop()  # its end no longer concerns the session
    assert h.kernel.sessions.of_user("alice") == [again.conn.session]


async def test_resume_failures(h: Harness) -> None:
    c = Conn(h)
    (enabled,) = await c.login("alice", "phone")
    previd = enabled.get("id", "")
    await c.drop()
    mallory = Conn(h)
    await mallory.authenticate("mallory")
    # Another account cannot resume alice's session, even knowing the id.
    (failed,) = elements(await mallory.feed(f"<resume xmlns='{SM}' previd='{previd}' h='0'/>"))
    assert failed_condition(failed) == "item-not-found"
    (failed,) = elements(await mallory.feed(f"<resume xmlns='{SM}' previd='nope' h='0'/>"))
    assert failed_condition(failed) == "item-not-found"
    (failed,) = elements(await mallory.feed(f"<resume xmlns='{SM}' previd='{previd}' h='-1'/>"))
    assert failed_condition(failed) == "bad-request"
    # §5: after <failed/> the client may bind on the same stream.
    assert "mallory@example.test/m</jid>" in await mallory.feed(
        f"<iq type='set' id='b'><bind xmlns='{ns.BIND}'><resource>m</resource></bind></iq>"
    )
    (failed,) = elements(await mallory.feed(f"<resume xmlns='{SM}' previd='{previd}' h='0'/>"))
    assert failed_condition(failed) == "unexpected-request"  # already bound
    too_high = Conn(h)
    await too_high.authenticate("alice")
    text = await too_high.feed(f"<resume xmlns='{SM}' previd='{previd}' h='9'/>")
    assert "<handled-count-too-high" in text and too_high.stream.is_closed


async def test_timeout_ends_the_session_and_reroutes_messages(h: Harness) -> None:
    closed: list[str] = []
    h.kernel.hooks.on(H.SESSION_CLOSED, lambda e: closed.append(str(e.session.jid)))
    c = Conn(h)
    (enabled,) = await c.login("alice", "phone")
    bob, bob_sink = await h.login("bob")
    await c.drop()
    await send_chat(h, bob, "alice@example.test", "queued")
    await h.send(bob, "<message to='alice@example.test' type='headline'><body>x</body></message>")
    await h.send(bob, "<iq to='alice@example.test/phone' type='get' id='q1'><query/></iq>")
    sweep = smacks_sweep(h)
    h.clock.advance(299)
    await sweep()
    assert not closed
    h.clock.advance(2)
    await sweep()
    assert closed == ["alice@example.test/phone"]
    # The chat message went to offline storage; the IQ requester got an error.
    (stored,) = await h.kernel.stores.offline.fetch("alice", now=h.clock.now())
    assert "queued" in stored.stanza
    (err,) = [e for e in bob_sink.take() if e.get("type") == "error"]
    assert err.get("id") == "q1" and error_condition(err) == "service-unavailable"
    late = Conn(h)
    await late.authenticate("alice")
    text = await late.feed(f"<resume xmlns='{SM}' previd='{enabled.get('id')}' h='0'/>")
    assert failed_condition(elements(text)[0]) == "item-not-found"


async def test_clean_close_reroutes_unacked_messages_to_another_resource(h: Harness) -> None:
    c = Conn(h)
    await c.login("alice", "phone")
    _, desk = await h.login("alice", "desk", priority=-1)
    bob, _ = await h.login("bob")
    await send_chat(h, bob, "alice@example.test/phone", "unread")
    await send_chat(h, bob, "alice@example.test/phone", "")  # a body-less copy is still a message
    await h.send(
        bob,
        "<message to='alice@example.test/phone' type='chat'>"
        "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
    )
    desk.take()
    await c.feed("</stream:stream>")
    # The phone never acknowledged them; the desk (negative priority) cannot take
    # bare-JID chat, so they go to offline storage — not the chat state.
    stored = await h.kernel.stores.offline.fetch("alice", now=h.clock.now())
    assert len(stored) == 2 and "unread" in stored[0].stanza
    assert not [e for e in desk.take() if e.tag == f"{{{ns.CLIENT}}}message"]


async def test_reroute_prefers_an_available_resource(h: Harness) -> None:
    c = Conn(h)
    await c.login("alice", "phone")
    _, desk = await h.login("alice", "desk")
    bob, _ = await h.login("bob")
    await send_chat(h, bob, "alice@example.test/phone", "to-phone")
    desk.take()
    await c.feed("</stream:stream>")
    assert bodies(desk.take()) == ["to-phone"]


async def test_unacked_queue_is_bounded(h: Harness) -> None:
    c = Conn(h)
    await c.login("alice", "phone")
    bob, _ = await h.login("bob")
    for i in range(6):
        await send_chat(h, bob, "alice@example.test/phone", f"m{i}")
    assert c.sink.closed == [StreamCondition.POLICY_VIOLATION]
    await c.drop()  # our stream error ends the session: no resumption
    stored = await h.kernel.stores.offline.fetch("alice", now=h.clock.now())
    assert len(stored) == 6  # nothing is lost


async def test_detached_queue_overflow_and_removed_account_end_the_session(h: Harness) -> None:
    c = Conn(h)
    await c.login("alice", "phone")
    bob, _ = await h.login("bob")
    await c.drop()
    alice = h.kernel.sessions.of_user("alice")[0]
    alice.sink.close(StreamCondition.CONNECTION_TIMEOUT)  # a ping timeout: irrelevant now
    await smacks_sweep(h)()
    assert alice.is_detached and not alice.is_closed
    for i in range(6):
        await send_chat(h, bob, "alice@example.test/phone", f"m{i}")
    await smacks_sweep(h)()
    assert alice.is_closed and not h.kernel.sessions.of_user("alice")


async def test_same_resource_bind_replaces_a_detached_session(h: Harness) -> None:
    c = Conn(h)
    (enabled,) = await c.login("alice", "phone")
    bob, _ = await h.login("bob")
    await c.drop()
    await send_chat(h, bob, "alice@example.test/phone", "pending")
    fresh = Conn(h)
    await fresh.authenticate("alice")
    await fresh.feed(
        f"<iq type='set' id='b'><bind xmlns='{ns.BIND}'><resource>phone</resource></bind></iq>"
    )
    assert h.kernel.sessions.resumable(enabled.get("id", ""), "alice") is None
    (stored,) = await h.kernel.stores.offline.fetch("alice", now=h.clock.now())
    assert "pending" in stored.stanza  # delivered at the new session's initial presence


async def test_server_stop_ends_detached_sessions(h: Harness) -> None:
    c = Conn(h)
    await c.login("alice", "phone")
    bob, _ = await h.login("bob")
    await c.drop()
    await send_chat(h, bob, "alice@example.test", "keep-me")
    await h.kernel.hooks.fire(H.SERVER_STOPPING, None)
    assert not h.kernel.sessions.of_user("alice")
    (stored,) = await h.kernel.stores.offline.fetch("alice", now=h.clock.now())
    assert "keep-me" in stored.stanza


async def test_resume_makes_an_inactive_client_active(h: Harness) -> None:
    c = Conn(h)
    (enabled,) = await c.login("alice", "phone")
    await c.feed(f"<inactive xmlns='{CSI}'/>")
    await c.drop()
    again = Conn(h)
    await again.authenticate("alice")
    await again.feed(f"<resume xmlns='{SM}' previd='{enabled.get('id')}' h='0'/>")
    alice = h.kernel.sessions.of_user("alice")[0]
    assert alice.data["csi"] == "active"  # XEP-0352: a stream begins active


def test_sequence_numbers_wrap() -> None:
    sm = StreamManagement(max_unacked=10, acked=MAX_SEQ - 1)
    sm.queue(Element("a"))
    sm.queue(Element("b"))
    assert sm.sent_count == 1
    assert not sm.ack(2)  # more than was sent
    assert sm.ack(0) and len(sm.unacked) == 1 and sm.ack(1) and not sm.unacked
    sm.handled = MAX_SEQ - 1
    sm.count_handled()
    assert sm.handled == 0


def test_sweep_interval_is_bounded() -> None:
    assert sweep_interval(300) == 10.0 and sweep_interval(5) == 1.0 and sweep_interval(30) == 3.0


def smacks_sweep(h: Harness) -> Callable[[], Awaitable[None]]:
    (job,) = [j for j in h.kernel.ctx.jobs if j.name == "smacks-detached-sessions"]
    return job.run
