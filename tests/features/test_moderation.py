"""XEP-0425 moderated message retraction in rooms (features/moderation.py) through the harness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.core.sessions import Session
from carewire.features.mam import MAM
from carewire.features.moderation import MODERATE, RETRACT
from tests.features.harness import Harness, RecordingSink, error_condition, make_harness
from tests.features.test_muc_helpers import CHAT, C, join, make_room, messages

ROOM = f"ward@{CHAT}"
SID = "{urn:xmpp:sid:0}stanza-id"
STANZA_ERRORS = "urn:ietf:params:xml:ns:xmpp-stanzas"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, with_platform=True)
    yield harness
    await harness.close()


def _moderate(
    target: str | None, *, reason: str = "", action: str = "retract", room: str = ROOM
) -> str:
    id_attr = f" id='{target}'" if target is not None else ""
    inner = f"<{action} xmlns='{RETRACT}'/>" + (f"<reason>{reason}</reason>" if reason else "")
    return (
        f"<iq type='set' id='mod1' to='{room}'>"
        f"<moderate xmlns='{MODERATE}'{id_attr}>{inner}</moderate></iq>"
    )


async def _reply(h: Harness, session: Session, xml: str) -> tuple[Element, list[Element]]:
    """Send an IQ; its reply and everything else the session received."""
    sink = session.sink
    assert isinstance(sink, RecordingSink)
    sink.take()
    await h.send(session, xml)
    got = sink.take()
    [reply] = [s for s in got if s.tag == f"{C}iq"]
    return reply, [s for s in got if s is not reply]


async def _room_with_message(h: Harness) -> tuple[Session, Session, RecordingSink, str]:
    """alice owns ward (moderator), bob is a participant who said something wrong."""
    alice, a_sink = await make_room(h, "alice", "ward", nick="Alice")
    bob, b_sink = await h.login("bob")
    await join(h, bob, "ward", "Bob")
    a_sink.take(), b_sink.take()
    await h.send(
        bob,
        f"<message type='groupchat' to='{ROOM}' id='b1'><body>Bed 4: wrong chart</body></message>",
    )
    [seen] = messages(a_sink.take())
    b_sink.take()  # bob's own echo
    stanza_id = seen.find(SID)
    assert stanza_id is not None and stanza_id.get("by") == ROOM
    return alice, bob, b_sink, str(stanza_id.get("id"))


async def test_a_moderator_retracts_a_message_for_everyone_and_in_the_archive(h: Harness) -> None:
    alice, _, b_sink, sid = await _room_with_message(h)
    reply, got = await _reply(h, alice, _moderate(sid, reason="Wrong patient"))
    assert reply.get("type") == "result" and len(reply) == 0
    for received in (got, messages(b_sink.take())):
        [retraction] = received
        assert retraction.get("from") == ROOM and retraction.get("type") == "groupchat"
        retract = retraction.find(f"{{{RETRACT}}}retract")
        assert retract is not None and retract.get("id") == sid
        moderated = retract.find(f"{{{MODERATE}}}moderated")
        assert moderated is not None and moderated.get("by") == f"{ROOM}/Alice"
        assert retract.findtext(f"{{{RETRACT}}}reason") == "Wrong patient"
        assert retraction.find("{urn:xmpp:hints}store") is not None

    # The room's archive keeps a tombstone in its place.
    _, archived = await _reply(
        h, alice, f"<iq type='set' id='q' to='{ROOM}'><query xmlns='{MAM}'/></iq>"
    )
    [result] = archived
    inner = result.find(f"{{{MAM}}}result/{{urn:xmpp:forward:0}}forwarded/{C}message")
    assert inner is not None and inner.find(f"{C}body") is None
    retracted = inner.find(f"{{{RETRACT}}}retracted")
    assert retracted is not None and retracted.get("stamp")
    moderated = retracted.find(f"{{{MODERATE}}}moderated")
    assert moderated is not None and moderated.get("by") == f"{ROOM}/Alice"
    assert retracted.findtext(f"{{{RETRACT}}}reason") == "Wrong patient"

    # The audit trail names the act, never the text or the reason.
    assert h.platform is not None
    entries, _ = await h.platform.audit.store.entries(action="muc.moderate")
    [entry] = entries
    assert (entry.event.actor, entry.event.target) == ("xmpp:alice", ROOM)
    assert entry.event.details == {"message": sid, "moderator": f"{ROOM}/Alice", "archived": True}

    # Someone joining now does not get it in the history.
    carol, c_sink = await h.login("carol")
    await join(h, carol, "ward", "Carol")
    assert [m for m in messages(c_sink.take()) if m.find(f"{C}body") is not None] == []


async def test_who_may_moderate_and_what(h: Harness) -> None:
    alice, bob, _, sid = await _room_with_message(h)
    reply, _ = await _reply(h, bob, _moderate(sid))
    assert error_condition(reply) == "forbidden"
    assert reply.findtext(f"{{{C[1:-1]}}}error/{{{STANZA_ERRORS}}}text") == (
        "Only moderators are allowed to moderate other participants' messages"
    )
    carol, _ = await h.login("carol")  # not in the room at all
    reply, _ = await _reply(h, carol, _moderate(sid))
    assert error_condition(reply) == "forbidden"
    reply, _ = await _reply(h, alice, _moderate("no-such-id"))
    assert error_condition(reply) == "item-not-found"
    reply, _ = await _reply(h, alice, _moderate(None))
    assert error_condition(reply) == "bad-request"
    reply, _ = await _reply(h, alice, _moderate(sid, action="edit"))
    assert error_condition(reply) == "feature-not-implemented"
    reply, _ = await _reply(h, alice, _moderate(sid, room=f"nowhere@{CHAT}"))
    assert error_condition(reply) == "item-not-found"
    # Nothing was retracted by the refused requests.
    _, archived = await _reply(
        h, alice, f"<iq type='set' id='q' to='{ROOM}'><query xmlns='{MAM}'/></iq>"
    )
    assert [r.findtext(f".//{C}body") for r in archived] == ["Bed 4: wrong chart"]


async def test_rooms_advertise_moderation(h: Harness) -> None:
    alice, _ = await make_room(h, "alice", "ward", nick="Alice")
    reply, _ = await _reply(
        h,
        alice,
        f"<iq type='get' id='d1' to='{ROOM}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    )
    features = {f.get("var") for f in reply.iter("{http://jabber.org/protocol/disco#info}feature")}
    assert MODERATE in features
