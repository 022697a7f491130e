"""The federation manager without sockets: queue, bounces, back-off, admission, policy, idle.

A real :class:`Router` with a bound local session receives the bounces; the
network layer is played by :class:`Link` (a stream) and :class:`Dialer`
(records the dials, answers verifications), the two seams the manager
defines for it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

import pytest

from carewire.clock import FakeClock
from carewire.core import hook_names as H
from carewire.core.events import StanzaEvent
from carewire.core.federation import (
    Direction,
    DomainStatus,
    FederationPolicy,
    FederationStatusSink,
)
from carewire.core.hooks import HookBus
from carewire.core.hosts import Hosts
from carewire.core.iq import IqRegistry
from carewire.core.router import Router
from carewire.core.s2s import S2SManager, S2SOptions
from carewire.core.s2s_policy import (
    PeerCertificate,
    RateBucket,
    StaticFederationSettings,
    certificate_verdict,
)
from carewire.core.sessions import Session, SessionManager
from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaCondition, StanzaError, StreamCondition
from carewire.xmpp.jid import JID
from tests.core.test_router import RecordingSink, error_condition, x

DOMAIN = "example.test"
GATEWAY = "pager.example.test"  # an external component's domain (XEP-0114)
ALICE = JID.parse(f"alice@{DOMAIN}/phone")
BOB = JID.parse("bob@remote.test")
ROOM = JID.parse(f"handover@chat.{DOMAIN}/alice")  # a room on our chat. domain, as alice


@dataclass(eq=False)
class Link:
    """A stream as the network layer holds it."""

    direction: Direction = "out"
    remote_ip: str = "127.0.0.1"
    sent: list[Element] = field(default_factory=list)
    closed_with: list[StreamCondition | None] = field(default_factory=list)

    def send_stanza(self, element: Element) -> None:
        self.sent.append(element)

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        self.closed_with.append(condition)


@dataclass
class Dialer:
    dials: list[str] = field(default_factory=list)  # remote domains
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (ours, theirs)

    def dial(self, domain: str, *, local: str) -> None:
        self.dials.append(domain)
        self.pairs.append((local, domain))

    async def verify(self, domain: str, *, local: str, stream_id: str, key: str) -> bool:
        return False


@dataclass
class Fed:
    manager: S2SManager
    settings: StaticFederationSettings
    clock: FakeClock
    dialer: Dialer
    alice: RecordingSink


def make(
    policy: FederationPolicy | None = None,
    pins: dict[str, frozenset[str]] | None = None,
    status: FederationStatusSink | None = None,
    **opts: float,
) -> Fed:
    sessions = SessionManager()
    hosts = Hosts(domain=DOMAIN, components=frozenset({GATEWAY}))
    router = Router(hosts=hosts, hooks=HookBus(), sessions=sessions, iq=IqRegistry())
    sink = RecordingSink()
    sessions.add(Session(jid=ALICE, sink=sink))

    def deliver(event: StanzaEvent) -> bool:  # what the messaging feature does for full JIDs
        session = sessions.get(event.to_jid) if event.to_jid else None
        if session is not None:
            router.deliver(session, event.stanza)
        return True

    router.hooks.on(H.MESSAGE_FULL, deliver)
    settings = StaticFederationSettings(policy, pins)
    clock = FakeClock()
    manager = S2SManager(
        router=router,
        hosts=router.hosts,
        settings=settings,
        clock=clock,
        options=S2SOptions(**{"queue_limit": 3, "retry_min": 2, "retry_max": 8, **opts}),  # type: ignore[arg-type]
        secret=b"k" * 32,
        status=status,
    )
    dialer = Dialer()
    manager.dialer = dialer
    router.remote = manager
    return Fed(manager, settings, clock, dialer, sink)


def chat(body: str = "hi", frm: JID = ALICE, to: JID = BOB) -> Element:
    return x(
        f"<message from='{frm}' to='{to}' type='chat' id='{body}'><body>{body}</body></message>"
    )


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_stanzas_queue_while_dialling_then_go_out_in_order() -> None:
    f = make()
    await f.manager.send(chat("1"), from_jid=ALICE, to_jid=BOB)
    await f.manager.send(chat("2"), from_jid=ALICE, to_jid=BOB)
    assert f.dialer.dials == ["remote.test"]  # one dial for both
    assert f.manager.queued("remote.test") == 2
    link = Link()
    f.manager.established(link, "remote.test", auth="certificate", cert=None, can_send=True)
    assert [s.get("id") for s in link.sent] == ["1", "2"]
    await f.manager.send(chat("3"), from_jid=ALICE, to_jid=BOB)
    assert [s.get("id") for s in link.sent] == ["1", "2", "3"] and f.dialer.dials == ["remote.test"]


async def test_the_queue_is_bounded() -> None:
    f = make()
    for i in range(3):
        await f.manager.send(chat(str(i)), from_jid=ALICE, to_jid=BOB)
    with pytest.raises(StanzaError) as err:
        await f.manager.send(chat("4"), from_jid=ALICE, to_jid=BOB)
    assert err.value.condition is StanzaCondition.RESOURCE_CONSTRAINT


@pytest.mark.parametrize(
    "condition", [StanzaCondition.REMOTE_SERVER_NOT_FOUND, StanzaCondition.REMOTE_SERVER_TIMEOUT]
)
async def test_a_failed_dial_bounces_the_queue_and_backs_off(condition: StanzaCondition) -> None:
    f = make()
    await f.manager.send(chat("1"), from_jid=ALICE, to_jid=BOB)
    await f.manager.send(chat("2"), from_jid=ALICE, to_jid=BOB)
    f.manager.dial_failed("remote.test", condition, "nobody there")
    await settle()
    bounced = f.alice.take()
    assert [b.get("id") for b in bounced] == ["1", "2"]
    assert all(error_condition(b) == condition.value for b in bounced)
    assert bounced[0].get("from") == str(BOB) and bounced[0].get("to") == str(ALICE)
    # During the back-off new stanzas bounce at once, without a dial.
    with pytest.raises(StanzaError) as err:
        await f.manager.send(chat("3"), from_jid=ALICE, to_jid=BOB)
    assert err.value.condition is condition and f.dialer.dials == ["remote.test"]
    f.clock.advance(2.1)
    await f.manager.send(chat("4"), from_jid=ALICE, to_jid=BOB)
    assert f.dialer.dials == ["remote.test"] * 2
    # The back-off doubles, up to retry_max.
    f.manager.dial_failed("remote.test", condition, "still nobody")
    f.clock.advance(2.1)
    with pytest.raises(StanzaError):
        await f.manager.send(chat("5"), from_jid=ALICE, to_jid=BOB)
    for _ in range(4):
        f.clock.advance(100)
        await f.manager.send(chat("6"), from_jid=ALICE, to_jid=BOB)
        f.manager.dial_failed("remote.test", condition, "no")
    f.clock.advance(8.1)
    await f.manager.send(chat("7"), from_jid=ALICE, to_jid=BOB)  # 8 s at most


async def test_errors_are_not_bounced() -> None:
    f = make()
    err = x(f"<message from='{ALICE}' to='{BOB}' type='error'><error type='cancel'/></message>")
    await f.manager.send(err, from_jid=ALICE, to_jid=BOB)
    f.manager.dial_failed("remote.test", StanzaCondition.REMOTE_SERVER_NOT_FOUND, "no")
    await settle()
    assert f.alice.take() == []


async def test_a_domain_off_the_allow_list_is_refused_at_once() -> None:
    f = make(FederationPolicy(allow=frozenset({"partner.test"})))
    with pytest.raises(StanzaError) as err:
        await f.manager.send(chat(), from_jid=ALICE, to_jid=BOB)
    assert err.value.condition is StanzaCondition.REMOTE_SERVER_NOT_FOUND
    assert f.dialer.dials == []
    assert f.manager.refusal("remote.test") == "not on the allow-list"
    assert f.manager.refusal("partner.test") is None
    assert f.manager.refusal("chat.partner.test") is None  # a partner's rooms
    assert f.manager.refusal("notpartner.test") == "not on the allow-list"
    assert f.manager.refusal(DOMAIN) == "not a remote domain"


def test_dialback_follows_the_options_and_the_policy() -> None:
    assert make().manager.may_dialback("remote.test")
    assert not make(allow_dialback=False).manager.may_dialback("remote.test")  # type: ignore[arg-type]
    assert not make(FederationPolicy(certificates_only=True)).manager.may_dialback("remote.test")


# -- inbound stanzas ---------------------------------------------------------------


async def test_inbound_stanzas_reach_local_sessions() -> None:
    f = make()
    link = Link(direction="in")
    f.manager.established(link, "remote.test", auth="certificate", cert=None, can_send=False)
    await f.manager.receive(link, {"remote.test"}, chat("in", frm=BOB, to=ALICE))
    (got,) = f.alice.take()
    assert got.get("id") == "in" and got.tag == f"{{{ns.CLIENT}}}message"
    assert link.closed_with == []


@pytest.mark.parametrize(
    ("frm", "to", "condition"),
    [
        ("mallory@evil.test", str(ALICE), StreamCondition.INVALID_FROM),
        ("bob@remote.test", "carol@elsewhere.test", StreamCondition.HOST_UNKNOWN),
        ("@@", str(ALICE), StreamCondition.IMPROPER_ADDRESSING),
    ],
)
async def test_misaddressed_inbound_stanzas_close_the_stream(
    frm: str, to: str, condition: StreamCondition
) -> None:
    f = make()
    link = Link(direction="in")
    stanza = x(f"<message from='{frm}' to='{to}'><body>x</body></message>")
    await f.manager.receive(link, {"remote.test"}, stanza)
    assert link.closed_with == [condition]
    assert f.alice.take() == []


async def test_a_flood_from_one_domain_closes_its_stream() -> None:
    f = make(rate=1, burst=3)  # type: ignore[arg-type]
    link, other = Link(direction="in"), Link(direction="in")
    for i in range(3):
        await f.manager.receive(link, {"remote.test"}, chat(str(i), frm=BOB, to=ALICE))
    assert link.closed_with == []
    await f.manager.receive(link, {"remote.test"}, chat("3", frm=BOB, to=ALICE))
    assert link.closed_with == [StreamCondition.POLICY_VIOLATION]
    assert len(f.alice.take()) == 3
    # Another domain has its own budget.
    carol = JID.parse("carol@other.test")
    await f.manager.receive(other, {"other.test"}, chat("c", frm=carol, to=ALICE))
    assert other.closed_with == [] and len(f.alice.take()) == 1
    f.clock.advance(2)
    assert RateBucket(1, 3).take(0)


# -- policy changes and idle streams ------------------------------------------------------


def cert(
    fp: str = "ab" * 32, *, trusted: bool = False, names: str = "remote.test"
) -> PeerCertificate:
    return PeerCertificate(fingerprint=fp, identities=frozenset({names}), is_trusted=trusted)


async def test_policy_changes_close_the_streams_they_no_longer_allow() -> None:
    f = make(pins={"pinned.test": frozenset({"cd" * 32})})
    dialback_link, cert_link, pinned_link = Link(), Link(), Link()
    f.manager.established(dialback_link, "remote.test", auth="dialback", cert=None, can_send=True)
    f.manager.established(
        cert_link,
        "partner.test",
        auth="certificate",
        cert=cert(trusted=True, names="partner.test"),
        can_send=True,
    )
    f.manager.established(
        pinned_link, "pinned.test", auth="certificate", cert=cert("cd" * 32), can_send=True
    )
    f.settings.update(FederationPolicy(certificates_only=True))
    assert dialback_link.closed_with == [StreamCondition.POLICY_VIOLATION]
    assert cert_link.closed_with == [] and pinned_link.closed_with == []
    f.settings.update(pins={})  # the pin is removed: its stream goes
    assert pinned_link.closed_with == [StreamCondition.POLICY_VIOLATION]
    f.settings.update(FederationPolicy(allow=frozenset({"other.test"})))
    assert cert_link.closed_with == [StreamCondition.POLICY_VIOLATION]
    assert f.manager.links() == {}


async def test_idle_streams_close() -> None:
    f = make(idle_timeout=60)  # type: ignore[arg-type]
    quiet, busy = Link(), Link()
    f.manager.established(quiet, "remote.test", auth="certificate", cert=None, can_send=True)
    f.manager.established(busy, "other.test", auth="certificate", cert=None, can_send=True)
    f.clock.advance(50)
    await f.manager.send(
        chat(to=JID.parse("x@other.test")), from_jid=ALICE, to_jid=JID.parse("x@other.test")
    )
    f.clock.advance(20)
    assert f.manager.sweep_idle() == 1
    assert quiet.closed_with == [None] and busy.closed_with == []
    assert list(f.manager.links().values()) == ["other.test"]


async def test_a_closed_stream_hands_over_to_another_of_the_domain() -> None:
    f = make()
    out, bidi_in = Link("out"), Link("in")
    f.manager.established(out, "remote.test", auth="certificate", cert=None, can_send=True)
    f.manager.established(bidi_in, "remote.test", auth="certificate", cert=None, can_send=True)
    f.manager.closed(out, "gone")
    await f.manager.send(chat("after"), from_jid=ALICE, to_jid=BOB)
    assert [s.get("id") for s in bidi_in.sent] == ["after"]


# -- certificate verdicts -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("certificate", "pins", "ok"),
    [
        (None, frozenset(), False),
        (cert(trusted=True), frozenset(), True),
        (cert(trusted=True, names="*.test"), frozenset(), True),
        (cert(trusted=True, names="other.test"), frozenset(), False),
        (cert(trusted=False), frozenset(), False),
        (cert("ab" * 32, trusted=False, names="nothing"), frozenset({"ab" * 32}), True),
        (
            PeerCertificate(fingerprint="ab" * 32, is_expired=True, is_trusted=False),
            frozenset({"ab" * 32}),
            False,
        ),
    ],
    ids=["none", "trusted", "wildcard", "other name", "untrusted", "pinned", "expired pinned"],
)
def test_certificate_verdicts(
    certificate: PeerCertificate | None, pins: frozenset[str], ok: bool
) -> None:
    verdict = certificate_verdict(certificate, "remote.test", pins)
    assert verdict.is_ok is ok
    assert verdict.reason or ok


def test_static_settings_notify_and_normalise() -> None:
    calls: list[int] = []
    s = StaticFederationSettings(pins={"remote.test": frozenset({"ab"})})
    s.on_change(lambda: calls.append(1))
    assert s.pinned("REMOTE.test") == frozenset({"ab"}) and s.policy().permits("any.test")
    s.update(FederationPolicy(allow=frozenset({"a.test"})))
    assert calls == [1] and not s.policy().permits("b.test") and s.policy().permits("A.test")


def test_rate_bucket() -> None:
    bucket = RateBucket(rate=10, burst=2)
    assert bucket.take(0) and bucket.take(0) and not bucket.take(0)
    assert bucket.take(0.1)  # one token back after 1/10 s
    assert RateBucket(rate=0, burst=1).take(0)  # 0: unlimited


# -- streams per pair of domains (ours, theirs) ------------------------------------------


@dataclass
class StatusBoard:
    """The per-remote-domain status rows, as the directory's board keeps them."""

    rows: dict[str, DomainStatus] = field(default_factory=dict)

    def update(self, status: DomainStatus) -> None:
        self.rows[status.domain] = status


