"""XEP-0045 Multi-User Chat through the harness: what clients send and receive."""

from __future__ import annotations

from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.core import hook_names as H
from carewire.core.events import IqRequest, RoomEvent, RoomMessageEvent
from carewire.core.feature import IqTarget
from carewire.features.muc.model import MAX_ROOM_USERS
from carewire.xmpp.jid import JID
from tests.features.harness import Harness, error_condition, make_harness
from tests.features.test_muc_helpers import (
    CHAT,
    MUC,
    MUC_ADMIN,
    MUC_OWNER,
    MUC_USER,
    C,
    body,
    codes,
    field,
    item,
    join,
    make_room,
    messages,
    presences,
    service,
)

D = "jabber:x:data"


async def test_create_instant_room_and_join(harness: Harness) -> None:
    h = harness
    changed: list[RoomEvent] = []
    h.kernel.hooks.on(H.MUC_ROOM_CHANGED, changed.append)
    alice, a_sink = await h.login("alice")
    await join(h, alice, "ward", "Alice")
    sent = a_sink.take()
    (self_presence,) = presences(sent)
    assert codes(self_presence) == {110, 100, 201}
    assert item(self_presence) == {
        "affiliation": "owner",
        "role": "moderator",
        "jid": "alice@example.test/res",
    }
    # The subject comes last, even when empty.
    assert sent[-1].find(f"{C}subject") is not None
    assert service(h).rooms["ward"].is_locked
    # Nobody else may enter a locked room.
    bob, b_sink = await h.login("bob")
    await join(h, bob, "ward", "Bob")
    assert error_condition(b_sink.take()[0]) == "item-not-found"
    # Instant room: an empty submitted form unlocks it.
    await h.send(
        alice,
        f"<iq type='set' id='i1' to='ward@{CHAT}'><query xmlns='{MUC_OWNER}'>"
        f"<x xmlns='{D}' type='submit'/></query></iq>",
    )
    assert a_sink.take()[0].get("type") == "result"
    assert not service(h).rooms["ward"].is_locked
    await join(h, bob, "ward", "Bob")
    sent = b_sink.take()
    first, own = presences(sent)
    assert first.get("from") == f"ward@{CHAT}/Alice"  # the occupant list first ...
    assert codes(own) == {110, 100}  # ... then the self-presence
    assert item(own)["role"] == "participant"
    (to_alice,) = a_sink.take()
    assert to_alice.get("from") == f"ward@{CHAT}/Bob" and 110 not in codes(to_alice)
    assert changed and changed[0].room.localpart == "ward"


async def test_groupchat_history_subject_and_hook(harness: Harness) -> None:
    h = harness
    events: list[RoomMessageEvent] = []

    def add_id(event: RoomMessageEvent) -> None:
        events.append(event)
        event.stanza.append(
            Element("{urn:xmpp:sid:0}stanza-id", {"by": str(event.room), "id": "s1"})
        )

    h.kernel.hooks.on(H.MUC_GROUPCHAT, add_id)
    alice, a_sink = await make_room(h, "alice", "ward")
    bob, b_sink = await h.login("bob")
    await join(h, bob, "ward", "Bob")
    a_sink.take(), b_sink.take()
    await h.send(
        bob,
        f"<message type='groupchat' id='m1' to='ward@{CHAT}'><body>hello</body>"
        f"<stanza-id xmlns='urn:xmpp:sid:0' by='ward@{CHAT}' id='forged'/></message>",
    )
    for sink, to in ((a_sink, "alice@example.test/res"), (b_sink, "bob@example.test/res")):
        (msg,) = sink.take()
        assert msg.get("from") == f"ward@{CHAT}/Bob" and msg.get("to") == to
        assert msg.get("id") == "m1" and body(msg) == "hello"
        ids = msg.findall("{urn:xmpp:sid:0}stanza-id")
        assert [i.get("id") for i in ids] == ["s1"]  # the forged one was stripped
    (event,) = events
    assert event.nick == "Bob" and event.sender is not None and event.sender.localpart == "bob"
    assert event.recipients == {"alice@example.test", "bob@example.test"}
    assert event.members == {"alice@example.test"}
    # Subject change by the owner (a moderator).
    await h.send(
        alice, f"<message type='groupchat' to='ward@{CHAT}'><subject>Rounds</subject></message>"
    )
    assert b_sink.take()[0].findtext(f"{C}subject") == "Rounds"
    a_sink.take()
    # A participant may not change it (changesubject is off).
    await h.send(bob, f"<message type='groupchat' to='ward@{CHAT}'><subject>x</subject></message>")
    assert error_condition(b_sink.take()[0]) == "forbidden"
    # A newcomer gets the history (with delay), then the subject.
    for i in range(25):
        h.clock.advance(1)
        await h.send(
            alice, f"<message type='groupchat' to='ward@{CHAT}'><body>m{i}</body></message>"
        )
    carol, c_sink = await h.login("carol")
    await join(h, carol, "ward", "Carol")
    got = messages(c_sink.take())
    assert [body(m) for m in got[:-1]] == [f"m{i}" for i in range(5, 25)]  # the last 20
    assert got[0].find("{urn:xmpp:delay}delay") is not None
    assert got[-1].findtext(f"{C}subject") == "Rounds"
    dave, d_sink = await h.login("dave")
    await join(h, dave, "ward", "Dave", inner="<history maxstanzas='2'/>")
    assert [body(m) for m in messages(d_sink.take())[:-1]] == ["m23", "m24"]
    erin, e_sink = await h.login("erin")
    await join(h, erin, "ward", "Erin", inner="<history seconds='2'/>")
    assert [body(m) for m in messages(e_sink.take())[:-1]] == ["m22", "m23", "m24"]
    frank, f_sink = await h.login("frank")
    await join(h, frank, "ward", "Frank", inner="<history maxchars='0'/>")
    assert [body(m) for m in messages(f_sink.take())[:-1]] == []


