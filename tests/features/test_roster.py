"""Roster management, RFC 6121 §2 (carewire.features.roster)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.core.feature import StreamPhase
from carewire.core.sessions import Session
from carewire.core.stores import RosterItem, Subscription
from carewire.features.roster import MAX_GROUP_LENGTH, MAX_NAME_LENGTH, Rosters
from carewire.xmpp import ns
from tests.features.harness import Harness, RecordingSink, error_condition, make_harness

ROSTER = f"{{{ns.ROSTER}}}"
IQ = f"{{{ns.CLIENT}}}iq"
PRESENCE = f"{{{ns.CLIENT}}}presence"
BOB = "bob@example.test"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=["message", "roster", "presence"])
    yield harness
    await harness.close()


def reply(sink: RecordingSink, iq_id: str) -> Element:
    """The one response to IQ ``iq_id`` among what the session received."""
    (found,) = [s for s in sink.take() if s.tag == IQ and s.get("id") == iq_id]
    return found


def pushes(stanzas: list[Element]) -> list[Element]:
    """The <item/> of each roster push."""
    return [
        s.find(f"{ROSTER}query/{ROSTER}item")  # type: ignore[misc]
        for s in stanzas
        if s.tag == IQ and s.get("type") == "set" and s.find(f"{ROSTER}query") is not None
    ]


async def roster_set(h: Harness, session: Session, item: str, iq_id: str = "set1") -> None:
    await h.send(
        session, f"<iq type='set' id='{iq_id}'><query xmlns='jabber:iq:roster'>{item}</query></iq>"
    )


async def set_error(h: Harness, item: str) -> str | None:
    """Send a roster set as a fresh session of alice; the error condition of the reply."""
    session, sink = await h.login("alice", "errors")
    await h.send(
        session, f"<iq type='set' id='bad'><query xmlns='jabber:iq:roster'>{item}</query></iq>"
    )
    answer = reply(sink, "bad")
    assert answer.get("type") == "error"
    return error_condition(answer)


async def roster_items(h: Harness, session: Session, sink: RecordingSink) -> dict[str, Element]:
    await h.send(session, "<iq type='get' id='get'><query xmlns='jabber:iq:roster'/></iq>")
    query = reply(sink, "get").find(f"{ROSTER}query")
    assert query is not None
    return {i.get("jid", ""): i for i in query.findall(f"{ROSTER}item")}


# -- get ------------------------------------------------------------------------


async def test_get_empty_roster_makes_the_resource_interested(h: Harness) -> None:
    session, sink = await h.bind("alice")
    assert not session.is_interested
    await h.send(session, "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
    answer = reply(sink, "r1")
    assert answer.get("type") == "result"
    query = answer.find(f"{ROSTER}query")
    assert query is not None and len(query) == 0
    assert query.get("ver") == "0"
    assert session.is_interested


async def test_get_lists_items_with_name_groups_and_version(h: Harness) -> None:
    alice, sink = await h.login("alice")
    await roster_set(
        h,
        alice,
        f"<item jid='{BOB}' name='Dr Bob'><group>Cardio</group><group>On call</group></item>",
    )
    await roster_set(h, alice, "<item jid='carol@example.test'/>", "set2")
    sink.take()
    items = await roster_items(h, alice, sink)
    assert list(items) == [BOB, "carol@example.test"]
    bob = items[BOB]
    assert bob.get("name") == "Dr Bob"
    assert bob.get("subscription") == "none"
    assert bob.get("ask") is None and bob.get("approved") is None
    assert [g.text for g in bob.findall(f"{ROSTER}group")] == ["Cardio", "On call"]
    assert items["carol@example.test"].get("name") is None


# -- set and push ---------------------------------------------------------------------


async def test_set_answers_result_and_pushes_to_every_interested_resource(h: Harness) -> None:
    alice, sink = await h.login("alice", "desk")
    tablet, tablet_sink = await h.login("alice", "tablet")
    _idle, idle_sink = await h.bind("alice", "idle")  # never asked for the roster
    await roster_set(h, alice, f"<item jid='{BOB}' name='Bob'/>")
    received = sink.take()
    assert [s.get("type") for s in received if s.get("id") == "set1"] == ["result"]
    for session, got in ((alice, received), (tablet, tablet_sink.take())):
        (push,) = [s for s in got if s.tag == IQ and s.get("type") == "set"]
        assert push.get("to") == str(session.jid)
        assert push.get("id")
        query = push.find(f"{ROSTER}query")
        assert query is not None and query.get("ver") == "1"
        (item,) = pushes([push])
        assert (item.get("jid"), item.get("name"), item.get("subscription")) == (BOB, "Bob", "none")
        assert item.get("ask") is None
    assert idle_sink.take() == []


async def test_update_replaces_name_and_groups_and_keeps_subscription(h: Harness) -> None:
    alice, sink = await h.login("alice")
    stored = RosterItem(contact=BOB, name="old", subscription=Subscription.BOTH, groups=("A",))
    await Rosters.of(h.kernel.ctx).save(
        "alice", await Rosters.of(h.kernel.ctx).get("alice"), stored
    )
    await roster_set(h, alice, f"<item jid='{BOB}' name='new'><group>B</group></item>")
    (item,) = pushes(sink.take())
    assert (item.get("name"), item.get("subscription")) == ("new", "both")
    saved = await h.kernel.stores.roster.get_item("alice", BOB)
    assert saved is not None and saved.groups == ("B",) and saved.subscription is Subscription.BOTH


async def test_subscription_attribute_other_than_remove_is_ignored(h: Harness) -> None:
    alice, sink = await h.login("alice")
    await roster_set(
        h, alice, f"<item jid='{BOB}' subscription='both' ask='subscribe' approved='true'/>"
    )
    (item,) = pushes(sink.take())
    assert item.get("subscription") == "none"
    assert item.get("ask") is None and item.get("approved") is None


async def test_item_jid_is_normalised(h: Harness) -> None:
    alice, sink = await h.login("alice")
    await roster_set(h, alice, "<item jid='Bob@Example.Test'/>")
    (item,) = pushes(sink.take())
    assert item.get("jid") == BOB


# -- versioning (§2.6) ---------------------------------------------------------------


async def test_versioning_unchanged_roster_gets_an_empty_result(h: Harness) -> None:
    alice, sink = await h.login("alice")
    await roster_set(h, alice, f"<item jid='{BOB}'/>")
    sink.take()
    await h.send(alice, "<iq type='get' id='v'><query xmlns='jabber:iq:roster' ver='1'/></iq>")
    answer = reply(sink, "v")
    assert answer.get("type") == "result" and len(answer) == 0
    assert alice.is_interested


async def test_versioning_stale_version_gets_the_whole_roster(h: Harness) -> None:
    alice, sink = await h.login("alice")
    await roster_set(h, alice, f"<item jid='{BOB}'/>")
    await roster_set(h, alice, "<item jid='carol@example.test'/>", "set2")
    sink.take()
    await h.send(alice, "<iq type='get' id='v'><query xmlns='jabber:iq:roster' ver='1'/></iq>")
    query = reply(sink, "v").find(f"{ROSTER}query")
    assert query is not None and query.get("ver") == "2"
    assert len(query.findall(f"{ROSTER}item")) == 2
    # Later changes arrive as pushes carrying the new version.
    await roster_set(h, alice, f"<item jid='{BOB}' name='B'/>", "set3")
    push = [s for s in sink.take() if s.get("type") == "set"]
    assert push[0].find(f"{ROSTER}query").get("ver") == "3"  # type: ignore[union-attr]


async def test_empty_version_string_gets_the_roster(h: Harness) -> None:
    alice, sink = await h.login("alice")
    await h.send(alice, "<iq type='get' id='v'><query xmlns='jabber:iq:roster' ver=''/></iq>")
    query = reply(sink, "v").find(f"{ROSTER}query")
    assert query is not None and query.get("ver") == "0"


async def test_stream_features_advertise_versioning_and_pre_approval(h: Harness) -> None:
    tags = {el.tag for el in h.kernel.stream_features(StreamPhase.POST_AUTH)}
    assert f"{{{ns.ROSTER_VER}}}ver" in tags
    assert f"{{{ns.PRE_APPROVAL}}}sub" in tags


# -- errors (§2.3.3, §2.5.3) --------------------------------------------------------------


async def test_more_than_one_item_is_bad_request(h: Harness) -> None:
    assert (
        await set_error(h, f"<item jid='{BOB}'/><item jid='carol@example.test'/>") == "bad-request"
    )


async def test_no_item_is_bad_request(h: Harness) -> None:
    assert await set_error(h, "") == "bad-request"


async def test_duplicate_groups_are_bad_request(h: Harness) -> None:
    item = f"<item jid='{BOB}'><group>Ward 3</group><group>Ward 3</group></item>"
    assert await set_error(h, item) == "bad-request"


async def test_empty_group_is_not_acceptable(h: Harness) -> None:
    assert await set_error(h, f"<item jid='{BOB}'><group/></item>") == "not-acceptable"


async def test_too_long_group_is_not_acceptable(h: Harness) -> None:
    long = "g" * (MAX_GROUP_LENGTH + 1)
    assert await set_error(h, f"<item jid='{BOB}'><group>{long}</group></item>") == "not-acceptable"


async def test_too_long_name_is_not_acceptable(h: Harness) -> None:
    long = "n" * (MAX_NAME_LENGTH + 1)
    assert await set_error(h, f"<item jid='{BOB}' name='{long}'/>") == "not-acceptable"


async def test_malformed_jid_is_jid_malformed(h: Harness) -> None:
    assert await set_error(h, "<item jid='a@b@c'/>") == "jid-malformed"
    assert await set_error(h, "<item jid='bob@'/>") == "jid-malformed"


async def test_missing_jid_is_bad_request(h: Harness) -> None:
    assert await set_error(h, "<item name='x'/>") == "bad-request"


async def test_full_jid_is_bad_request(h: Harness) -> None:
    assert await set_error(h, f"<item jid='{BOB}/phone'/>") == "bad-request"


async def test_own_jid_is_not_allowed(h: Harness) -> None:
    assert await set_error(h, "<item jid='alice@example.test'/>") == "not-allowed"


async def test_errors_leave_the_roster_unchanged(h: Harness) -> None:
    await set_error(h, f"<item jid='{BOB}'><group>x</group><group>x</group></item>")
    assert await h.kernel.stores.roster.get_roster("alice") == (0, [])


async def test_removing_an_unknown_item_is_item_not_found(h: Harness) -> None:
    assert await set_error(h, f"<item jid='{BOB}' subscription='remove'/>") == "item-not-found"


async def test_another_users_roster_is_forbidden(h: Harness) -> None:
    await h.account("bob")
    alice, sink = await h.login("alice")
    await h.send(alice, f"<iq type='get' id='x' to='{BOB}'><query xmlns='jabber:iq:roster'/></iq>")
    assert error_condition(reply(sink, "x")) == "forbidden"
    await h.send(
        alice,
        f"<iq type='set' id='y' to='{BOB}'><query xmlns='jabber:iq:roster'>"
        "<item jid='carol@example.test'/></query></iq>",
    )
    assert error_condition(reply(sink, "y")) == "forbidden"
    assert await h.kernel.stores.roster.get_roster("bob") == (0, [])


# -- remove (§2.5) -------------------------------------------------------------------


async def test_remove_pushes_removal_and_forgets_the_item(h: Harness) -> None:
    alice, sink = await h.login("alice")
    _tablet, tablet_sink = await h.login("alice", "tablet")
    await roster_set(h, alice, f"<item jid='{BOB}'/>")
    sink.take()
    tablet_sink.take()
    await roster_set(h, alice, f"<item jid='{BOB}' subscription='remove'/>", "rm")
    received = sink.take()
    assert [s.get("type") for s in received if s.get("id") == "rm"] == ["result"]
    for got in (received, tablet_sink.take()):
        (item,) = pushes(got)
        assert (item.get("jid"), item.get("subscription")) == (BOB, "remove")
    assert await roster_items(h, alice, sink) == {}
    assert await h.kernel.stores.roster.get_item("alice", BOB) is None


async def test_remove_ends_subscriptions_both_ways(h: Harness) -> None:
    alice, asink = await h.login("alice")
    bob, bsink = await h.login("bob")
    for who, other in ((alice, BOB), (bob, "alice@example.test")):
        await h.send(who, f"<presence type='subscribe' to='{other}'/>")
    await h.send(bob, "<presence type='subscribed' to='alice@example.test'/>")
    await h.send(alice, f"<presence type='subscribed' to='{BOB}'/>")
    asink.take()
    bsink.take()
    await roster_set(h, alice, f"<item jid='{BOB}' subscription='remove'/>", "rm")
    got = bsink.take()
    types = [s.get("type") for s in got if s.tag == PRESENCE]
    # §2.5.2: bob hears 'unsubscribe' and 'unsubscribed', and alice goes offline for him.
    assert "unsubscribe" in types and "unsubscribed" in types and "unavailable" in types
    # One push per stanza: both → to ('unsubscribe'), then to → none ('unsubscribed').
    assert [i.get("subscription") for i in pushes(got)] == ["to", "none"]
    # ...and bob's server, losing 'from', sends alice his unavailable presence.
    assert any(
        s.tag == PRESENCE and s.get("type") == "unavailable" and s.get("from") == str(bob.jid)
        for s in asink.take()
    )
    stored = await h.kernel.stores.roster.get_item("bob", "alice@example.test")
    assert stored is not None and stored.subscription is Subscription.NONE


async def test_remove_denies_a_pending_request(h: Harness) -> None:
    alice, asink = await h.login("alice")
    bob, _bsink = await h.login("bob")
    await h.send(alice, f"<presence type='subscribe' to='{BOB}'/>")
    await roster_set(h, bob, "<item jid='alice@example.test'/>")
    asink.take()
    await roster_set(h, bob, "<item jid='alice@example.test' subscription='remove'/>", "rm")
    assert [s.get("type") for s in asink.take() if s.tag == PRESENCE] == ["unsubscribed"]
    assert await h.kernel.stores.roster.list_pending_in("bob") == []
    stored = await h.kernel.stores.roster.get_item("alice", BOB)
    assert stored is not None and not stored.is_pending_out


# -- the in-memory roster ----------------------------------------------------------------


async def test_cache_is_shared_and_dropped_with_the_last_session(h: Harness) -> None:
    rosters = Rosters.of(h.kernel.ctx)
    assert Rosters.of(h.kernel.ctx) is rosters
    desk, _ = await h.login("alice", "desk")
    tablet, _ = await h.login("alice", "tablet")
    cached = rosters.cached("alice")
    assert cached is not None
    await h.unbind(desk)
    assert rosters.cached("alice") is cached
    await h.unbind(tablet)
    assert rosters.cached("alice") is None


async def test_cache_is_written_through(h: Harness) -> None:
    alice, _ = await h.login("alice")
    await roster_set(h, alice, f"<item jid='{BOB}' name='Bob'/>")
    cached = Rosters.of(h.kernel.ctx).cached("alice")
    assert cached is not None and cached.items[BOB].name == "Bob"
    assert await h.kernel.stores.roster.get_roster("alice") == (cached.version, [cached.items[BOB]])


async def test_cache_is_dropped_when_the_account_is_removed(h: Harness) -> None:
    await h.login("alice")
    assert Rosters.of(h.kernel.ctx).cached("alice") is not None
    assert await h.kernel.accounts.remove("alice")
    assert Rosters.of(h.kernel.ctx).cached("alice") is None


async def test_offline_users_are_not_cached(h: Harness) -> None:
    alice, _ = await h.login("alice")
    await h.account("bob")
    await h.send(alice, f"<presence type='subscribe' to='{BOB}'/>")
    assert Rosters.of(h.kernel.ctx).cached("bob") is None
    assert [c for c, _ in await h.kernel.stores.roster.list_pending_in("bob")] == [
        "alice@example.test"
    ]