async def test_a_rooms_stanzas_go_out_on_a_stream_of_the_rooms_domain() -> None:
    f = make()
    await f.manager.send(chat("user", frm=ALICE), from_jid=ALICE, to_jid=BOB)
    await f.manager.send(chat("room", frm=ROOM), from_jid=ROOM, to_jid=BOB)
    await f.manager.send(chat("room2", frm=ROOM), from_jid=ROOM, to_jid=BOB)
    assert f.dialer.pairs == [(DOMAIN, "remote.test"), (f"chat.{DOMAIN}", "remote.test")]
    assert f.manager.queued("remote.test") == 3  # the status row sums our domains' queues
    main, rooms = Link(), Link()
    f.manager.established(
        rooms, "remote.test", auth="dialback", cert=None, can_send=True, local=f"chat.{DOMAIN}"
    )
    assert [m.get("id") for m in rooms.sent] == ["room", "room2"]
    assert f.manager.queued("remote.test") == 1  # the main domain's still waits for its own
    f.manager.established(main, "remote.test", auth="certificate", cert=None, can_send=True)
    assert [m.get("id") for m in main.sent] == ["user"]
    await f.manager.send(chat("later", frm=ROOM), from_jid=ROOM, to_jid=BOB)
    assert rooms.sent[-1].get("id") == "later" and len(main.sent) == 1


