"""The writes message tracking queues: plain frozen data, applied by :mod:`.records`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from carewire.core.stores import ExpiryEntry

#: A conversation's key: two bare JIDs sorted, or (room bare JID, ``ROOM``).
ConvKey = tuple[str, str]

ROOM = "ROOM"
DEFAULT_TTL = 10080  # minutes (7 days) from the last message


class State:
    """Activity states of CONVERSATIONS (and the rows of CONVERSATION_HISTORY)."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    EXPIRED = "expired"
    CLOSED = "closed"


def pair_key(a: str, b: str) -> ConvKey:
    """The key of the conversation between two bare JIDs (sorted)."""
    return (a, b) if a <= b else (b, a)


def room_key(room: str) -> ConvKey:
    """The key of a room's conversation."""
    return (room, ROOM)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageOp:
    """Record one message (MESSAGES) in its conversation, creating what is missing."""

    key: ConvKey
    uuid: str
    sender: str | None  # bare JID; None for a system message
    recipients: tuple[str, ...]
    members: tuple[str, ...]  # bare JIDs that belong to the conversation
    body: str
    elements: str
    nick: str
    received_at: datetime
    sent_at: datetime
    is_acknowledgeable: bool = False
    acknowledges: str | None = None  # uuid of the message this one acknowledges
    expiry: ExpiryEntry | None = None  # when it expires (queued with the record)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryOp:
    """Set one timestamp of a MESSAGE_DELIVERIES record (message × recipient)."""

    uuid: str
    recipient: str  # bare JID
    field: str  # sent_at, received_at, displayed_at, acknowledged or failed_at
    at: datetime
    is_verified: bool = True  # False: check the recipient was one before writing
    failure: str | None = None  # with failed_at: the stanza error condition (federation bounces)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationOp:
    """Create or change a conversation (topic, ttl, members, activity state)."""

    key: ConvKey
    ttl: int | None = None
    topic: str | None = None
    members: tuple[str, ...] | None = None  # replace the member set
    add_members: tuple[str, ...] = ()
    remove_members: tuple[str, ...] = ()
    state: str | None = None
    actor: str | None = None  # bare JID recorded on the history row


Op = MessageOp | DeliveryOp | ConversationOp