async def test_leave_nick_change_and_conflict(harness: Harness) -> None:
    h = harness
    alice, a_sink = await make_room(h, "alice", "ward")
    bob, b_sink = await h.login("bob")
    await join(h, bob, "ward", "Bob")
    a_sink.take(), b_sink.take()
    carol, c_sink = await h.login("carol")
    await join(h, carol, "ward", "Bob")
    (err,) = c_sink.take()
    assert error_condition(err) == "conflict"
    assert err.find(f"{{{MUC}}}x") is not None  # the join request is echoed
    await h.send(bob, f"<presence to='ward@{CHAT}/Robert'/>")
    old, new = presences(a_sink.take())
    assert old.get("type") == "unavailable" and codes(old) == {303}
    assert item(old)["nick"] == "Robert" and new.get("from") == f"ward@{CHAT}/Robert"
    old, new = presences(b_sink.take())
    assert codes(old) == {303, 110}
    await h.send(bob, f"<presence type='unavailable' to='ward@{CHAT}/Robert'/>")
    (gone,) = a_sink.take()
    assert gone.get("type") == "unavailable" and item(gone)["role"] == "none"
    (own,) = b_sink.take()
    assert codes(own) == {110}
    # A closed session leaves every room; the empty temporary room disappears.
    await h.unbind(alice)
    assert "ward" not in service(h).rooms


async def test_private_messages(harness: Harness) -> None:
    h = harness
    _alice, a_sink = await make_room(h, "alice", "ward")
    bob, b_sink = await h.login("bob")
    await join(h, bob, "ward", "Bob")
    a_sink.take(), b_sink.take()
    await h.send(bob, f"<message type='chat' to='ward@{CHAT}/alice'><body>psst</body></message>")
    (pm,) = a_sink.take()
    assert pm.get("from") == f"ward@{CHAT}/Bob" and body(pm) == "psst"
    assert pm.find(f"{{{MUC_USER}}}x") is not None
    await h.send(bob, f"<message type='chat' to='ward@{CHAT}/nobody'><body>x</body></message>")
    assert error_condition(b_sink.take()[0]) == "item-not-found"
    await h.send(bob, f"<message type='groupchat' to='ward@{CHAT}/alice'><body>x</body></message>")
    assert error_condition(b_sink.take()[0]) == "bad-request"