async def test_a_components_and_a_foreign_from_domain_pick_their_streams() -> None:
    f = make()
    pager = JID.parse(f"ward7@{GATEWAY}")
    await f.manager.send(chat("p", frm=pager), from_jid=pager, to_jid=BOB)
    stranger = JID.parse("x@elsewhere.test")  # not ours: it goes out as the main domain
    await f.manager.send(chat("s", frm=stranger), from_jid=stranger, to_jid=BOB)
    assert f.dialer.pairs == [(GATEWAY, "remote.test"), (DOMAIN, "remote.test")]
    assert f.manager.local_for(f"chat.{DOMAIN}") == f"chat.{DOMAIN}"


async def test_a_failed_dial_bounces_and_backs_off_only_its_pair() -> None:
    board = StatusBoard()
    f = make(status=board)
    main = Link()
    f.manager.established(main, "remote.test", auth="certificate", cert=None, can_send=True)
    await f.manager.send(chat("room", frm=ROOM), from_jid=ROOM, to_jid=BOB)
    f.manager.dial_failed(
        "remote.test", StanzaCondition.REMOTE_SERVER_NOT_FOUND, "no", local=f"chat.{DOMAIN}"
    )
    with pytest.raises(StanzaError):  # the rooms' pair backs off …
        await f.manager.send(chat("room2", frm=ROOM), from_jid=ROOM, to_jid=BOB)
    await f.manager.send(chat("user"), from_jid=ALICE, to_jid=BOB)  # … the main one does not
    assert [m.get("id") for m in main.sent] == ["user"]
    row = board.rows["remote.test"]  # one row per remote domain: still connected, with the error
    assert row.connected and row.last_error == "no"
    f.manager.closed(main, "gone")
    assert not board.rows["remote.test"].connected


