"""The server-side MucService API (what rule actions and other features call)."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import pytest

from carewire.core import hook_names as H
from carewire.core.events import RoomEvent, RoomMessageEvent
from carewire.xmpp.errors import StanzaError
from carewire.xmpp.jid import JID
from tests.features.harness import Harness
from tests.features.test_muc_helpers import (
    CHAT,
    MUC_USER,
    C,
    body,
    codes,
    join,
    messages,
    presences,
    service,
)

ALICE = JID.parse("alice@example.test")
BOB = JID.parse("bob@example.test")
CAROL = JID.parse("carol@example.test")


async def test_create_room_and_queries(harness: Harness) -> None:
    h = harness
    svc = service(h)
    events: list[RoomEvent] = []
    h.kernel.hooks.on(H.MUC_ROOM_CHANGED, events.append)
    room = await svc.create_room(subject="Bed 12", owner=ALICE, members=[BOB, CAROL])
    assert room.domain == CHAT and room.localpart and room.resource is None
    assert svc.exists(room) and not svc.exists(JID.parse(f"other@{CHAT}"))
    assert svc.members(room) == {str(ALICE), str(BOB), str(CAROL)}
    assert svc.subject(room) == "Bed 12"
    assert events[-1].members == svc.members(room) and events[-1].is_persistent
    other = await svc.create_room()
    assert other != room
    named = await svc.create_room(name="Ward3")
    assert named == JID.parse(f"ward3@{CHAT}")
    (stored_names) = [r.name for r in await h.kernel.stores.muc.rooms()]
    assert "ward3" in stored_names and room.localpart in stored_names


async def test_create_room_refusals(harness: Harness) -> None:
    svc = service(harness)
    await svc.create_room(name="ward")
    with pytest.raises(StanzaError) as conflict:
        await svc.create_room(name="ward")
    assert conflict.value.condition == "conflict"
    with pytest.raises(StanzaError) as bad:
        await svc.create_room(name="a b")
    assert bad.value.condition == "jid-malformed"
    svc.max_users = 2
    with pytest.raises(StanzaError) as limit:
        await svc.create_room(owner=ALICE, members=[BOB, CAROL])
    assert limit.value.condition == "not-allowed"
    assert limit.value.text == "A conversation is limited to 2 users"
    with pytest.raises(StanzaError) as missing:
        await svc.set_subject(JID.parse(f"nope@{CHAT}"), "x")
    assert missing.value.condition == "item-not-found"


async def test_members_join_and_see_subject(harness: Harness) -> None:
    h = harness
    svc = service(h)
    room = await svc.create_room(subject="Bed 12", members=[BOB])
    bob, b_sink = await h.login("bob")
    await join(h, bob, room.localpart or "", "Bob")
    sent = b_sink.take()
    assert codes(presences(sent)[-1]) == {110, 100}
    assert messages(sent)[-1].findtext(f"{C}subject") == "Bed 12"
    assert messages(sent)[-1].get("from") == str(room)
    await svc.set_subject(room, "Bed 14")
    (subject,) = b_sink.take()
    assert subject.findtext(f"{C}subject") == "Bed 14" and svc.subject(room) == "Bed 14"


async def test_add_and_remove_members(harness: Harness) -> None:
    h = harness
    svc = service(h)
    svc.max_users = 3
    room = await svc.create_room(owner=ALICE, members=[BOB])
    await svc.add_members(room, [CAROL, BOB, ALICE])  # idempotent, owner stays owner
    assert svc.members(room) == {str(ALICE), str(BOB), str(CAROL)}
    assert svc.rooms[room.localpart or ""].affiliation(str(ALICE)) == "owner"
    with pytest.raises(StanzaError) as limit:
        await svc.add_members(room, [JID.parse("dave@example.test")])
    assert limit.value.condition == "not-allowed"
    bob, b_sink = await h.login("bob")
    await join(h, bob, room.localpart or "", "Bob")
    b_sink.take()
    await svc.remove_members(room, [BOB], reason="discharged")
    (gone,) = b_sink.take()
    assert gone.get("type") == "unavailable" and codes(gone) == {321, 110}
    assert svc.members(room) == {str(ALICE), str(CAROL)}
    await join(h, bob, room.localpart or "", "Bob")
    assert b_sink.take()[0].get("type") == "error"


async def test_invite_routes_to_bare_jids_and_offline(harness: Harness) -> None:
    h = harness
    svc = service(h)
    room = await svc.create_room(owner=ALICE)
    _bob, b_sink = await h.login("bob")
    await h.account("carol")
    await svc.invite(room, [BOB, CAROL], reason="Code blue", inviter=ALICE)
    assert svc.members(room) == {str(ALICE), str(BOB), str(CAROL)}
    (inv,) = b_sink.take()
    assert inv.get("from") == str(room)
    invite = inv.find(f"{{{MUC_USER}}}x/{{{MUC_USER}}}invite")
    assert invite is not None and invite.get("from") == str(ALICE)
    assert invite.findtext(f"{{{MUC_USER}}}reason") == "Code blue"
    legacy = inv.find("{jabber:x:conference}x")
    assert legacy is not None and legacy.get("jid") == str(room)
    assert "Code blue" in (body(inv) or "")
    assert await h.kernel.stores.offline.count("carol") == 1
    svc.max_users = 3
    with pytest.raises(StanzaError) as limit:
        await svc.invite(room, [JID.parse("dave@example.test")])
    assert limit.value.condition == "not-allowed"


async def test_send_groupchat_fires_the_hook_and_keeps_history(harness: Harness) -> None:
    h = harness
    svc = service(h)
    seen: list[RoomMessageEvent] = []

    def stamp(event: RoomMessageEvent) -> None:
        seen.append(event)
        event.stanza.append(
            Element("{urn:xmpp:sid:0}stanza-id", {"by": str(event.room), "id": "x1"})
        )

    h.kernel.hooks.on(H.MUC_GROUPCHAT, stamp)
    room = await svc.create_room(members=[BOB])
    bob, b_sink = await h.login("bob")
    await join(h, bob, room.localpart or "", "Bob")
    b_sink.take()
    sent = await svc.send_groupchat(
        room, "Alert: bed 12", nick="Alerts", extra=[Element("{urn:test}alert")]
    )
    assert sent.find("{urn:xmpp:sid:0}stanza-id") is not None
    (got,) = b_sink.take()
    assert got.get("from") == f"{room}/Alerts" and got.get("type") == "groupchat"
    assert body(got) == "Alert: bed 12"
    assert (
        got.find("{urn:test}alert") is not None
        and got.find("{urn:xmpp:sid:0}stanza-id") is not None
    )
    assert seen[0].sender is None and seen[0].nick == "Alerts"
    assert seen[0].recipients == {str(BOB)}
    await svc.send_groupchat(room, "as the room")
    assert b_sink.take()[0].get("from") == str(room)
    carol, c_sink = await h.login("carol")
    await svc.add_members(room, [CAROL])
    await join(h, carol, room.localpart or "", "Carol")
    history = [body(m) for m in messages(c_sink.take()) if body(m)]
    assert history == ["Alert: bed 12", "as the room"]


async def test_destroy(harness: Harness) -> None:
    h = harness
    svc = service(h)
    destroyed: list[RoomEvent] = []
    h.kernel.hooks.on(H.MUC_ROOM_DESTROYED, destroyed.append)
    room = await svc.create_room(members=[BOB])
    bob, b_sink = await h.login("bob")
    await join(h, bob, room.localpart or "", "Bob")
    b_sink.take()
    await svc.destroy(room, reason="closed")
    (gone,) = b_sink.take()
    destroy = gone.find(f"{{{MUC_USER}}}x/{{{MUC_USER}}}destroy")
    assert gone.get("type") == "unavailable" and destroy is not None
    assert destroy.findtext(f"{{{MUC_USER}}}reason") == "closed"
    assert not svc.exists(room) and destroyed[0].members == {str(BOB)}
    assert await h.kernel.stores.muc.rooms() == []
    # Leaving the destroyed room later is harmless.
    await h.unbind(bob)