async def test_members_only_room_and_mediated_invitation(harness: Harness) -> None:
    h = harness
    alice, a_sink = await make_room(
        h, "alice", "team", config=field("muc#roomconfig_membersonly", "1")
    )
    bob, b_sink = await h.login("bob")
    await join(h, bob, "team", "Bob")
    assert error_condition(b_sink.take()[0]) == "registration-required"
    await h.send(
        alice,
        f"<message to='team@{CHAT}'><x xmlns='{MUC_USER}'>"
        f"<invite to='bob@example.test'><reason>handover</reason></invite></x></message>",
    )
    (inv,) = b_sink.take()
    invite = inv.find(f"{{{MUC_USER}}}x/{{{MUC_USER}}}invite")
    assert inv.get("from") == f"team@{CHAT}" and invite is not None
    assert invite.get("from") == "alice@example.test"
    assert inv.find("{jabber:x:conference}x") is not None
    assert service(h).rooms["team"].affiliation("bob@example.test") == "member"
    await join(h, bob, "team", "Bob")
    assert codes(presences(b_sink.take())[-1]) == {110, 100}
    # A decline goes back to the inviter.
    carol, _c_sink = await h.login("carol")
    await h.send(
        carol,
        f"<message to='team@{CHAT}'><x xmlns='{MUC_USER}'>"
        f"<decline to='alice@example.test'><reason>busy</reason></decline></x></message>",
    )
    decline = [m for m in messages(a_sink.take()) if m.find(f"{{{MUC_USER}}}x") is not None][-1]
    declined = decline.find(f"{{{MUC_USER}}}x/{{{MUC_USER}}}decline")
    assert declined is not None and declined.get("from") == "carol@example.test"
    # A participant may not invite into a members-only room (allowinvites is off).
    await h.send(
        bob,
        f"<message to='team@{CHAT}'><x xmlns='{MUC_USER}'>"
        "<invite to='carol@example.test'/></x></message>",
    )
    assert error_condition(b_sink.take()[-1]) == "forbidden"


async def test_offline_invitee_gets_the_invitation_later(harness: Harness) -> None:
    h = harness
    alice, _a_sink = await make_room(h, "alice", "team")
    await h.account("bob")
    await h.send(
        alice,
        f"<message to='team@{CHAT}'><x xmlns='{MUC_USER}'>"
        "<invite to='bob@example.test'/></x></message>",
    )
    bob, b_sink = await h.bind("bob")
    await h.send(bob, "<presence/>")
    assert any(m.find(f"{{{MUC_USER}}}x") is not None for m in messages(b_sink.take()))


async def test_kick_ban_and_affiliation_lists(harness: Harness) -> None:
    h = harness
    alice, a_sink = await make_room(h, "alice", "ward")
    bob, b_sink = await h.login("bob")
    await join(h, bob, "ward", "Bob")
    a_sink.take(), b_sink.take()
    # A participant cannot kick.
    await h.send(
        bob,
        f"<iq type='set' id='k0' to='ward@{CHAT}'><query xmlns='{MUC_ADMIN}'>"
        f"<item nick='alice' role='none'/></query></iq>",
    )
    assert error_condition(b_sink.take()[0]) == "forbidden"
    await h.send(
        alice,
        f"<iq type='set' id='k1' to='ward@{CHAT}'><query xmlns='{MUC_ADMIN}'>"
        f"<item nick='Bob' role='none'><reason>quiet</reason></item></query></iq>",
    )
    (kicked,) = b_sink.take()
    assert kicked.get("type") == "unavailable" and codes(kicked) == {307, 110}
    assert [s.get("type") for s in a_sink.take()] == ["unavailable", "result"]
    await join(h, bob, "ward", "Bob")
    b_sink.take(), a_sink.take()
    await h.send(
        alice,
        f"<iq type='set' id='b1' to='ward@{CHAT}'><query xmlns='{MUC_ADMIN}'>"
        f"<item jid='bob@example.test' affiliation='outcast'/></query></iq>",
    )
    (banned,) = b_sink.take()
    assert codes(banned) == {301, 110}
    a_sink.take()
    await join(h, bob, "ward", "Bob")
    assert error_condition(b_sink.take()[0]) == "forbidden"
    await h.send(
        alice,
        f"<iq type='get' id='l1' to='ward@{CHAT}'><query xmlns='{MUC_ADMIN}'>"
        f"<item affiliation='outcast'/></query></iq>",
    )
    (listing,) = a_sink.take()
    items = listing.findall(f"{{{MUC_ADMIN}}}query/{{{MUC_ADMIN}}}item")
    assert [i.get("jid") for i in items] == ["bob@example.test"]
    # The only owner cannot give up ownership.
    await h.send(
        alice,
        f"<iq type='set' id='o1' to='ward@{CHAT}'><query xmlns='{MUC_ADMIN}'>"
        f"<item jid='alice@example.test' affiliation='member'/></query></iq>",
    )
    assert error_condition(a_sink.take()[0]) == "conflict"


