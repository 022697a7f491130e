"""The stanzas the room service builds whole (features/muc/stanzas.py): pure, no event loop."""

from __future__ import annotations

from carewire.features.muc import stanzas
from carewire.features.muc.model import Room, RoomConfig
from carewire.xmpp.jid import JID
from carewire.xmpp.xml import serialize

ROOM = Room(jid=JID.parse("ward@chat.example.test"), config=RoomConfig(name="Ward 3"))
ANN = JID.parse("ann@example.test")
BODY = "{jabber:client}body"
USER = "{http://jabber.org/protocol/muc#user}"


def test_an_invitation_has_both_elements_and_a_readable_body() -> None:
    msg = stanzas.invitation(ROOM, ANN, inviter=JID.parse("bob@example.test/x"), reason="Bed 4")
    assert (msg.get("from"), msg.get("to")) == ("ward@chat.example.test", "ann@example.test")
    assert msg.findtext(BODY) == "bob@example.test invited you to the conversation Ward 3: Bed 4"
    invite = msg.find(f"{USER}x/{USER}invite")
    assert invite is not None and invite.get("from") == "bob@example.test/x"
    assert invite.findtext(f"{USER}reason") == "Bed 4"
    direct = msg.find("{jabber:x:conference}x")
    assert direct is not None
    assert dict(direct.attrib) == {"jid": "ward@chat.example.test", "reason": "Bed 4"}


def test_an_invitation_without_body_from_the_server() -> None:
    msg = stanzas.invitation(ROOM, ANN, inviter=None, reason="", has_body=False)
    assert msg.find(BODY) is None
    invite = msg.find(f"{USER}x/{USER}invite")
    assert invite is not None and invite.attrib == {} and invite.find(f"{USER}reason") is None
    assert "reason" not in serialize(msg, None)


def test_the_destruction_presence() -> None:
    presence = stanzas.destroyed(
        JID.parse("ward@chat.example.test/Ann"),
        reason="closed",
        alternate="ward4@chat.example.test",
    )
    assert presence.get("type") == "unavailable"
    destroy = presence.find(f"{USER}x/{USER}destroy")
    assert destroy is not None and destroy.get("jid") == "ward4@chat.example.test"
    assert destroy.findtext(f"{USER}reason") == "closed"
    assert [s.get("code") for s in presence.iter(f"{USER}status")] == ["110"]
