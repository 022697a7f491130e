"""Stanza helpers of tracking: stanza ids (XEP-0359), receipts (XEP-0184), markers (XEP-0333).

Pure functions over :class:`~xml.etree.ElementTree.Element`: no I/O, no clock.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from datetime import UTC, datetime
from xml.etree.ElementTree import Element, SubElement

from carewire.xmpp import ns
from carewire.xmpp.errors import RemoteProtocolError
from carewire.xmpp.parser import parse_document
from carewire.xmpp.xml import make, serialize

SID = "urn:xmpp:sid:0"
RECEIPTS = "urn:xmpp:receipts"
MARKERS = "urn:xmpp:chat-markers:0"
#: Carewire: a message the recipient is asked to acknowledge explicitly.
ACK = "urn:carewire:ack:0"
#: Carewire: conversation notifications (``<expired/>``).
CONVERSATION = "urn:carewire:conversation:0"
#: The expiry hint on every tracked message (docs/retention.md).
EXPIRY = ns.EXPIRY

STANZA_ID = f"{{{SID}}}stanza-id"
ORIGIN_ID = f"{{{SID}}}origin-id"
BODY = f"{{{ns.CLIENT}}}body"
DELAY = f"{{{ns.DELAY}}}delay"
_CAREWIRE = "{urn:carewire:"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: Message types that make up a conversation.
CHAT_TYPES = frozenset({"chat", "normal"})


class Mark(enum.StrEnum):
    """What a receipt or chat marker says about a message (the MESSAGE_DELIVERIES field it sets)."""

    RECEIVED = "received_at"
    DISPLAYED = "displayed_at"
    ACKNOWLEDGED = "acknowledged"


_MARKS = {
    f"{{{RECEIPTS}}}received": Mark.RECEIVED,
    f"{{{MARKERS}}}received": Mark.RECEIVED,
    f"{{{MARKERS}}}displayed": Mark.DISPLAYED,
    f"{{{MARKERS}}}acknowledged": Mark.ACKNOWLEDGED,
}


def has_content(stanza: Element) -> bool:
    """Whether a message is part of a conversation: a ``<body/>`` or a Carewire element."""
    return any(c.tag == BODY or c.tag.startswith(_CAREWIRE) for c in stanza)


def is_trackable(stanza: Element) -> bool:
    """A chat or normal message with content (what MESSAGES records for two people)."""
    return stanza.get("type", "normal") in CHAT_TYPES and has_content(stanza)


def is_acknowledgeable(stanza: Element) -> bool:
    """``<markable/>`` (XEP-0333) together with Carewire's ``<acknowledgeable/>``."""
    tags = {c.tag for c in stanza}
    return f"{{{MARKERS}}}markable" in tags and f"{{{ACK}}}acknowledgeable" in tags


def strip_stanza_ids(stanza: Element, is_ours: Callable[[str], bool]) -> int:
    """Remove ``<stanza-id/>`` elements claiming to be by one of our addresses.

    XEP-0359 §4: an entity adding stanza ids "MUST remove any <stanza-id/> element
    [whose 'by' is its own JID] it did not generate", or a client could forge ids
    that other entities trust. Returns how many were removed.
    """
    forged = [c for c in stanza if c.tag == STANZA_ID and is_ours(c.get("by", ""))]
    for c in forged:
        stanza.remove(c)
    return len(forged)


def stamp(stanza: Element, by: str, uid: str) -> None:
    """Add ``<stanza-id id=uid by=by/>`` (replacing one with the same 'by').

    It goes before any other ``<stanza-id/>`` (another domain's, on a
    federated message), so :func:`stanza_id` finds ours.
    """
    strip_stanza_ids(stanza, lambda value: value == by)
    first = next((i for i, c in enumerate(stanza) if c.tag == STANZA_ID), len(stanza))
    stanza.insert(first, make(STANZA_ID, {"id": uid, "by": by}))


def stanza_id(stanza: Element, by: str | None = None) -> str | None:
    """The id of the first ``<stanza-id/>`` child (the one we added: forged ones are gone).

    With ``by``, only a stanza id given by that entity counts.
    """
    for c in stanza:
        if c.tag == STANZA_ID and (by is None or c.get("by") == by):
            return c.get("id")
    return None


