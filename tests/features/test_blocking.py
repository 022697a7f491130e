"""XEP-0191 Blocking Command (carewire.features.blocking)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.core import hook_names as H
from carewire.core.events import StanzaEvent
from carewire.core.sessions import Session
from carewire.core.stores import RosterItem, Subscription
from carewire.features.blocking import matches
from carewire.xmpp import ns
from carewire.xmpp.jid import JID
from tests.features.harness import Harness, RecordingSink, error_condition, make_harness, x

D = "example.test"
BLOCKLIST = f"{{{ns.BLOCKING}}}blocklist"
BLOCK = f"{{{ns.BLOCKING}}}block"
UNBLOCK = f"{{{ns.BLOCKING}}}unblock"
ITEM = f"{{{ns.BLOCKING}}}item"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(
        tmp_path, features=["message", "offline", "vcard", "disco", "blocking"]
    )
    yield harness
    await harness.close()


@pytest.fixture
def presences(h: Harness) -> list[tuple[str, str, str]]:
    """(from, to, type) of presence stanzas routed to accounts and resources.

    No presence feature is loaded here: this stands in for it, below blocking.
    """
    seen: list[tuple[str, str, str]] = []

    def record(event: StanzaEvent) -> bool:
        s = event.stanza
        seen.append((s.get("from", ""), s.get("to", ""), s.get("type", "available")))
        return True

    h.kernel.hooks.on(H.PRESENCE_BARE, record, priority=-5000)
    h.kernel.hooks.on(H.PRESENCE_FULL, record, priority=-5000)
    return seen


async def online(h: Harness, login: str, resource: str = "res") -> tuple[Session, RecordingSink]:
    """Bound and available (as if initial presence had been sent)."""
    session, sink = await h.bind(login, resource)
    session.presence = x("<presence/>")
    sink.take()
    return session, sink


def items_xml(*jids: str) -> str:
    return "".join(f"<item jid='{j}'/>" for j in jids)


async def command(
    h: Harness, session: Session, sink: RecordingSink, verb: str, *jids: str
) -> Element:
    """Send a block/unblock command; return the IQ reply (pushes stay in the sink)."""
    await h.send(
        session,
        f"<iq type='set' id='{verb}1'>"
        f"<{verb} xmlns='{ns.BLOCKING}'>{items_xml(*jids)}</{verb}></iq>",
    )
    replies = [e for e in sink.sent if e.get("id") == f"{verb}1"]
    sink.sent = [e for e in sink.sent if e.get("id") != f"{verb}1"]
    (reply,) = replies
    return reply


async def blocklist(h: Harness, session: Session, sink: RecordingSink) -> list[str]:
    await h.send(session, f"<iq type='get' id='bl1'><blocklist xmlns='{ns.BLOCKING}'/></iq>")
    (reply,) = sink.take()
    assert reply.get("type") == "result"
    el = reply.find(BLOCKLIST)
    assert el is not None
    return [i.get("jid", "") for i in el.iter(ITEM)]


# -- JID matching ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "jid", "expected"),
    [
        ("bob@example.test/phone", "bob@example.test/phone", True),
        ("bob@example.test/phone", "bob@example.test/desk", False),
        ("bob@example.test/phone", "bob@example.test", False),
        ("bob@example.test", "bob@example.test/any", True),
        ("bob@example.test", "bob@example.test", True),
        ("bob@example.test", "carol@example.test", False),
        ("example.test/res", "example.test/res", True),
        ("example.test/res", "bob@example.test/res", True),  # as XEP-0016 servers do
        ("example.test/res", "example.test/other", False),
        ("example.test", "example.test", True),
        ("example.test", "bob@example.test/res", True),
        ("example.test", "chat.example.test", True),
        ("example.test", "room@chat.example.test/nick", True),
        ("example.test", "example.org", False),
        ("example.test", "badexample.test", False),
    ],
)
def test_jid_matching(item: str, jid: str, expected: bool) -> None:
    assert matches(frozenset({item}), JID.parse(jid)) is expected


def test_empty_list_matches_nothing() -> None:
    assert not matches(frozenset(), JID.parse("bob@example.test"))


# -- the commands ---------------------------------------------------------------------


async def test_blocking_is_advertised(h: Harness) -> None:
    assert ns.BLOCKING in h.kernel.disco.server_features


async def test_blocklist_starts_empty(h: Harness) -> None:
    session, sink = await h.bind("alice")
    assert await blocklist(h, session, sink) == []


async def test_block_normalises_and_lists(h: Harness) -> None:
    session, sink = await h.bind("alice")
    reply = await command(
        h, session, sink, "block", "Bob@Example.TEST", "example.org", "bob@example.test"
    )
    assert reply.get("type") == "result"
    assert len(reply) == 0
    assert await blocklist(h, session, sink) == ["bob@example.test", "example.org"]
    assert await h.kernel.stores.blocking.list("alice") == ["bob@example.test", "example.org"]


async def test_pushes_go_to_resources_that_asked_for_the_list(h: Harness) -> None:
    desk, desk_sink = await h.bind("alice", "desk")
    _phone, phone_sink = await h.bind("alice", "phone")
    laptop, laptop_sink = await h.bind("alice", "laptop")
    assert await blocklist(h, desk, desk_sink) == []
    await command(h, laptop, laptop_sink, "block", f"bob@{D}")
    (push,) = desk_sink.take()
    assert push.get("type") == "set"
    assert push.get("to") == f"alice@{D}/desk"
    assert push.get("from") is None
    block = push.find(BLOCK)
    assert block is not None
    assert [i.get("jid") for i in block] == [f"bob@{D}"]
    assert phone_sink.take() == []
    assert laptop_sink.take() == []  # the sender did not ask for the list either

    await command(h, laptop, laptop_sink, "unblock", f"bob@{D}")
    (push,) = desk_sink.take()
    unblock = push.find(UNBLOCK)
    assert unblock is not None
    assert [i.get("jid") for i in unblock] == [f"bob@{D}"]
    assert phone_sink.take() == []


async def test_unblock_some_and_all(h: Harness) -> None:
    session, sink = await h.bind("alice")
    await blocklist(h, session, sink)
    await command(h, session, sink, "block", f"bob@{D}", f"carol@{D}", "example.org")
    sink.take()
    reply = await command(h, session, sink, "unblock", f"carol@{D}", f"nobody@{D}")
    assert reply.get("type") == "result"
    sink.take()
    assert await blocklist(h, session, sink) == [f"bob@{D}", "example.org"]
    reply = await command(h, session, sink, "unblock")
    assert reply.get("type") == "result"
    (push,) = sink.take()
    unblock = push.find(UNBLOCK)
    assert unblock is not None
    assert len(unblock) == 0  # "unblock all" push
    assert await blocklist(h, session, sink) == []


async def test_block_without_items_is_a_bad_request(h: Harness) -> None:
    session, sink = await h.bind("alice")
    reply = await command(h, session, sink, "block")
    assert error_condition(reply) == "bad-request"


@pytest.mark.parametrize("verb", ["block", "unblock"])
@pytest.mark.parametrize("jid", ["@example.test", "bob@", "bob@example.test/", "a b@example.test"])
async def test_malformed_jids_are_refused(h: Harness, verb: str, jid: str) -> None:
    session, sink = await h.bind("alice")
    await command(h, session, sink, "block", f"bob@{D}")
    reply = await command(h, session, sink, verb, f"carol@{D}", jid)
    assert error_condition(reply) == "jid-malformed"
    # Nothing changed: the command is all or nothing.
    assert await h.kernel.stores.blocking.list("alice") == [f"bob@{D}"]


async def test_item_without_jid_is_a_bad_request(h: Harness) -> None:
    session, sink = await h.bind("alice")
    await h.send(
        session, f"<iq type='set' id='b1'><block xmlns='{ns.BLOCKING}'><item/></block></iq>"
    )
    (reply,) = sink.take()
    assert error_condition(reply) == "bad-request"


async def test_blocklist_of_another_account_is_not_served(h: Harness) -> None:
    await h.account("bob")
    session, sink = await h.bind("alice")
    await h.send(
        session,
        f"<iq type='get' id='b2' to='bob@{D}'><blocklist xmlns='{ns.BLOCKING}'/></iq>",
    )
    (reply,) = sink.take()
    assert error_condition(reply) == "service-unavailable"


# -- what the blocking user sends -------------------------------------------------------


async def test_message_to_blocked_contact_is_refused(h: Harness) -> None:
    alice, alice_sink = await online(h, "alice")
    _bob, bob_sink = await online(h, "bob")
    await command(h, alice, alice_sink, "block", f"bob@{D}")
    await h.send(alice, f"<message to='bob@{D}' type='chat' id='m1'><body>hi</body></message>")
    (err,) = alice_sink.take()
    assert err.tag == f"{{{ns.CLIENT}}}message"
    assert err.get("type") == "error"
    assert err.get("from") == f"bob@{D}"
    assert err.findtext(f"{{{ns.CLIENT}}}body") == "hi"
    assert error_condition(err) == "not-acceptable"
    error = err.find(f"{{{ns.CLIENT}}}error")
    assert error is not None
    assert error.get("type") == "cancel"
    assert error.find(f"{{{ns.BLOCKING_ERRORS}}}blocked") is not None
    assert bob_sink.take() == []


async def test_iq_to_blocked_contact_is_refused(h: Harness) -> None:
    alice, alice_sink = await online(h, "alice")
    _bob, bob_sink = await online(h, "bob")
    await command(h, alice, alice_sink, "block", f"bob@{D}")
    await h.send(alice, f"<iq type='get' id='q1' to='bob@{D}/res'><ping xmlns='{ns.PING}'/></iq>")
    (err,) = alice_sink.take()
    assert error_condition(err) == "not-acceptable"
    assert bob_sink.take() == []


async def test_directed_presence_to_blocked_contact_is_dropped(
    h: Harness, presences: list[tuple[str, str, str]]
) -> None:
    alice, alice_sink = await online(h, "alice")
    _bob, bob_sink = await online(h, "bob")
    await command(h, alice, alice_sink, "block", f"bob@{D}")
    presences.clear()
    await h.send(alice, f"<presence to='bob@{D}'/>")
    assert alice_sink.take() == []
    assert bob_sink.take() == []
    assert presences == []


async def test_own_domain_block_spares_the_server_and_oneself(h: Harness) -> None:
    alice, alice_sink = await online(h, "alice")
    bob, bob_sink = await online(h, "bob")
    await command(h, alice, alice_sink, "block", D)
    await h.send(bob, f"<message to='alice@{D}'><body>x</body></message>")
    assert alice_sink.take() == []
    assert error_condition(bob_sink.take()[0]) == "service-unavailable"
    # Own account and the server still answer.
    await h.send(alice, f"<iq type='get' id='v1'><vCard xmlns='{ns.VCARD}'/></iq>")
    (reply,) = alice_sink.take()
    assert reply.get("type") == "result"
    await h.send(alice, f"<iq type='get' id='d1' to='{D}'><query xmlns='{ns.DISCO_INFO}'/></iq>")
    (reply,) = alice_sink.take()
    assert reply.get("type") == "result"
    reply = await command(h, alice, alice_sink, "unblock", D)
    assert reply.get("type") == "result"
    await h.send(bob, f"<message to='alice@{D}'><body>y</body></message>")
    (msg,) = alice_sink.take()
    assert msg.findtext(f"{{{ns.CLIENT}}}body") == "y"


# -- what the blocked contact sends -----------------------------------------------------


@pytest.mark.parametrize("to", [f"alice@{D}", f"alice@{D}/res"])
async def test_message_from_blocked_contact_bounces(h: Harness, to: str) -> None:
    alice, alice_sink = await online(h, "alice")
    bob, bob_sink = await online(h, "bob")
    await command(h, alice, alice_sink, "block", f"bob@{D}")
    await h.send(bob, f"<message to='{to}' type='chat' id='m2'><body>hello</body></message>")
    assert alice_sink.take() == []
    (err,) = bob_sink.take()
    assert err.get("type") == "error"
    assert err.get("from") == to
    assert error_condition(err) == "service-unavailable"
    assert err.find(f"{{{ns.CLIENT}}}error/{{{ns.BLOCKING_ERRORS}}}blocked") is None


async def test_message_from_blocked_contact_is_not_stored_offline(h: Harness) -> None:
    alice, alice_sink = await online(h, "alice")
    await command(h, alice, alice_sink, "block", f"bob@{D}")
    await h.unbind(alice)
    bob, bob_sink = await online(h, "bob")
    await h.send(bob, f"<message to='alice@{D}' type='chat'><body>while away</body></message>")
    (err,) = bob_sink.take()
    assert error_condition(err) == "service-unavailable"
    assert await h.kernel.stores.offline.count("alice") == 0


async def test_offline_accounts_known_to_block_nothing_cost_no_query(h: Harness) -> None:
    """With the owner set loaded, a message to an offline account that blocks nothing reads no
    block list, and one blocked after start-up is still refused while its owner is away."""
    await h.kernel.hooks.fire(H.SERVER_STARTED, None)
    await h.account("carol")
    reads: list[str] = []
    store = h.kernel.stores.blocking
    original = store.list

    async def counting(login: str) -> list[str]:
        reads.append(login)
        return await original(login)

    store.list = counting  # type: ignore[method-assign,assignment]
    bob, bob_sink = await online(h, "bob")
    await h.send(bob, f"<message to='carol@{D}' type='chat'><body>hello</body></message>")
    assert bob_sink.take() == [] and "carol" not in reads
    alice, alice_sink = await online(h, "alice")
    await command(h, alice, alice_sink, "block", f"bob@{D}")
    await h.unbind(alice)
    await h.send(bob, f"<message to='alice@{D}' type='chat'><body>while away</body></message>")
    (err,) = bob_sink.take()
    assert error_condition(err) == "service-unavailable"


async def test_error_message_from_blocked_contact_is_dropped_silently(h: Harness) -> None:
    alice, alice_sink = await online(h, "alice")
    bob, bob_sink = await online(h, "bob")
    await command(h, alice, alice_sink, "block", f"bob@{D}")
    await h.send(bob, f"<message to='alice@{D}/res' type='error'><body>e</body></message>")
    assert alice_sink.take() == []
    assert bob_sink.take() == []


async def test_iq_from_blocked_contact(h: Harness) -> None:
    alice, alice_sink = await online(h, "alice")
    bob, bob_sink = await online(h, "bob")
    await command(h, alice, alice_sink, "block", f"bob@{D}")
    # get/set: service-unavailable, as if alice were offline.
    await h.send(bob, f"<iq type='get' id='q2' to='alice@{D}/res'><ping xmlns='{ns.PING}'/></iq>")
    (err,) = bob_sink.take()
    assert err.get("from") == f"alice@{D}/res"
    assert error_condition(err) == "service-unavailable"
    # result/error: dropped silently.
    await h.send(bob, f"<iq type='result' id='q3' to='alice@{D}/res'/>")
    assert bob_sink.take() == []
    assert alice_sink.take() == []


async def test_server_does_not_answer_for_the_blocking_account(h: Harness) -> None:
    alice, alice_sink = await online(h, "alice")
    bob, bob_sink = await online(h, "bob")
    await h.send(alice, f"<iq type='set' id='v1'><vCard xmlns='{ns.VCARD}'><FN>A</FN></vCard></iq>")
    await command(h, alice, alice_sink, "block", f"bob@{D}")
    alice_sink.take()
    await h.send(bob, f"<iq type='get' id='v2' to='alice@{D}'><vCard xmlns='{ns.VCARD}'/></iq>")
    (err,) = bob_sink.take()
    assert error_condition(err) == "service-unavailable"
    carol, carol_sink = await online(h, "carol")
    await h.send(carol, f"<iq type='get' id='v3' to='alice@{D}'><vCard xmlns='{ns.VCARD}'/></iq>")
    (reply,) = carol_sink.take()
    assert reply.get("type") == "result"


async def test_presence_from_blocked_contact_is_dropped_without_error(
    h: Harness, presences: list[tuple[str, str, str]]
) -> None:
    alice, alice_sink = await online(h, "alice")
    bob, bob_sink = await online(h, "bob")
    await command(h, alice, alice_sink, "block", f"bob@{D}")
    presences.clear()
    for kind in ("", " type='subscribe'", " type='probe'"):
        await h.send(bob, f"<presence to='alice@{D}'{kind}/>")
        await h.send(bob, f"<presence to='alice@{D}/res'{kind}/>")
    assert presences == []
    assert bob_sink.take() == []
    assert alice_sink.take() == []


async def test_only_the_blocked_resource_is_blocked(h: Harness) -> None:
    alice, alice_sink = await online(h, "alice")
    phone, phone_sink = await online(h, "bob", "phone")
    laptop, _laptop_sink = await online(h, "bob", "laptop")
    await command(h, alice, alice_sink, "block", f"bob@{D}/phone")
    await h.send(phone, f"<message to='alice@{D}/res'><body>1</body></message>")
    assert alice_sink.take() == []
    assert error_condition(phone_sink.take()[0]) == "service-unavailable"
    await h.send(laptop, f"<message to='alice@{D}/res'><body>2</body></message>")
    (msg,) = alice_sink.take()
    assert msg.findtext(f"{{{ns.CLIENT}}}body") == "2"


async def test_unblock_restores_communication(h: Harness) -> None:
    alice, alice_sink = await online(h, "alice")
    bob, bob_sink = await online(h, "bob")
    await command(h, alice, alice_sink, "block", f"bob@{D}")
    await command(h, alice, alice_sink, "unblock", f"bob@{D}")
    await h.send(bob, f"<message to='alice@{D}' type='chat'><body>back</body></message>")
    (msg,) = alice_sink.take()
    assert msg.findtext(f"{{{ns.CLIENT}}}body") == "back"
    await h.send(alice, f"<message to='bob@{D}' type='chat'><body>ok</body></message>")
    (msg,) = bob_sink.take()
    assert msg.findtext(f"{{{ns.CLIENT}}}body") == "ok"


async def test_block_survives_reconnection(h: Harness) -> None:
    alice, alice_sink = await online(h, "alice")
    await command(h, alice, alice_sink, "block", f"bob@{D}")
    await h.unbind(alice)
    alice, alice_sink = await online(h, "alice", "again")
    bob, bob_sink = await online(h, "bob")
    await h.send(bob, f"<message to='alice@{D}/again'><body>x</body></message>")
    assert alice_sink.take() == []
    assert error_condition(bob_sink.take()[0]) == "service-unavailable"


# -- the delivery filter ----------------------------------------------------------------


async def test_delivery_filter_drops_stanzas_both_ways(h: Harness) -> None:
    alice, alice_sink = await online(h, "alice")
    bob, bob_sink = await online(h, "bob")
    await command(h, alice, alice_sink, "block", f"bob@{D}")
    router = h.kernel.router
    # A presence broadcast from alice reaches bob's session directly.
    router.deliver(bob, x(f"<presence from='alice@{D}/res' to='bob@{D}'/>"))
    assert bob_sink.take() == []
    # Stanzas from bob never reach alice.
    router.deliver(
        alice, x(f"<message from='bob@{D}/res' to='alice@{D}/res'><body>x</body></message>")
    )
    router.deliver(alice, x(f"<presence from='bob@{D}/res' to='alice@{D}'/>"))
    assert alice_sink.take() == []
    assert bob_sink.take() == []
    # ...and IQ requests from bob are answered with service-unavailable.
    router.deliver(
        alice,
        x(f"<iq type='set' id='z' from='bob@{D}/res' to='alice@{D}/res'><q xmlns='urn:x'/></iq>"),
    )
    assert alice_sink.take() == []
    (err,) = bob_sink.take()
    assert error_condition(err) == "service-unavailable"
    # Others and the server are unaffected.
    router.deliver(alice, x(f"<message from='carol@{D}/res'><body>c</body></message>"))
    router.deliver(alice, x(f"<message from='{D}'><body>s</body></message>"))
    assert len(alice_sink.take()) == 2


# -- presence on block and unblock --------------------------------------------------------


async def test_block_and_unblock_send_presence_to_subscribed_contacts(
    h: Harness, presences: list[tuple[str, str, str]]
) -> None:
    roster = h.kernel.stores.roster
    await h.account("alice")
    for contact, sub in (
        ("bob", Subscription.FROM),
        ("carol", Subscription.TO),
        ("dave", Subscription.BOTH),
    ):
        await h.account(contact)
        await roster.set_item("alice", RosterItem(contact=f"{contact}@{D}", subscription=sub))
    desk, desk_sink = await online(h, "alice", "desk")
    desk.presence = x("<presence><show>away</show></presence>")
    _idle, _ = await h.bind("alice", "idle")  # bound but not available: sends nothing
    presences.clear()

    await command(h, desk, desk_sink, "block", f"bob@{D}", f"carol@{D}", f"dave@{D}/phone")
    assert sorted(presences) == [
        (f"alice@{D}/desk", f"bob@{D}", "unavailable"),
        (f"alice@{D}/desk", f"dave@{D}/phone", "unavailable"),
    ]
    presences.clear()
    # Already blocked: nothing new to announce.
    await command(h, desk, desk_sink, "block", f"bob@{D}")
    assert presences == []

    await command(h, desk, desk_sink, "unblock")
    assert sorted(presences) == [
        (f"alice@{D}", f"carol@{D}", "probe"),  # alice wants carol's and dave's presence back
        (f"alice@{D}", f"dave@{D}", "probe"),
        (f"alice@{D}/desk", f"bob@{D}", "available"),
        (f"alice@{D}/desk", f"dave@{D}/phone", "available"),
    ]


async def test_domain_block_sends_unavailable_to_subscribed_contacts_there(
    h: Harness, presences: list[tuple[str, str, str]]
) -> None:
    await h.account("alice")
    await h.account("bob")
    await h.kernel.stores.roster.set_item(
        "alice", RosterItem(contact=f"bob@{D}", subscription=Subscription.BOTH)
    )
    desk, desk_sink = await online(h, "alice", "desk")
    presences.clear()
    await command(h, desk, desk_sink, "block", D)
    assert presences == [(f"alice@{D}/desk", f"bob@{D}", "unavailable")]


# -- with the real roster and presence features -------------------------------------------


async def test_blocking_with_presence_subscriptions(tmp_path: Path) -> None:
    h = await make_harness(tmp_path, features=["message", "roster", "presence", "blocking"])
    try:
        roster = h.kernel.stores.roster
        for user, contact in (("alice", "bob"), ("bob", "alice")):
            await h.account(user)
            await roster.set_item(
                user, RosterItem(contact=f"{contact}@{D}", subscription=Subscription.BOTH)
            )
        alice, alice_sink = await h.login("alice")
        bob, bob_sink = await h.login("bob")
        alice_sink.take()

        await command(h, alice, alice_sink, "block", f"bob@{D}")
        # §3.3: bob sees alice go offline...
        (gone,) = bob_sink.take()
        assert gone.tag == f"{{{ns.CLIENT}}}presence"
        assert gone.get("type") == "unavailable"
        assert gone.get("from") == f"alice@{D}/res"
        # ...and no presence flows either way any more.
        await h.send(bob, "<presence><show>dnd</show></presence>")
        await h.send(alice, "<presence><show>away</show></presence>")
        assert [p.get("from") for p in alice_sink.take()] == [f"alice@{D}/res"]  # own echo
        assert [p.get("from") for p in bob_sink.take()] == [f"bob@{D}/res"]
        # A new resource of bob's is not told alice's presence at login either.
        phone, phone_sink = await h.bind("bob", "phone")
        await h.send(phone, "<presence/>")
        assert all(p.get("from", "").startswith(f"bob@{D}") for p in phone_sink.take())
        assert alice_sink.take() == []
        await h.unbind(phone)
        bob_sink.take()

        await command(h, alice, alice_sink, "unblock", f"bob@{D}")
        # Bob gets alice's current presence, alice gets bob's (probe answer).
        (back,) = bob_sink.take()
        assert back.get("from") == f"alice@{D}/res"
        assert back.findtext(f"{{{ns.CLIENT}}}show") == "away"
        (seen,) = alice_sink.take()
        assert seen.get("from") == f"bob@{D}/res"
        assert seen.findtext(f"{{{ns.CLIENT}}}show") == "dnd"
    finally:
        await h.close()


async def test_owner_set_skips_the_store_yet_keeps_blocks_across_logins(h: Harness) -> None:
    from carewire.core import hook_names as H

    await h.account("carol")
    await h.kernel.stores.blocking.add("carol", [f"mallory@{h.domain}"])
    await h.kernel.hooks.fire(H.SERVER_STARTED, None)  # loads who blocks anything
    carol, csink = await online(h, "carol")
    assert await blocklist(h, carol, csink) == [f"mallory@{h.domain}"]
    alice, asink = await online(h, "alice")  # blocks nothing: no store read at bind
    assert await blocklist(h, alice, asink) == []
    await command(h, alice, asink, "block", f"mallory@{h.domain}")
    asink.take()
    await h.unbind(alice)
    alice, asink = await online(h, "alice")  # now known as an owner: the list is loaded
    assert await blocklist(h, alice, asink) == [f"mallory@{h.domain}"]