async def test_inbound_stanzas_to_any_domain_we_serve() -> None:
    f = make()
    link = Link(direction="in")
    f.manager.established(
        link, "remote.test", auth="certificate", cert=None, can_send=False, local=f"chat.{DOMAIN}"
    )
    for to in (f"room@chat.{DOMAIN}", f"x@{GATEWAY}", str(ALICE)):
        await f.manager.receive(link, {"remote.test"}, chat("in", frm=BOB, to=JID.parse(to)))
    assert link.closed_with == []
    for ours in (f"chat.{DOMAIN}", f"patients.{DOMAIN}", GATEWAY):
        assert f.manager.refusal(ours) == "not a remote domain"


async def test_more_domains_on_one_inbound_stream_by_dialback() -> None:
    """XEP-0220 §2.4: the peer authenticates another of its domains on the same stream."""
    f = make()
    link = Link(direction="in")
    f.manager.established(link, "remote.test", auth="dialback", cert=None, can_send=False)
    f.manager.established(link, "chat.remote.test", auth="dialback", cert=None, can_send=False)
    assert f.manager.links() == {link: "remote.test"}  # one stream
    occupant = JID.parse("room@chat.remote.test/bob")
    await f.manager.receive(
        link, {"remote.test", "chat.remote.test"}, chat("r", frm=occupant, to=ALICE)
    )
    assert link.closed_with == [] and len(f.alice.take()) == 1
    f.manager.closed(link, "gone")
    assert f.manager.links() == {}
