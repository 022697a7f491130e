"""Presence and presence subscriptions, RFC 6121 §3 and §4 (carewire.features.presence)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.core import hook_names as H
from carewire.core.events import SessionEvent
from carewire.core.sessions import Session
from carewire.core.stores import Subscription
from carewire.features.presence import parse_priority
from carewire.features.roster import Rosters
from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaError
from tests.features.harness import Harness, error_condition, make_harness, x

ROSTER = f"{{{ns.ROSTER}}}"
IQ = f"{{{ns.CLIENT}}}iq"
PRESENCE = f"{{{ns.CLIENT}}}presence"
ALICE = "alice@example.test"
BOB = "bob@example.test"
CAROL = "carol@example.test"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=["message", "roster", "presence"])
    yield harness
    await harness.close()


def presences(stanzas: list[Element]) -> list[tuple[str | None, str | None]]:
    """(type, from) of each presence stanza received."""
    return [(s.get("type"), s.get("from")) for s in stanzas if s.tag == PRESENCE]


def pushed(stanzas: list[Element]) -> list[dict[str, str]]:
    """The attributes of the item of each roster push."""
    out = []
    for s in stanzas:
        item = s.find(f"{ROSTER}query/{ROSTER}item")
        if s.tag == IQ and s.get("type") == "set" and item is not None:
            out.append(dict(item.attrib))
    return out


async def subscription(h: Harness, owner: str, contact: str) -> tuple[Subscription, bool] | None:
    """(subscription, ask) of the stored item, or None."""
    item = await h.kernel.stores.roster.get_item(owner, contact)
    return None if item is None else (item.subscription, item.is_pending_out)


async def befriend(h: Harness, a: Session, b: Session) -> None:
    """Mutual subscription ('both') between two online users."""
    a_bare, b_bare = str(a.jid.bare), str(b.jid.bare)
    await h.send(a, f"<presence type='subscribe' to='{b_bare}'/>")
    await h.send(b, f"<presence type='subscribed' to='{a_bare}'/>")
    await h.send(b, f"<presence type='subscribe' to='{a_bare}'/>")
    await h.send(a, f"<presence type='subscribed' to='{b_bare}'/>")


# -- the subscription handshake (§3.1) ----------------------------------------------------


async def test_request_and_approval(h: Harness) -> None:
    alice, asink = await h.login("alice")
    bob, bsink = await h.login("bob")
    await h.send(
        alice, f"<presence type='subscribe' to='{BOB}' id='s1'><status>Ward 4</status></presence>"
    )
    # §3.1.2: alice's roster gets the item with ask='subscribe'.
    assert pushed(asink.take()) == [{"jid": BOB, "subscription": "none", "ask": "subscribe"}]
    # §3.1.3: bob receives the request, stamped with alice's bare JID; no roster push yet.
    got = bsink.take()
    assert presences(got) == [("subscribe", ALICE)]
    assert got[0].get("id") == "s1" and got[0].findtext(f"{{{ns.CLIENT}}}status") == "Ward 4"
    assert pushed(got) == []
    assert await subscription(h, "bob", ALICE) is None

    await h.send(bob, f"<presence type='subscribed' to='{ALICE}'/>")
    # §3.1.5: bob's roster shows 'from'...
    assert pushed(bsink.take()) == [{"jid": ALICE, "subscription": "from"}]
    # §3.1.6: ...alice's shows 'to' (no more ask), she gets the approval and bob's presence.
    got = asink.take()
    assert pushed(got) == [{"jid": BOB, "subscription": "to"}]
    assert presences(got) == [("subscribed", BOB), (None, str(bob.jid))]
    assert await subscription(h, "alice", BOB) == (Subscription.TO, False)
    assert await subscription(h, "bob", ALICE) == (Subscription.FROM, False)
    assert await h.kernel.stores.roster.list_pending_in("bob") == []


async def test_mutual_subscription(h: Harness) -> None:
    alice, asink = await h.login("alice")
    bob, bsink = await h.login("bob")
    await befriend(h, alice, bob)
    assert await subscription(h, "alice", BOB) == (Subscription.BOTH, False)
    assert await subscription(h, "bob", ALICE) == (Subscription.BOTH, False)
    assert pushed(asink.take())[-1] == {"jid": BOB, "subscription": "both"}
    assert pushed(bsink.take())[-1] == {"jid": ALICE, "subscription": "both"}


async def test_request_to_an_offline_contact_is_delivered_at_login(h: Harness) -> None:
    alice, _asink = await h.login("alice")
    await h.account("bob")
    await h.send(alice, f"<presence type='subscribe' to='{BOB}'/>")
    bob, bsink = await h.bind("bob")
    await h.send(bob, "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
    assert presences(bsink.take()) == []  # not before bob is available
    await h.send(bob, "<presence/>")
    assert ("subscribe", ALICE) in presences(bsink.take())
    # Unanswered: delivered again at the next login...
    await h.unbind(bob)
    bob, bsink = await h.bind("bob")
    await h.send(bob, "<presence/>")
    assert ("subscribe", ALICE) in presences(bsink.take())
    # ...but not once answered.
    await h.send(bob, f"<presence type='subscribed' to='{ALICE}'/>")
    await h.unbind(bob)
    bob, bsink = await h.bind("bob")
    await h.send(bob, "<presence/>")
    assert ("subscribe", ALICE) not in presences(bsink.take())
    assert await subscription(h, "alice", BOB) == (Subscription.TO, False)


async def test_repeated_request_is_not_delivered_twice(h: Harness) -> None:
    alice, _ = await h.login("alice")
    _bob, bsink = await h.login("bob")
    await h.send(alice, f"<presence type='subscribe' to='{BOB}'/>")
    await h.send(alice, f"<presence type='subscribe' to='{BOB}'/>")
    assert presences(bsink.take()) == [("subscribe", ALICE)]


async def test_subscribe_when_already_subscribed_is_answered_by_the_server(h: Harness) -> None:
    alice, asink = await h.login("alice")
    bob, bsink = await h.login("bob")
    await h.send(alice, f"<presence type='subscribe' to='{BOB}'/>")
    await h.send(bob, f"<presence type='subscribed' to='{ALICE}'/>")
    asink.take()
    bsink.take()
    await h.send(alice, f"<presence type='subscribe' to='{BOB}'/>")
    # §3.1.3: bob is not asked again; his server auto-replies, which changes nothing for alice.
    assert bsink.take() == []
    assert asink.take() == []
    assert await subscription(h, "alice", BOB) == (Subscription.TO, False)


async def test_subscription_stanza_to_a_full_jid_is_handled_as_bare(h: Harness) -> None:
    alice, _asink = await h.login("alice")
    _bob, bsink = await h.login("bob", "phone")
    await h.send(alice, f"<presence type='subscribe' to='{BOB}/phone'/>")
    got = bsink.take()
    assert presences(got) == [("subscribe", ALICE)]
    assert got[0].get("to") == BOB
    assert await subscription(h, "alice", BOB) == (Subscription.NONE, True)


async def test_subscription_stanza_without_to_is_bad_request(h: Harness) -> None:
    alice, asink = await h.login("alice")
    await h.send(alice, "<presence type='subscribe' id='p'/>")
    (err,) = asink.take()
    assert error_condition(err) == "bad-request"


async def test_subscription_to_unknown_user_is_ignored(h: Harness) -> None:
    alice, asink = await h.login("alice")
    await h.send(alice, "<presence type='subscribe' to='nobody@example.test'/>")
    assert [s for s in asink.take() if s.get("type") == "error"] == []
    assert await h.kernel.stores.roster.list_pending_in("nobody") == []


async def test_subscription_to_a_remote_domain_fails(h: Harness) -> None:
    alice, asink = await h.login("alice")
    await h.send(alice, "<presence type='subscribe' to='romeo@montague.example' id='r'/>")
    (err,) = asink.take()
    assert err.get("type") == "error" and error_condition(err) == "remote-server-not-found"
    assert await subscription(h, "alice", "romeo@montague.example") is None


async def test_subscribing_to_oneself_is_ignored(h: Harness) -> None:
    alice, asink = await h.login("alice")
    await h.send(alice, f"<presence type='subscribe' to='{ALICE}'/>")
    assert asink.take() == []
    assert await subscription(h, "alice", ALICE) is None


# -- refusing, cancelling, unsubscribing (§3.2, §3.3) -------------------------------------------


async def test_denying_a_request(h: Harness) -> None:
    alice, asink = await h.login("alice")
    bob, _bsink = await h.login("bob")
    await h.send(alice, f"<presence type='subscribe' to='{BOB}'/>")
    asink.take()
    await h.send(bob, f"<presence type='unsubscribed' to='{ALICE}'/>")
    got = asink.take()
    assert pushed(got) == [{"jid": BOB, "subscription": "none"}]
    assert presences(got) == [("unsubscribed", BOB)]
    assert await h.kernel.stores.roster.list_pending_in("bob") == []


async def test_unsubscribe(h: Harness) -> None:
    alice, asink = await h.login("alice")
    bob, bsink = await h.login("bob")
    await befriend(h, alice, bob)
    asink.take()
    bsink.take()
    await h.send(alice, f"<presence type='unsubscribe' to='{BOB}'/>")
    # §3.3.2: alice's item goes both → from.
    got = asink.take()
    assert pushed(got) == [{"jid": BOB, "subscription": "from"}]
    # §3.3.3: bob's server sends alice bob's unavailable presence.
    assert presences(got) == [("unavailable", str(bob.jid))]
    got = bsink.take()
    assert pushed(got) == [{"jid": ALICE, "subscription": "to"}]
    assert presences(got) == [("unsubscribe", ALICE)]
    # Bob's presence changes no longer reach alice; alice's still reach bob.
    await h.send(bob, "<presence><show>away</show></presence>")
    assert presences(asink.take()) == []
    await h.send(alice, "<presence><show>dnd</show></presence>")
    assert (None, str(alice.jid)) in presences(bsink.take())


async def test_cancelling_a_subscription(h: Harness) -> None:
    alice, asink = await h.login("alice")
    bob, bsink = await h.login("bob")
    await h.send(alice, f"<presence type='subscribe' to='{BOB}'/>")
    await h.send(bob, f"<presence type='subscribed' to='{ALICE}'/>")
    asink.take()
    bsink.take()
    await h.send(bob, f"<presence type='unsubscribed' to='{ALICE}'/>")
    assert pushed(bsink.take()) == [{"jid": ALICE, "subscription": "none"}]
    got = asink.take()
    assert pushed(got) == [{"jid": BOB, "subscription": "none"}]
    # §3.2.2: alice hears the cancellation and bob going offline for her.
    assert set(presences(got)) == {("unsubscribed", BOB), ("unavailable", str(bob.jid))}
    await h.send(bob, "<presence><show>away</show></presence>")
    assert presences(asink.take()) == []


async def test_withdrawing_a_pending_request(h: Harness) -> None:
    alice, asink = await h.login("alice")
    _bob, bsink = await h.login("bob")
    await h.send(alice, f"<presence type='subscribe' to='{BOB}'/>")
    asink.take()
    bsink.take()
    await h.send(alice, f"<presence type='unsubscribe' to='{BOB}'/>")
    assert pushed(asink.take()) == [{"jid": BOB, "subscription": "none"}]
    assert presences(bsink.take()) == [("unsubscribe", ALICE)]
    assert await h.kernel.stores.roster.list_pending_in("bob") == []


# -- pre-approval (§3.4) ----------------------------------------------------------------


async def test_pre_approval(h: Harness) -> None:
    alice, asink = await h.login("alice")
    bob, bsink = await h.login("bob")
    await h.send(bob, f"<presence type='subscribed' to='{ALICE}'/>")
    # Recorded, pushed with approved='true', not routed to alice.
    assert pushed(bsink.take()) == [{"jid": ALICE, "subscription": "none", "approved": "true"}]
    assert asink.take() == []
    await h.send(alice, f"<presence type='subscribe' to='{BOB}'/>")
    # Bob is not asked: his server approves, pushes 'from' and drops the pre-approval.
    got = bsink.take()
    assert presences(got) == []
    assert pushed(got) == [{"jid": ALICE, "subscription": "from"}]
    got = asink.take()
    assert pushed(got)[-1] == {"jid": BOB, "subscription": "to"}
    assert presences(got) == [("subscribed", BOB), (None, str(bob.jid))]
    stored = await h.kernel.stores.roster.get_item("bob", ALICE)
    assert stored is not None and not stored.is_approved


async def test_pre_approval_can_be_cancelled(h: Harness) -> None:
    alice, asink = await h.login("alice")
    bob, bsink = await h.login("bob")
    await h.send(bob, f"<presence type='subscribed' to='{ALICE}'/>")
    await h.send(bob, f"<presence type='unsubscribed' to='{ALICE}'/>")
    assert pushed(bsink.take())[-1] == {"jid": ALICE, "subscription": "none"}
    assert asink.take() == []
    await h.send(alice, f"<presence type='subscribe' to='{BOB}'/>")
    assert presences(bsink.take()) == [("subscribe", ALICE)]  # asked as usual


# -- broadcast (§4.2, §4.4, §4.5) -----------------------------------------------------------


async def test_initial_presence_is_broadcast_to_subscribers_and_own_resources(h: Harness) -> None:
    alice, asink = await h.login("alice", "desk")
    bob, bsink = await h.login("bob")
    _carol, csink = await h.login("carol")
    await h.send(bob, f"<presence type='subscribe' to='{ALICE}'/>")
    await h.send(alice, f"<presence type='subscribed' to='{BOB}'/>")  # bob: to, alice: from
    await h.unbind(alice)
    for sink in (asink, bsink, csink):
        sink.take()
    alice, asink = await h.bind("alice", "desk")
    _tablet, tsink = await h.login("alice", "tablet")
    await h.send(alice, "<presence><show>chat</show></presence>")
    expected = (None, str(alice.jid))
    assert expected in presences(bsink.take())
    assert presences(csink.take()) == []  # carol is no subscriber
    assert expected in presences(tsink.take())
    assert expected in presences(asink.take())  # §4.2.2: including the sender
    assert alice.presence is not None
    assert alice.presence.findtext(f"{{{ns.CLIENT}}}show") == "chat"


async def test_login_probes_contacts_and_own_resources(h: Harness) -> None:
    alice, _ = await h.login("alice", "desk")
    bob, _ = await h.login("bob")
    carol, _ = await h.login("carol")
    for contact in (bob, carol):
        await h.send(alice, f"<presence type='subscribe' to='{contact.jid.bare}'/>")
        await h.send(contact, f"<presence type='subscribed' to='{ALICE}'/>")
    await h.send(bob, "<presence><status>In theatre</status></presence>")
    await h.unbind(carol)
    tablet, tsink = await h.bind("alice", "tablet")
    await h.send(tablet, "<presence/>")
    got = tsink.take()
    # Bob's current presence, carol's unavailability (§4.3.2), alice's own desk.
    assert (None, str(bob.jid)) in presences(got)
    assert ("unavailable", CAROL) in presences(got)
    assert (None, str(alice.jid)) in presences(got)
    (from_bob,) = [s for s in got if s.get("from") == str(bob.jid)]
    assert from_bob.findtext(f"{{{ns.CLIENT}}}status") == "In theatre"
    assert from_bob.get("to") == str(tablet.jid)


async def test_subsequent_presence_does_not_probe_again(h: Harness) -> None:
    alice, asink = await h.login("alice")
    bob, _ = await h.login("bob")
    await h.send(alice, f"<presence type='subscribe' to='{BOB}'/>")
    await h.send(bob, f"<presence type='subscribed' to='{ALICE}'/>")
    asink.take()
    fired: list[Session] = []
    h.kernel.hooks.on(H.SESSION_INITIAL_PRESENCE, lambda e: fired.append(e.session))
    await h.send(alice, "<presence><show>away</show></presence>")
    assert presences(asink.take()) == [(None, str(alice.jid))]  # only her own reflection
    assert fired == []


async def test_initial_presence_fires_the_hook_once(h: Harness) -> None:
    fired: list[SessionEvent] = []
    h.kernel.hooks.on(H.SESSION_INITIAL_PRESENCE, fired.append)
    alice, _ = await h.bind("alice")
    await h.send(alice, "<presence/>")
    await h.send(alice, "<presence><show>away</show></presence>")
    assert [e.session for e in fired] == [alice]
    # After unavailable, the next available presence is initial again.
    await h.send(alice, "<presence type='unavailable'/>")
    await h.send(alice, "<presence/>")
    assert len(fired) == 2


async def test_presence_is_kept_as_a_copy(h: Harness) -> None:
    alice, _ = await h.bind("alice")
    stanza = x("<presence><show>xa</show></presence>")
    await h.send(alice, stanza)
    assert alice.presence is not None and alice.presence is not stanza
    stanza.clear()
    assert alice.presence.findtext(f"{{{ns.CLIENT}}}show") == "xa"


async def test_explicit_unavailable(h: Harness) -> None:
    alice, asink = await h.login("alice", "desk")
    _tablet, tsink = await h.login("alice", "tablet")
    bob, bsink = await h.login("bob")
    await befriend(h, alice, bob)
    for sink in (asink, tsink, bsink):
        sink.take()
    await h.send(alice, "<presence type='unavailable'><status>Off shift</status></presence>")
    assert alice.presence is None
    got = bsink.take()
    assert presences(got) == [("unavailable", str(alice.jid))]
    assert got[0].findtext(f"{{{ns.CLIENT}}}status") == "Off shift"
    assert presences(tsink.take()) == [("unavailable", str(alice.jid))]


async def test_unavailable_on_close_without_unavailable_presence(h: Harness) -> None:
    alice, asink = await h.login("alice", "desk")
    _tablet, tsink = await h.login("alice", "tablet")
    bob, bsink = await h.login("bob")
    await befriend(h, alice, bob)
    for sink in (asink, tsink, bsink):
        sink.take()
    await h.unbind(alice)  # the connection dropped
    assert presences(bsink.take()) == [("unavailable", str(alice.jid))]
    assert presences(tsink.take()) == [("unavailable", str(alice.jid))]


async def test_closing_an_unavailable_session_sends_nothing(h: Harness) -> None:
    alice, _ = await h.bind("alice")
    _bob, bsink = await h.login("bob")
    await h.unbind(alice)
    assert bsink.take() == []


async def test_inbound_presence_goes_to_available_resources_only(h: Harness) -> None:
    _alice, asink = await h.login("alice", "desk")
    _idle, isink = await h.bind("alice", "idle")
    _negative, nsink = await h.login("alice", "pager", priority=-1)
    bob, _ = await h.login("bob")
    asink.take()
    nsink.take()
    await h.send(bob, f"<presence to='{ALICE}'/>")
    assert presences(asink.take()) == [(None, str(bob.jid))]
    assert presences(nsink.take()) == [(None, str(bob.jid))]
    assert isink.take() == []


# -- priority (§4.7.2.3) -----------------------------------------------------------------


async def test_priority_sets_the_session_priority(h: Harness) -> None:
    alice, _ = await h.bind("alice")
    await h.send(alice, "<presence><priority>-5</priority></presence>")
    assert alice.priority == -5
    await h.send(alice, "<presence><priority> 127 </priority></presence>")
    assert alice.priority == 127
    await h.send(alice, "<presence/>")
    assert alice.priority == 0


@pytest.mark.parametrize("value", ["128", "-129", "1.5", "high", "", "1_0", "٣"])
async def test_bad_priority_is_bad_request(h: Harness, value: str) -> None:
    alice, asink = await h.bind("alice")
    _bob, _bsink = await h.login("bob")
    await h.send(alice, f"<presence id='p'><priority>{value}</priority></presence>")
    (err,) = asink.take()
    assert err.get("type") == "error" and error_condition(err) == "bad-request"
    assert alice.presence is None and alice.priority == 0


def test_parse_priority() -> None:
    assert parse_priority(x("<presence/>")) == 0
    assert parse_priority(x("<presence><priority>+7</priority></presence>")) == 7
    with pytest.raises(StanzaError):
        parse_priority(x("<presence><priority>300</priority></presence>"))


async def test_unknown_presence_type_is_bad_request(h: Harness) -> None:
    alice, asink = await h.login("alice")
    await h.send(alice, "<presence type='invisible'/>")
    (err,) = asink.take()
    assert error_condition(err) == "bad-request"


# -- directed presence (§4.6) -----------------------------------------------------------------


async def test_directed_presence_and_its_unavailable_on_close(h: Harness) -> None:
    alice, _ = await h.login("alice")
    _carol, csink = await h.login("carol")
    await h.send(alice, f"<presence to='{CAROL}'><show>chat</show></presence>")
    assert presences(csink.take()) == [(None, str(alice.jid))]
    await h.unbind(alice)
    assert presences(csink.take()) == [("unavailable", str(alice.jid))]


async def test_directed_presence_to_a_full_jid(h: Harness) -> None:
    alice, _ = await h.login("alice")
    _desk, dsink = await h.login("carol", "desk")
    _phone, psink = await h.login("carol", "phone")
    dsink.take()
    await h.send(alice, f"<presence to='{CAROL}/phone'/>")
    assert presences(psink.take()) == [(None, str(alice.jid))]
    assert dsink.take() == []
    await h.send(alice, "<presence type='unavailable'/>")
    assert presences(psink.take()) == [("unavailable", str(alice.jid))]
    assert dsink.take() == []


async def test_directed_unavailable_forgets_the_target(h: Harness) -> None:
    alice, _ = await h.login("alice")
    _carol, csink = await h.login("carol")
    await h.send(alice, f"<presence to='{CAROL}'/>")
    await h.send(alice, f"<presence to='{CAROL}' type='unavailable'/>")
    assert presences(csink.take()) == [(None, str(alice.jid)), ("unavailable", str(alice.jid))]
    await h.unbind(alice)
    assert csink.take() == []


async def test_directed_presence_to_a_subscriber_is_not_repeated(h: Harness) -> None:
    alice, _ = await h.login("alice")
    bob, bsink = await h.login("bob")
    await befriend(h, alice, bob)
    await h.send(alice, f"<presence to='{BOB}'/>")
    bsink.take()
    await h.unbind(alice)
    assert presences(bsink.take()) == [("unavailable", str(alice.jid))]


async def test_presence_to_unknown_users_and_resources_is_ignored(h: Harness) -> None:
    alice, asink = await h.login("alice")
    await h.send(alice, "<presence to='nobody@example.test'/>")
    await h.send(alice, "<presence to='nobody@example.test' type='probe'/>")
    await h.send(alice, "<presence to='nobody@example.test' type='unsubscribed'/>")
    await h.account("carol")
    await h.send(alice, f"<presence to='{CAROL}/nowhere'/>")
    assert asink.take() == []


# -- probes (§4.3) -------------------------------------------------------------------------


async def test_probe_from_a_subscriber_is_answered(h: Harness) -> None:
    alice, asink = await h.login("alice")
    bob, _ = await h.login("bob", "desk")
    pager, _ = await h.login("bob", "pager")
    await h.send(alice, f"<presence type='subscribe' to='{BOB}'/>")
    await h.send(bob, f"<presence type='subscribed' to='{ALICE}'/>")
    asink.take()
    await h.send(alice, f"<presence type='probe' to='{BOB}'/>")
    got = presences(asink.take())
    assert sorted(got, key=str) == sorted([(None, str(bob.jid)), (None, str(pager.jid))], key=str)
    await h.unbind(bob)
    await h.unbind(pager)
    asink.take()
    await h.send(alice, f"<presence type='probe' to='{BOB}'/>")
    assert presences(asink.take()) == [("unavailable", BOB)]


async def test_probe_from_a_non_subscriber_reveals_nothing(h: Harness) -> None:
    carol, csink = await h.login("carol")
    await h.login("bob")
    await h.send(carol, f"<presence type='probe' to='{BOB}'/>")
    assert csink.take() == []


async def test_probe_from_a_directed_presence_target_is_answered(h: Harness) -> None:
    carol, csink = await h.login("carol")
    bob, _ = await h.login("bob")
    await h.send(bob, f"<presence to='{CAROL}'/>")
    csink.take()
    await h.send(carol, f"<presence type='probe' to='{BOB}'/>")
    assert presences(csink.take()) == [(None, str(bob.jid))]


async def test_account_removal_makes_its_resources_unavailable(h: Harness) -> None:
    alice, _ = await h.login("alice")
    bob, bsink = await h.login("bob")
    await befriend(h, alice, bob)
    bsink.take()
    assert await h.kernel.accounts.remove("alice")
    assert ("unavailable", str(alice.jid)) in presences(bsink.take())


# -- working with the other features ---------------------------------------------------


async def test_offline_messages_arrive_with_initial_presence(tmp_path: Path) -> None:
    h = await make_harness(tmp_path, features=["message", "offline", "roster", "presence"])
    try:
        alice, _ = await h.login("alice")
        await h.account("bob")
        await h.send(
            alice, f"<message to='{BOB}' type='chat'><body>Bed 12 needs review</body></message>"
        )
        bob, bsink = await h.bind("bob")
        assert bsink.take() == []
        await h.send(bob, "<presence/>")
        bodies = [s.findtext(f"{{{ns.CLIENT}}}body") for s in bsink.take()]
        assert "Bed 12 needs review" in bodies
    finally:
        await h.close()


async def test_crossing_requests_end_in_mutual_subscription(h: Harness) -> None:
    alice, asink = await h.login("alice")
    bob, bsink = await h.login("bob")
    await asyncio.gather(
        h.send(alice, f"<presence type='subscribe' to='{BOB}'/>"),
        h.send(bob, f"<presence type='subscribe' to='{ALICE}'/>"),
    )
    await asyncio.gather(
        h.send(alice, f"<presence type='subscribed' to='{BOB}'/>"),
        h.send(bob, f"<presence type='subscribed' to='{ALICE}'/>"),
    )
    assert await subscription(h, "alice", BOB) == (Subscription.BOTH, False)
    assert await subscription(h, "bob", ALICE) == (Subscription.BOTH, False)
    assert pushed(asink.take())[-1] == {"jid": BOB, "subscription": "both"}
    assert pushed(bsink.take())[-1] == {"jid": ALICE, "subscription": "both"}


async def test_concurrent_roster_changes_keep_cache_and_store_in_step(h: Harness) -> None:
    desk, dsink = await h.login("alice", "desk")
    tablet, _ = await h.login("alice", "tablet")
    await asyncio.gather(
        *(
            h.send(
                session,
                f"<iq type='set' id='s{i}'><query xmlns='jabber:iq:roster'>"
                f"<item jid='contact{i}@example.test'/></query></iq>",
            )
            for i, session in enumerate([desk, tablet] * 5)
        )
    )
    versions = [
        int(s.find(f"{ROSTER}query").get("ver", ""))  # type: ignore[union-attr]
        for s in dsink.take()
        if s.get("type") == "set"
    ]
    assert sorted(versions) == list(range(1, 11))
    cached = Rosters.of(h.kernel.ctx).cached("alice")
    assert cached is not None
    version, items = await h.kernel.stores.roster.get_roster("alice")
    assert (cached.version, sorted(cached.items)) == (version, sorted(i.contact for i in items))
