"""What federates (carewire.features.federation and the features' remote paths).

Presence subscriptions and probes with users of another domain (RFC 6121 §3,
§4.3), the gate on what a remote domain may reach (vCard, disco, internal
services), remote occupants of our rooms and our users in remote rooms
(XEP-0045). The server-to-server streams are replaced by a recording remote
router at the seam (tests/features/federation_double.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.core.stores import Subscription
from carewire.features.muc import MucService
from carewire.xmpp import ns
from carewire.xmpp.jid import JID
from tests.features.federation_double import REMOTE, RecordingRemote, attach, inject, settle
from tests.features.harness import Harness, error_condition, make_harness

D = "example.test"
ALICE = f"alice@{D}"
BOB = f"bob@{REMOTE}"
ROOM = f"ward4@chat.{D}"
PRESENCE = f"{{{ns.CLIENT}}}presence"
MESSAGE = f"{{{ns.CLIENT}}}message"
IQ = f"{{{ns.CLIENT}}}iq"
ROSTER = f"{{{ns.ROSTER}}}"
MUC_USER = "http://jabber.org/protocol/muc#user"
FEATURES = [
    "message",
    "offline",
    "roster",
    "presence",
    "disco",
    "vcard",
    "blocking",
    "muc",
    "federation",
]


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=FEATURES)
    yield harness
    await harness.close()


@pytest.fixture
def remote(h: Harness) -> RecordingRemote:
    return attach(h)


def kinds(stanzas: list[Element]) -> list[tuple[str, str | None, str | None, str | None]]:
    """(tag, type, from, to) of each stanza."""
    return [(s.tag.rpartition("}")[2], s.get("type"), s.get("from"), s.get("to")) for s in stanzas]


def pushed(stanzas: list[Element]) -> list[dict[str, str]]:
    out = []
    for s in stanzas:
        item = s.find(f"{ROSTER}query/{ROSTER}item")
        if s.tag == IQ and s.get("type") == "set" and item is not None:
            out.append(dict(item.attrib))
    return out


async def stored(h: Harness, contact: str) -> tuple[Subscription, bool] | None:
    item = await h.kernel.stores.roster.get_item("alice", contact)
    return None if item is None else (item.subscription, item.is_pending_out)


async def subscribed_both(h: Harness, remote: RecordingRemote) -> None:
    """alice (online as alice/res) and bob@remote.test subscribe to each other."""
    alice, _ = await h.login("alice")
    await h.send(alice, f"<presence type='subscribe' to='{BOB}'/>")
    await inject(h, f"<presence type='subscribed' from='{BOB}' to='{ALICE}'/>")
    await inject(h, f"<presence type='subscribe' from='{BOB}' to='{ALICE}'/>")
    await h.send(alice, f"<presence type='subscribed' to='{BOB}'/>")
    await settle()
    assert await stored(h, BOB) == (Subscription.BOTH, False)
    remote.take()


# -- presence subscriptions (RFC 6121 §3) -----------------------------------------------------


async def test_subscribing_to_a_remote_contact(h: Harness, remote: RecordingRemote) -> None:
    alice, sink = await h.login("alice")
    await h.send(alice, f"<presence type='subscribe' to='{BOB}' id='s1'/>")
    # §3.1.2: the roster item with ask='subscribe', and the request stamped with the bare JID.
    assert pushed(sink.take()) == [{"jid": BOB, "subscription": "none", "ask": "subscribe"}]
    (sent,) = remote.take()
    assert kinds([sent]) == [("presence", "subscribe", ALICE, BOB)] and sent.get("id") == "s1"
    # The remote contact approves: 'to', the approval reaches the client.
    await inject(h, f"<presence type='subscribed' from='{BOB}' to='{ALICE}'/>")
    got = sink.take()
    assert pushed(got) == [{"jid": BOB, "subscription": "to"}]
    assert ("presence", "subscribed", BOB, ALICE) in kinds(got)
    assert await stored(h, BOB) == (Subscription.TO, False)
    # The contact's presence (sent by its server after approving) reaches every resource.
    await inject(h, f"<presence from='{BOB}/phone' to='{ALICE}'><show>away</show></presence>")
    (presence,) = sink.take()
    assert presence.get("from") == f"{BOB}/phone"


async def test_a_remote_request_approved_shares_presence(
    h: Harness, remote: RecordingRemote
) -> None:
    alice, sink = await h.login("alice")
    await inject(h, f"<presence type='subscribe' from='{BOB}/phone' to='{ALICE}'/>")
    # §3.1.3: delivered to the available resources, stamped with the contact's bare JID.
    assert kinds(sink.take()) == [("presence", "subscribe", BOB, ALICE)]
    await h.send(alice, f"<presence type='subscribed' to='{BOB}'/>")
    await settle()
    assert pushed(sink.take()) == [{"jid": BOB, "subscription": "from"}]
    # §3.1.5: the approval, then alice's current presence, go to the remote contact.
    assert kinds(remote.take()) == [
        ("presence", "subscribed", ALICE, BOB),
        ("presence", None, f"{ALICE}/res", BOB),
    ]
    # §4.4.2: a presence change is broadcast to the remote subscriber...
    await h.send(alice, "<presence><show>dnd</show></presence>")
    assert kinds(remote.take()) == [("presence", None, f"{ALICE}/res", BOB)]
    # ...and §4.5.2: so is going offline, on logout without unavailable presence.
    await h.unbind(alice)
    await settle()
    assert kinds(remote.take()) == [("presence", "unavailable", f"{ALICE}/res", BOB)]


async def test_a_remote_request_waits_for_login(h: Harness, remote: RecordingRemote) -> None:
    await h.account("alice")
    await inject(h, f"<presence type='subscribe' from='{BOB}' to='{ALICE}'/>")
    alice, sink = await h.bind("alice")
    await h.send(alice, "<presence/>")
    assert ("presence", "subscribe", BOB, ALICE) in kinds(sink.take())


async def test_a_request_for_no_account_is_ignored(h: Harness, remote: RecordingRemote) -> None:
    await inject(h, f"<presence type='subscribe' from='{BOB}' to='nobody@{D}'/>")
    assert remote.take() == []
    assert await h.kernel.stores.roster.list_pending_in("nobody") == []


async def test_removing_a_remote_contact_ends_both_subscriptions(
    h: Harness, remote: RecordingRemote
) -> None:
    await subscribed_both(h, remote)
    (session,) = h.kernel.sessions.of_user("alice")
    await h.send(
        session,
        f"<iq type='set' id='r'><query xmlns='jabber:iq:roster'>"
        f"<item jid='{BOB}' subscription='remove'/></query></iq>",
    )
    await settle()
    sent = kinds(remote.take())
    assert ("presence", "unsubscribe", ALICE, BOB) in sent
    assert ("presence", "unsubscribed", ALICE, BOB) in sent
    assert ("presence", "unavailable", f"{ALICE}/res", BOB) in sent


# -- probes (RFC 6121 §4.3) ---------------------------------------------------------------------


async def test_initial_presence_probes_remote_contacts(h: Harness, remote: RecordingRemote) -> None:
    await subscribed_both(h, remote)
    second, _ = await h.bind("alice", "tablet")
    await h.send(second, "<presence/>")
    sent = kinds(remote.take())
    # §4.3.1: "from the bare JID <user@domainpart> of the user to the bare JID of the contact"
    # (once, for the new resource), and the new resource's presence to the subscriber.
    assert ("presence", "probe", ALICE, BOB) in sent
    assert ("presence", None, f"{ALICE}/tablet", BOB) in sent


async def test_probe_from_a_remote_subscriber_is_answered(
    h: Harness, remote: RecordingRemote
) -> None:
    await subscribed_both(h, remote)
    await inject(h, f"<presence type='probe' from='{BOB}/phone' to='{ALICE}'/>")
    assert kinds(remote.take()) == [("presence", None, f"{ALICE}/res", f"{BOB}/phone")]


async def test_probe_from_a_stranger_reveals_nothing(h: Harness, remote: RecordingRemote) -> None:
    await h.login("alice")
    await inject(h, f"<presence type='probe' from='mallory@{REMOTE}' to='{ALICE}'/>")
    assert remote.take() == []


async def test_a_refused_remote_subscription_bounces_to_every_resource(
    h: Harness, remote: RecordingRemote
) -> None:
    remote.refused.add(REMOTE)
    alice, sink = await h.login("alice")
    _, tablet = await h.login("alice", "tablet")
    await h.send(alice, f"<presence type='subscribe' to='{BOB}'/>")
    for got in (sink.take(), tablet.take()):
        errors = [s for s in got if s.get("type") == "error"]
        assert [error_condition(e) for e in errors] == ["remote-server-not-found"]


# -- what a remote domain may reach (the federation gate) ---------------------------------------


async def remote_iq(h: Harness, remote: RecordingRemote, to: str, payload: str) -> Element:
    await inject(h, f"<iq type='get' id='q' from='{BOB}/phone' to='{to}'>{payload}</iq>")
    (reply,) = remote.take()
    assert reply.get("to") == f"{BOB}/phone" and reply.get("id") == "q"
    return reply


async def test_vcard_only_for_those_the_user_shares_presence_with(
    h: Harness, remote: RecordingRemote
) -> None:
    await h.login("alice")
    alice = h.kernel.sessions.of_user("alice")[0]
    await h.send(
        alice, "<iq type='set' id='v'><vCard xmlns='vcard-temp'><FN>Alice</FN></vCard></iq>"
    )
    vcard = "<vCard xmlns='vcard-temp'/>"
    reply = await remote_iq(h, remote, ALICE, vcard)
    assert error_condition(reply) == "service-unavailable"
    # The same answer as for an account that does not exist: nothing to enumerate.
    assert error_condition(await remote_iq(h, remote, f"nobody@{D}", vcard)) == (
        "service-unavailable"
    )
    await inject(h, f"<presence type='subscribe' from='{BOB}' to='{ALICE}'/>")
    await h.send(alice, f"<presence type='subscribed' to='{BOB}'/>")
    await settle()
    remote.take()
    reply = await remote_iq(h, remote, ALICE, vcard)
    assert reply.get("type") == "result"
    assert reply.findtext("{vcard-temp}vCard/{vcard-temp}FN") == "Alice"


async def test_disco_of_the_server_shows_rooms_only(h: Harness, remote: RecordingRemote) -> None:
    reply = await remote_iq(h, remote, D, f"<query xmlns='{ns.DISCO_ITEMS}'/>")
    items = [i.get("jid") for i in reply.iter(f"{{{ns.DISCO_ITEMS}}}item")]
    assert items == [f"chat.{D}"]
    info = await remote_iq(h, remote, D, f"<query xmlns='{ns.DISCO_INFO}'/>")
    assert info.get("type") == "result"


async def test_disco_of_an_account_needs_a_subscription(
    h: Harness, remote: RecordingRemote
) -> None:
    await h.login("alice")
    reply = await remote_iq(h, remote, ALICE, f"<query xmlns='{ns.DISCO_INFO}'/>")
    assert error_condition(reply) == "service-unavailable"


@pytest.mark.parametrize(
    ("to", "payload"),
    [
        (ALICE, "<query xmlns='jabber:iq:roster'/>"),
        (D, "<query xmlns='jabber:iq:version'/>"),
        (f"{ALICE}/res", "<query xmlns='jabber:iq:version'/>"),
    ],
)
async def test_other_iqs_are_refused(
    h: Harness, remote: RecordingRemote, to: str, payload: str
) -> None:
    _, sink = await h.login("alice")
    reply = await remote_iq(h, remote, to, payload)
    assert error_condition(reply) == "service-unavailable"
    assert sink.take() == []  # nothing reached the client


async def test_internal_services_answer_nobody_outside(h: Harness, remote: RecordingRemote) -> None:
    await inject(
        h,
        f"<message type='chat' id='m' from='{BOB}/phone' to='x@groups.{D}'>"
        "<body>hi</body></message>",
    )
    (reply,) = remote.take()
    assert error_condition(reply) == "service-unavailable"


async def test_another_domain_cannot_relay(h: Harness, remote: RecordingRemote) -> None:
    await inject(
        h,
        f"<message type='chat' id='m' from='{BOB}/phone' to='eve@third.test'>"
        "<body>x</body></message>",
    )
    (reply,) = remote.take()
    assert reply.get("to") == f"{BOB}/phone" and error_condition(reply) == "not-allowed"


async def test_a_remote_users_namesake_never_gets_our_users_stanzas(
    h: Harness, remote: RecordingRemote
) -> None:
    alice, sink = await h.login("alice")
    assert h.kernel.sessions.get(JID.parse(f"alice@{REMOTE}/res")) is None
    # A room's stanza for alice@remote.test/res goes to the other domain, not to our alice.
    await h.send(alice, f"<presence to='{ROOM}/alice'/>")
    await inject(h, f"<presence from='alice@{REMOTE}/res' to='{ROOM}/alice2'/>")
    assert all(s.get("to") != f"alice@{REMOTE}/res" for s in sink.take())
    assert any(s.get("to") == f"alice@{REMOTE}/res" for s in remote.take())


# -- remote occupants of our rooms (XEP-0045) -------------------------------------------------


async def test_a_remote_user_in_a_room(h: Harness, remote: RecordingRemote) -> None:
    alice, sink = await h.login("alice")
    await h.send(alice, f"<presence to='{ROOM}/alice'/>")
    await h.send(
        alice, f"<message to='{ROOM}' type='groupchat' id='g0'><body>before</body></message>"
    )
    sink.take()
    # bob@remote.test joins: the occupant list, its own presence (110), the history, the subject.
    await inject(
        h,
        f"<presence from='{BOB}/phone' to='{ROOM}/bob'>"
        "<x xmlns='http://jabber.org/protocol/muc'/></presence>",
    )
    got = remote.take()
    assert kinds(got)[:2] == [
        ("presence", None, f"{ROOM}/alice", f"{BOB}/phone"),
        ("presence", None, f"{ROOM}/bob", f"{BOB}/phone"),
    ]
    codes = {c.get("code") for c in got[1].iter(f"{{{MUC_USER}}}status")}
    assert "110" in codes
    history = got[2]
    assert history.findtext(f"{{{ns.CLIENT}}}body") == "before"
    assert history.find(f"{{{ns.DELAY}}}delay") is not None
    assert got[3].find(f"{{{ns.CLIENT}}}subject") is not None
    assert kinds(sink.take()) == [("presence", None, f"{ROOM}/bob", f"{ALICE}/res")]
    # bob speaks: alice gets it, and so does bob (the reflection).
    await inject(
        h,
        f"<message from='{BOB}/phone' to='{ROOM}' type='groupchat' id='g1'>"
        "<body>from afar</body></message>",
    )
    (to_alice,) = sink.take()
    assert to_alice.get("from") == f"{ROOM}/bob"
    assert to_alice.findtext(f"{{{ns.CLIENT}}}body") == "from afar"
    (reflected,) = remote.take()
    assert reflected.get("to") == f"{BOB}/phone" and reflected.get("id") == "g1"
    # alice speaks: bob gets it through the remote router.
    await h.send(
        alice, f"<message to='{ROOM}' type='groupchat' id='g2'><body>hi bob</body></message>"
    )
    await settle()
    (to_bob,) = remote.take()
    assert to_bob.get("from") == f"{ROOM}/alice" and to_bob.get("to") == f"{BOB}/phone"
    sink.take()  # alice's own reflection
    # bob leaves.
    await inject(h, f"<presence type='unavailable' from='{BOB}/phone' to='{ROOM}/bob'/>")
    assert kinds(sink.take()) == [("presence", "unavailable", f"{ROOM}/bob", f"{ALICE}/res")]
    assert kinds(remote.take()) == [("presence", "unavailable", f"{ROOM}/bob", f"{BOB}/phone")]


async def test_a_remote_occupant_whose_server_bounces_leaves(
    h: Harness, remote: RecordingRemote
) -> None:
    alice, sink = await h.login("alice")
    await h.send(alice, f"<presence to='{ROOM}/alice'/>")
    await inject(h, f"<presence from='{BOB}/phone' to='{ROOM}/bob'/>")
    sink.take()
    remote.take()
    await inject(
        h,
        f"<message type='error' from='{BOB}/phone' to='{ROOM}/bob' id='g2'>"
        "<error type='wait'><remote-server-timeout xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        "</error></message>",
    )
    (gone,) = sink.take()
    assert gone.get("type") == "unavailable" and gone.get("from") == f"{ROOM}/bob"
    assert "333" in {c.get("code") for c in gone.iter(f"{{{MUC_USER}}}status")}


async def test_a_remote_user_refused_by_a_members_only_room(
    h: Harness, remote: RecordingRemote
) -> None:
    muc = h.kernel.ctx.require(MucService)
    await muc.create_room(name="icu", members_only=True)
    await inject(h, f"<presence from='{BOB}/phone' to='icu@chat.{D}/bob'/>")
    (reply,) = remote.take()
    assert reply.get("type") == "error" and error_condition(reply) == "registration-required"
    # Once a member (the hospital invited the partner), the remote user may enter.
    await muc.invite(JID.parse(f"icu@chat.{D}"), [JID.parse(BOB)])
    (invitation,) = remote.take()
    assert invitation.get("to") == BOB and invitation.find(f"{{{MUC_USER}}}x") is not None
    await inject(h, f"<presence from='{BOB}/phone' to='icu@chat.{D}/bob'/>")
    assert any(s.get("from") == f"icu@chat.{D}/bob" for s in remote.take())


async def test_a_room_iq_from_a_remote_occupant_is_answered(
    h: Harness, remote: RecordingRemote
) -> None:
    alice, _ = await h.login("alice")
    await h.send(alice, f"<presence to='{ROOM}/alice'/>")
    await inject(
        h,
        f"<iq type='get' id='d' from='{BOB}/phone' to='{ROOM}'>"
        f"<query xmlns='{ns.DISCO_INFO}'/></iq>",
    )
    (reply,) = remote.take()
    assert reply.get("type") == "result" and reply.get("to") == f"{BOB}/phone"


# -- our users in remote rooms ------------------------------------------------------------------


async def test_our_user_in_a_remote_room(h: Harness, remote: RecordingRemote) -> None:
    alice, sink = await h.login("alice")
    far = f"lounge@conference.{REMOTE}"
    await h.send(
        alice, f"<presence to='{far}/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )
    await settle()
    assert kinds(remote.take()) == [("presence", None, f"{ALICE}/res", f"{far}/alice")]
    await inject(h, f"<presence from='{far}/alice' to='{ALICE}/res'/>")
    await inject(
        h, f"<message type='groupchat' from='{far}/zoe' to='{ALICE}/res'><body>hi</body></message>"
    )
    assert kinds(sink.take()) == [
        ("presence", None, f"{far}/alice", f"{ALICE}/res"),
        ("message", "groupchat", f"{far}/zoe", f"{ALICE}/res"),
    ]
    # The room may ask the client things (it has the client's directed presence)...
    await inject(
        h,
        f"<iq type='get' id='p' from='{far}/zoe' to='{ALICE}/res'>"
        "<ping xmlns='urn:xmpp:ping'/></iq>",
    )
    assert kinds(sink.take()) == [("iq", "get", f"{far}/zoe", f"{ALICE}/res")]
    await h.send(alice, f"<message to='{far}' type='groupchat'><body>hello room</body></message>")
    await settle()
    assert kinds(remote.take()) == [("message", "groupchat", f"{ALICE}/res", far)]
    # ...and leaving tells the room, as does logging out.
    await h.unbind(alice)
    await settle()
    assert kinds(remote.take()) == [("presence", "unavailable", f"{ALICE}/res", f"{far}/alice")]


# -- 1:1 messages and blocking --------------------------------------------------------------------


async def test_messages_both_ways_and_blocking_a_remote_user(
    h: Harness, remote: RecordingRemote
) -> None:
    alice, sink = await h.login("alice")
    await h.send(alice, f"<message to='{BOB}' type='chat' id='a1'><body>hi</body></message>")
    await settle()
    assert kinds(remote.take()) == [("message", "chat", f"{ALICE}/res", BOB)]
    await inject(
        h, f"<message from='{BOB}/phone' to='{ALICE}' type='chat' id='b1'><body>yo</body></message>"
    )
    assert kinds(sink.take()) == [("message", "chat", f"{BOB}/phone", ALICE)]
    await h.send(
        alice,
        f"<iq type='set' id='b'><block xmlns='urn:xmpp:blocking'><item jid='{BOB}'/></block></iq>",
    )
    sink.take()
    await inject(
        h, f"<message from='{BOB}/phone' to='{ALICE}' type='chat' id='b2'><body>yo</body></message>"
    )
    assert sink.take() == []
    # XEP-0191 §3.3: "the server SHOULD return an error, which SHOULD be <service-unavailable/>".
    assert [error_condition(s) for s in remote.take()] == ["service-unavailable"]
    await h.send(alice, f"<message to='{BOB}' type='chat' id='a2'><body>hi</body></message>")
    await settle()
    assert remote.take() == []
    assert [error_condition(s) for s in sink.take()] == ["not-acceptable"]