async def test_configuration_form_and_disco(harness: Harness) -> None:
    h = harness
    alice, a_sink = await make_room(
        h,
        "alice",
        "ward",
        config=field("muc#roomconfig_roomname", "Ward 3")
        + field("muc#roomconfig_persistentroom", "true")
        + field("muc#roomconfig_maxusers", "30"),
    )
    await h.send(
        alice, f"<iq type='get' id='f1' to='ward@{CHAT}'><query xmlns='{MUC_OWNER}'/></iq>"
    )
    (form,) = a_sink.take()
    fields = {f.get("var"): f.findtext(f"{{{D}}}value") for f in form.iter(f"{{{D}}}field")}
    assert fields["muc#roomconfig_roomname"] == "Ward 3"
    assert fields["muc#roomconfig_persistentroom"] == "1"
    assert fields["muc#roomconfig_maxusers"] == "30"
    await h.send(
        alice,
        f"<iq type='get' id='d1' to='ward@{CHAT}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    )
    (info,) = a_sink.take()
    features = {f.get("var") for f in info.iter("{http://jabber.org/protocol/disco#info}feature")}
    assert {MUC, "muc_persistent", "muc_open", "muc_nonanonymous", "muc_public"} <= features
    identity = info.find(".//{http://jabber.org/protocol/disco#info}identity")
    assert identity is not None and identity.get("name") == "Ward 3"
    assert identity.get("category") == "conference"
    assert any(v.text == f"{MUC}#roominfo" for v in info.iter(f"{{{D}}}value"))
    await h.send(
        alice,
        f"<iq type='get' id='d2' to='{CHAT}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    )
    (svc_info,) = a_sink.take()
    svc_identity = svc_info.find(".//{http://jabber.org/protocol/disco#info}identity")
    assert svc_identity is not None and svc_identity.get("type") == "text"
    await h.send(
        alice,
        f"<iq type='get' id='d3' to='{CHAT}'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>",
    )
    (items,) = a_sink.take()
    assert [i.get("jid") for i in items.iter("{http://jabber.org/protocol/disco#items}item")] == [
        f"ward@{CHAT}"
    ]


async def test_persistent_room_survives_restart(tmp_path: Path) -> None:
    h = await make_harness(tmp_path)
    alice, _a_sink = await make_room(
        h,
        "alice",
        "ward",
        config=field("muc#roomconfig_persistentroom", "1")
        + field("muc#roomconfig_membersonly", "1"),
    )
    await h.send(
        alice, f"<message type='groupchat' to='ward@{CHAT}'><subject>Rounds</subject></message>"
    )
    await service(h).add_members(
        service(h).rooms["ward"].jid,
        [JID.parse("bob@example.test")],
    )
    await h.close()
    h2 = await make_harness(tmp_path)
    try:
        room = service(h2).rooms["ward"]
        assert room.subject == "Rounds" and room.config.is_members_only
        assert room.members() == {"alice@example.test", "bob@example.test"}
        bob, b_sink = await h2.login("bob")
        await join(h2, bob, "ward", "Bob")
        assert messages(b_sink.take())[-1].findtext(f"{C}subject") == "Rounds"
    finally:
        await h2.close()


# -- bad input ---------------------------------------------------------------------


async def test_malformed_room_jid_and_nicks(harness: Harness) -> None:
    h = harness
    reply = await h.ask("alice", f"<presence to='a b@{CHAT}/nick'><x xmlns='{MUC}'/></presence>")
    assert error_condition(reply) == "jid-malformed"
    reply = await h.ask("alice", f"<presence to='room@{CHAT}'><x xmlns='{MUC}'/></presence>")
    assert error_condition(reply) == "jid-malformed"  # no nickname
    reply = await h.ask(
        "alice", f"<presence to='room@{CHAT}/{'n' * 65}'><x xmlns='{MUC}'/></presence>"
    )
    assert error_condition(reply) == "jid-malformed"
    reply = await h.ask("alice", f"<presence to='room@{CHAT}/ '><x xmlns='{MUC}'/></presence>")
    assert error_condition(reply) == "jid-malformed"
    assert not service(h).rooms


async def test_non_member_joining_members_only_server_room(harness: Harness) -> None:
    h = harness
    room = await service(h).create_room(name="icu", members=[])
    reply = await h.ask("mallory", f"<presence to='{room}/m'><x xmlns='{MUC}'/></presence>")
    assert error_condition(reply) == "registration-required"


async def test_invalid_config_values(harness: Harness) -> None:
    h = harness
    alice, a_sink = await h.login("alice")
    await join(h, alice, "ward", "alice")
    a_sink.take()
    for var, value in (
        ("muc#roomconfig_persistentroom", "maybe"),
        ("muc#roomconfig_maxusers", "-3"),
        ("muc#roomconfig_maxusers", str(MAX_ROOM_USERS + 1)),
        ("muc#roomconfig_whois", "everyone"),
    ):
        await h.send(
            alice,
            f"<iq type='set' id='c' to='ward@{CHAT}'><query xmlns='{MUC_OWNER}'>"
            f"<x xmlns='{D}' type='submit'>{field(var, value)}</x></query></iq>",
        )
        (reply,) = a_sink.take()
        assert error_condition(reply) == "not-acceptable", (var, value)
    await h.send(
        alice,
        f"<iq type='set' id='c' to='ward@{CHAT}'><query xmlns='{MUC_OWNER}'>"
        f"<x xmlns='{D}' type='submit'>{field('FORM_TYPE', 'urn:other')}</x></query></iq>",
    )
    assert error_condition(a_sink.take()[0]) == "bad-request"
    assert service(h).rooms["ward"].is_locked  # nothing was applied


async def test_non_owner_cannot_configure_or_destroy(harness: Harness) -> None:
    h = harness
    await make_room(h, "alice", "ward")
    bob, b_sink = await h.login("bob")
    await join(h, bob, "ward", "Bob")
    b_sink.take()
    await h.send(bob, f"<iq type='get' id='f' to='ward@{CHAT}'><query xmlns='{MUC_OWNER}'/></iq>")
    assert error_condition(b_sink.take()[0]) == "forbidden"
    await h.send(
        bob,
        f"<iq type='set' id='f' to='ward@{CHAT}'><query xmlns='{MUC_OWNER}'>"
        f"<x xmlns='{D}' type='submit'/></query></iq>",
    )
    assert error_condition(b_sink.take()[0]) == "forbidden"
    await h.send(
        bob,
        f"<iq type='set' id='f' to='ward@{CHAT}'>"
        f"<query xmlns='{MUC_OWNER}'><destroy/></query></iq>",
    )
    assert error_condition(b_sink.take()[0]) == "forbidden"
    assert "ward" in service(h).rooms


async def test_join_over_the_user_limit(harness: Harness) -> None:
    h = harness
    service(h).max_users = 2
    await make_room(h, "alice", "ward")
    bob, _ = await h.login("bob")
    await join(h, bob, "ward", "Bob")
    reply = await h.ask("carol", f"<presence to='ward@{CHAT}/Carol'><x xmlns='{MUC}'/></presence>")
    assert error_condition(reply) == "service-unavailable"
    assert "A conversation is limited to 2 users" in (
        reply.findtext(".//{urn:ietf:params:xml:ns:xmpp-stanzas}text") or ""
    )


def test_the_real_limit_is_200() -> None:
    assert MAX_ROOM_USERS == 200


async def test_invitation_over_the_limit(harness: Harness) -> None:
    h = harness
    service(h).max_users = 2
    alice, a_sink = await make_room(
        h, "alice", "ward", config=field("muc#roomconfig_membersonly", "1")
    )
    await h.send(
        alice,
        f"<message to='ward@{CHAT}'><x xmlns='{MUC_USER}'><invite to='bob@example.test'/>"
        f"<invite to='carol@example.test'/></x></message>",
    )
    (reply,) = a_sink.take()
    assert error_condition(reply) == "not-allowed"
    assert service(h).rooms["ward"].members() == {"alice@example.test"}
    # Over the limit by affiliation change, too.
    await h.send(
        alice,
        f"<iq type='set' id='a' to='ward@{CHAT}'><query xmlns='{MUC_ADMIN}'>"
        f"<item jid='bob@example.test' affiliation='member'/>"
        f"<item jid='carol@example.test' affiliation='member'/></query></iq>",
    )
    assert error_condition(a_sink.take()[0]) == "not-allowed"


async def test_message_from_non_occupant(harness: Harness) -> None:
    h = harness
    await make_room(h, "alice", "ward")
    reply = await h.ask(
        "bob", f"<message type='groupchat' to='ward@{CHAT}'><body>hi</body></message>"
    )
    assert error_condition(reply) == "not-acceptable"
    reply = await h.ask(
        "bob", f"<message type='groupchat' to='nope@{CHAT}'><body>hi</body></message>"
    )
    assert error_condition(reply) == "item-not-found"
    reply = await h.ask("bob", f"<message type='chat' to='ward@{CHAT}'><body>hi</body></message>")
    assert error_condition(reply) == "not-acceptable"


async def test_unknown_iq_payloads(harness: Harness) -> None:
    h = harness
    await make_room(h, "alice", "ward")
    reply = await h.ask(
        "bob", f"<iq type='get' id='u' to='ward@{CHAT}'><query xmlns='urn:unknown'/></iq>"
    )
    assert error_condition(reply) == "service-unavailable"
    reply = await h.ask(
        "bob", f"<iq type='get' id='u' to='{CHAT}'><query xmlns='urn:unknown'/></iq>"
    )
    assert error_condition(reply) == "service-unavailable"
    reply = await h.ask(
        "bob", f"<iq type='get' id='u' to='ward@{CHAT}/alice'><ping xmlns='urn:xmpp:ping'/></iq>"
    )
    assert error_condition(reply) == "not-acceptable"  # XEP-0410: not joined
    reply = await h.ask(
        "bob",
        f"<iq type='set' id='u' to='ward@{CHAT}'><query xmlns='{MUC_ADMIN}'><item/></query></iq>",
    )
    assert error_condition(reply) == "bad-request"


async def test_room_iq_handlers_of_other_features(harness: Harness) -> None:
    h = harness

    seen: list[IqRequest] = []

    async def handler(req: IqRequest) -> Element | None:
        seen.append(req)
        return Element("{urn:test}answer")

    h.kernel.iq.register("{urn:test}q", handler, types=("get",), targets=(IqTarget.ROOM,))
    await make_room(h, "alice", "ward")
    reply = await h.ask(
        "alice", f"<iq type='get' id='q' to='ward@{CHAT}'><q xmlns='urn:test'/></iq>"
    )
    assert reply.get("type") == "result" and reply.get("from") == f"ward@{CHAT}"
    assert reply.find("{urn:test}answer") is not None
    assert (
        str(seen[0].to_jid) == f"ward@{CHAT}" and str(seen[0].from_jid) == "alice@example.test/res"
    )


@pytest.mark.parametrize("ptype", ["subscribe", "probe"])
async def test_presence_subscriptions_to_rooms_are_ignored(harness: Harness, ptype: str) -> None:
    h = harness
    alice, a_sink = await h.login("alice")
    await h.send(alice, f"<presence type='{ptype}' to='ward@{CHAT}'/>")
    assert a_sink.take() == [] and not service(h).rooms


async def test_moderated_room_password_and_small_iqs(harness: Harness) -> None:
    h = harness
    alice, a_sink = await make_room(
        h,
        "alice",
        "ward",
        config=field("muc#roomconfig_moderatedroom", "1")
        + field("muc#roomconfig_passwordprotectedroom", "1")
        + field("muc#roomconfig_roomsecret", "s3cret"),
    )
    bob, b_sink = await h.login("bob")
    await join(h, bob, "ward", "Bob")
    assert error_condition(b_sink.take()[0]) == "not-authorized"
    await join(h, bob, "ward", "Bob", inner="<password>s3cret</password>")
    assert item(presences(b_sink.take())[-1])["role"] == "visitor"
    await h.send(bob, f"<message type='groupchat' to='ward@{CHAT}'><body>hi</body></message>")
    assert error_condition(b_sink.take()[0]) == "forbidden"
    # The owner grants voice.
    await h.send(
        alice,
        f"<iq type='set' id='v' to='ward@{CHAT}'><query xmlns='{MUC_ADMIN}'>"
        f"<item nick='Bob' role='participant'/></query></iq>",
    )
    assert item(b_sink.take()[0])["role"] == "participant"
    # XEP-0410 self-ping, muc#unique and the room's vCard.
    await h.send(
        bob, f"<iq type='get' id='p' to='ward@{CHAT}/Bob'><ping xmlns='urn:xmpp:ping'/></iq>"
    )
    assert b_sink.take()[0].get("type") == "result"
    await h.send(bob, f"<iq type='get' id='u' to='{CHAT}'><unique xmlns='{MUC}#unique'/></iq>")
    unique = b_sink.take()[0].findtext(f"{{{MUC}#unique}}unique")
    assert unique and unique not in service(h).rooms
    await h.send(bob, f"<iq type='get' id='c' to='ward@{CHAT}'><vCard xmlns='vcard-temp'/></iq>")
    assert b_sink.take()[0].find("{vcard-temp}vCard") is not None
    a_sink.take()
