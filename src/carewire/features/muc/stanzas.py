"""Stanzas the room service builds whole (XEP-0045 §7.8.2 invitations, §10.9 destruction).

Pure functions: room state in, an element out; :mod:`.service` delivers them.
"""

from __future__ import annotations

import secrets
from xml.etree.ElementTree import Element, SubElement

from carewire.features.muc.model import CONFERENCE, MUC_USER, Room
from carewire.xmpp import ns
from carewire.xmpp import stanza as st
from carewire.xmpp.jid import JID

X_USER = f"{{{MUC_USER}}}x"


def invitation(
    room: Room, invitee: JID, *, inviter: JID | None, reason: str, has_body: bool = True
) -> Element:
    """A mediated invitation (XEP-0045 §7.8.2) plus the XEP-0249 element.

    Args:
        room: The room.
        invitee: Who is invited.
        inviter: Who invites (None: the server).
        reason: Why (empty: no reason).
        has_body: Whether to add a readable ``<body/>`` for clients that know
            neither invitation. An invitation that accompanies a message
            which already says it all (an alert) has none, so it is not
            content of its own (not held, not a device's last message).
    """
    msg = Element(
        st.MESSAGE, {"from": str(room.jid), "to": str(invitee), "id": secrets.token_hex(8)}
    )
    title = room.config.name or room.name
    text = (
        f"{inviter.bare} invited you to the conversation {title}"
        if inviter is not None
        else f"You were invited to the conversation {title}"
    )
    if has_body:
        SubElement(msg, f"{{{ns.CLIENT}}}body").text = f"{text}: {reason}" if reason else text
    x = SubElement(msg, X_USER)
    invite = SubElement(x, f"{{{MUC_USER}}}invite", {"from": str(inviter)} if inviter else {})
    if reason:
        SubElement(invite, f"{{{MUC_USER}}}reason").text = reason
    if room.config.password:
        SubElement(x, f"{{{MUC_USER}}}password").text = room.config.password
    attrs = {"jid": str(room.jid)}
    if reason:
        attrs["reason"] = reason
    if room.config.password:
        attrs["password"] = room.config.password
    SubElement(msg, f"{{{CONFERENCE}}}x", attrs)
    return msg


def destroyed(occupant_jid: JID, *, reason: str, alternate: str) -> Element:
    """The unavailable presence each occupant gets when the room is destroyed (§10.9)."""
    presence = Element(st.PRESENCE, {"type": "unavailable", "from": str(occupant_jid)})
    x = SubElement(presence, X_USER)
    SubElement(x, f"{{{MUC_USER}}}item", {"affiliation": "none", "role": "none"})
    destroy = SubElement(x, f"{{{MUC_USER}}}destroy", {"jid": alternate} if alternate else {})
    if reason:
        SubElement(destroy, f"{{{MUC_USER}}}reason").text = reason
    SubElement(x, f"{{{MUC_USER}}}status", {"code": "110"})
    return presence