def is_uuid(text: str) -> bool:
    """Whether ``text`` has the form of the stanza ids we give (a UUID)."""
    return len(text) == 36 and _UUID.fullmatch(text) is not None


def client_ids(stanza: Element) -> list[str]:
    """The ids the sender gave the message: its 'id' attribute and its origin-id."""
    out = []
    if stanza.get("id"):
        out.append(stanza.get("id", ""))
    for c in stanza:
        if c.tag == ORIGIN_ID and c.get("id"):
            out.append(c.get("id", ""))
    return out


def retraction_id(stanza: Element) -> str | None:
    """The id a retraction names a two-person message by (XEP-0424): origin-id, else 'id'."""
    for c in stanza:
        if c.tag == ORIGIN_ID and c.get("id"):
            return c.get("id")
    return stanza.get("id") or None


def expiry_of(stanza: Element) -> datetime | None:
    """When a message expires, from its expiry hint; None without one."""
    for c in stanza:
        if c.tag == f"{{{EXPIRY}}}expires":
            return parse_datetime(c.get("at", ""))
    return None


def add_expiry_hint(stanza: Element, at: datetime) -> None:
    """Put ``<expires xmlns='urn:carewire:expiry:0' at=…/>`` on a message (replacing any)."""
    for c in list(stanza):
        if c.tag == f"{{{EXPIRY}}}expires":
            stanza.remove(c)
    SubElement(stanza, f"{{{EXPIRY}}}expires", {"at": format_datetime(at)})


def error_condition(stanza: Element) -> str:
    """The RFC 6120 §8.3.3 condition of an error stanza ("undefined-condition" without one)."""
    err = stanza.find(f"{{{ns.CLIENT}}}error")
    for c in [] if err is None else list(err):
        name = c.tag.rpartition("}")[2]
        if c.tag.startswith(f"{{{ns.STANZAS_ERR}}}") and name != "text":
            return name
    return "undefined-condition"


def marks(stanza: Element) -> list[tuple[Mark, str]]:
    """Receipts and chat markers in a message, with the id each refers to."""
    out = []
    for c in stanza:
        mark = _MARKS.get(c.tag)
        if mark is not None and c.get("id"):
            out.append((mark, c.get("id", "")))
    return out


def body_and_elements(stanza: Element) -> tuple[str, str]:
    """The body text and the other children as XML (without our stanza ids)."""
    body = ""
    rest = []
    for c in stanza:
        if c.tag == BODY:
            body = body or (c.text or "")
        elif c.tag != STANZA_ID:
            rest.append(serialize(c, ns.CLIENT))
    return body, "".join(rest)


def sent_stamp(stanza: Element) -> datetime | None:
    """The sender's XEP-0203 delay stamp, if it has a valid one."""
    for c in stanza:
        if c.tag == DELAY:
            return parse_datetime(c.get("stamp", ""))
    return None


def parse_datetime(text: str) -> datetime | None:
    """An XEP-0082 DateTime (``2026-01-01T10:00:00Z``, offsets, fractions) as aware UTC, or None."""
    text = text.strip()
    if "T" not in text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    if value.tzinfo is None:
        return None
    return value.astimezone(UTC)


def format_datetime(value: datetime) -> str:
    """An XEP-0082 DateTime in UTC with microseconds."""
    text = value.astimezone(UTC).isoformat(timespec="microseconds")  # a third of strftime's cost
    return text[:-6] + "Z"  # "+00:00" → "Z"


def elements_from(text: str) -> list[Element]:
    """Parse stored ``elements`` back (an empty list if they are not well-formed)."""
    if not text:
        return []
    try:
        return list(parse_document(f"<message xmlns='{ns.CLIENT}'>{text}</message>"))
    except (RemoteProtocolError, ValueError):  # administrators can edit records
        return []


def expired_notice(to: str, domain: str, jid1: str, jid2: str) -> Element:
    """The headline telling a member a conversation expired."""
    return make(
        f"{{{ns.CLIENT}}}message",
        {"type": "headline", "from": domain, "to": to},
        make(f"{{{CONVERSATION}}}expired", {"jid1": jid1, "jid2": jid2}),
    )
