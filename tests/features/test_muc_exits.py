"""Leaving a room (XEP-0045 §7.14) as other people's clients do it: exit status texts and errors."""

from __future__ import annotations

from carewire.features.muc.model import MAX_STATUS_LENGTH
from tests.features.harness import Harness
from tests.features.test_muc_helpers import (
    CHAT,
    C,
    codes,
    item,
    join,
    make_room,
    presences,
    service,
)


async def test_the_others_receive_the_status_text_of_an_occupant_leaving(harness: Harness) -> None:
    h = harness
    _, a_sink = await make_room(h, "alice", "ward")
    bob, b_sink = await h.login("bob")
    await join(h, bob, "ward", "Bob")
    a_sink.take(), b_sink.take()
    await h.send(
        bob,
        f"<presence type='unavailable' to='ward@{CHAT}/Bob'><status>Off to theatre</status>"
        "<show>away</show></presence>",
    )
    (gone,) = a_sink.take()
    assert gone.get("type") == "unavailable" and gone.get("from") == f"ward@{CHAT}/Bob"
    assert gone.findtext(f"{C}status") == "Off to theatre"
    assert gone.find(f"{C}show") is None  # only the status text goes with an exit
    assert item(gone)["role"] == "none" and codes(gone) == set()
    (own,) = b_sink.take()
    assert own.findtext(f"{C}status") == "Off to theatre" and codes(own) == {110}


async def test_an_exit_without_a_status_has_none_and_a_long_one_is_cut(harness: Harness) -> None:
    h = harness
    _, a_sink = await make_room(h, "alice", "ward")
    bob, _ = await h.login("bob")
    carol, _ = await h.login("carol")
    for session, nick in ((bob, "Bob"), (carol, "Carol")):
        await join(h, session, "ward", nick)
    a_sink.take()
    await h.send(bob, f"<presence type='unavailable' to='ward@{CHAT}/Bob'/>")
    (gone,) = a_sink.take()
    assert gone.find(f"{C}status") is None
    await h.send(
        carol,
        f"<presence type='unavailable' to='ward@{CHAT}/Carol'>"
        f"<status>{'x' * (MAX_STATUS_LENGTH + 10)}</status></presence>",
    )
    (gone,) = a_sink.take()
    assert gone.findtext(f"{C}status") == "x" * MAX_STATUS_LENGTH


async def test_a_presence_error_from_an_occupant_removes_it_with_status_333(
    harness: Harness,
) -> None:
    h = harness
    _, a_sink = await make_room(h, "alice", "ward")
    bob, b_sink = await h.login("bob")
    await join(h, bob, "ward", "Bob")
    a_sink.take(), b_sink.take()
    # Bob's client bounces a presence the room sent it.
    await h.send(
        bob,
        f"<presence type='error' to='ward@{CHAT}/Bob'><error type='cancel'>"
        "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>",
    )
    (gone,) = presences(a_sink.take())
    assert gone.get("type") == "unavailable" and gone.get("from") == f"ward@{CHAT}/Bob"
    assert codes(gone) == {333}
    assert item(gone)["role"] == "none"
    (own,) = presences(b_sink.take())
    assert codes(own) == {333, 110}
    assert "Bob" not in service(h).rooms["ward"].occupants
    # An error from someone not in the room changes nothing.
    await h.send(bob, f"<presence type='error' to='ward@{CHAT}/Bob'/>")
    assert a_sink.take() == [] and b_sink.take() == []


async def test_a_presence_error_from_one_of_two_sessions_keeps_the_occupant(
    harness: Harness,
) -> None:
    h = harness
    _, a_sink = await make_room(h, "alice", "ward")
    phone, p_sink = await h.login("bob", "phone")
    desk, d_sink = await h.login("bob", "desk")
    await join(h, phone, "ward", "Bob")
    await join(h, desk, "ward", "Bob")
    a_sink.take(), p_sink.take(), d_sink.take()
    await h.send(phone, f"<presence type='error' to='ward@{CHAT}/Bob'/>")
    assert presences(a_sink.take()) == []  # Bob is still there, on his desk
    (own,) = presences(p_sink.take())
    assert own.get("type") == "unavailable" and codes(own) == {110, 333}
