"""The stanzas that tell clients a message expired: XEP-0424 retractions (XEP-0425 in rooms).

Pure functions: no I/O, no clock. A two-person message is retracted in the
sender's name (XEP-0424 §"Business rules": a retraction is processed only
when it comes from the original message's bare JID), by the id the sender
gave it; the sender's own devices get it as an XEP-0280 "sent" carbon. A
room's message is retracted by the room as a moderation (XEP-0425), by the
stanza id the room gave it, since the author may have left.
"""

from __future__ import annotations

import secrets
from xml.etree.ElementTree import Element, SubElement

from carewire.core.stores import ExpiryEntry
from carewire.xmpp import ns
from carewire.xmpp.xml import make

MESSAGE = f"{{{ns.CLIENT}}}message"
REASON = "Message expired"


def _id() -> str:
    return f"expiry-{secrets.token_hex(6)}"


def _retract(message: Element, target: str) -> Element:
    retract = SubElement(message, f"{{{ns.RETRACT}}}retract", {"id": target})
    # XEP-0334: ask archives to keep the retraction, so clients that were away learn of it.
    SubElement(message, f"{{{ns.HINTS}}}store")
    return retract


def chat_retraction(entry: ExpiryEntry, to: str) -> Element:
    """The retraction a participant of a two-person conversation gets (``from`` the sender)."""
    assert entry.sender is not None
    message = make(MESSAGE, {"type": "chat", "from": entry.sender, "to": to, "id": _id()})
    _retract(message, entry.client_id or entry.uuid)
    return message


def sent_carbon(entry: ExpiryEntry, to: str) -> Element:
    """The retraction the sender's own sessions get: an XEP-0280 "sent" copy of it."""
    assert entry.sender is not None
    inner = make(MESSAGE, {"type": "chat", "from": entry.sender, "to": entry.peer, "id": _id()})
    _retract(inner, entry.client_id or entry.uuid)
    outer = make(MESSAGE, {"type": "chat", "from": entry.sender, "to": to})
    sent = SubElement(outer, f"{{{ns.CARBONS}}}sent")
    SubElement(sent, f"{{{ns.FORWARD}}}forwarded").append(inner)
    return outer


def room_retraction(entry: ExpiryEntry) -> Element:
    """The moderated retraction a room broadcasts (no ``to``: the room adds each occupant's)."""
    message = make(MESSAGE, {"type": "groupchat", "from": entry.peer, "id": _id()})
    retract = _retract(message, entry.uuid)
    SubElement(retract, f"{{{ns.MODERATE}}}moderated", {"by": entry.peer})
    SubElement(retract, f"{{{ns.RETRACT}}}reason").text = REASON
    return message


def is_retraction(stanza: Element) -> bool:
    """Whether a message retracts another (XEP-0424)."""
    return stanza.find(f"{{{ns.RETRACT}}}retract") is not None
