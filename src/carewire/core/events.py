"""Payloads of the kernel's hooks (frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element

from carewire.core.sessions import Session
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID


@dataclass(frozen=True, slots=True, kw_only=True)
class StanzaEvent:
    """A stanza on its way: who sent it, where it goes, which local session sent it."""

    stanza: Element
    from_jid: JID
    to_jid: JID | None  # None only for presence broadcast (no 'to')
    origin: Session | None  # the local session that sent it; None if server-generated


#: One copy of a stanza and the session it is written to; None once a handler took it out.
Target = tuple[Session, Element] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryEvent:
    """Copies of one stanza about to be written to local sessions (hook ``session/deliver``).

    ``stanza`` stands for every copy: it is the one copy, or the message a room
    broadcasts, whose copies share its tag, its children and its attributes but
    ``to``. So a handler looks at ``stanza`` once and at each session in turn.
    ``targets`` pairs each session with its copy. A handler that drops a copy,
    or keeps it back to write later, sets its entry to None; the handlers after
    it skip None entries and the router writes what is left, in order.
    """

    stanza: Element
    targets: list[Target]


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEvent:
    """A session was bound, became available, or closed."""

    session: Session


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertResponded:
    """A recipient's response to an alert was recorded (``accept``, ``decline``, …)."""

    alert_id: str
    login: str
    action: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertNotifying:
    """An alert about to be routed, one copy per recipient (``stanza`` is the first's copy)."""

    alert_id: str  # also each copy's stanza id
    stanza: Element
    recipients: tuple[JID, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountEvent:
    """Something happened to an account."""

    login: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionEvent:
    """``contact`` now receives ``login``'s presence (RFC 6121 §3.1.5: 'from' gained)."""

    login: str
    contact: JID


@dataclass(frozen=True, slots=True, kw_only=True)
class IqRequest:
    """An IQ get/set for a handler: the stanza, its single payload child, its addresses."""

    stanza: Element
    payload: Element
    from_jid: JID
    to_jid: JID
    origin: Session | None

    @property
    def type(self) -> str:
        """'get' or 'set'."""
        return self.stanza.get("type", "")

    @property
    def sender_login(self) -> str:
        """The login of the local account that sent the request.

        Raises:
            StanzaError: ``forbidden`` when the sender is not an account (the server itself).
        """
        login = self.from_jid.localpart
        if login is None:
            raise StanzaError(StanzaCondition.FORBIDDEN)
        return login


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomMessageEvent:
    """A groupchat message a room is about to broadcast.

    Attributes:
        room: The room's bare JID (``name@chat.DOMAIN``).
        stanza: The message as occupants will receive it (from ``room/nick``);
            handlers may add children before the broadcast.
        sender: The real full JID of the occupant who sent it (None: the room itself).
        nick: The sender's nickname in the room.
        recipients: Real bare JIDs of the occupants the message goes to.
        members: Real bare JIDs of the room's members (affiliation member or above).
    """

    room: JID
    stanza: Element
    sender: JID | None
    nick: str
    recipients: frozenset[str]
    members: frozenset[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomEvent:
    """A room's state after a change (or just before it was destroyed)."""

    room: JID
    subject: str
    members: frozenset[str]  # real bare JIDs with affiliation member, admin or owner
    is_persistent: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteFailure:
    """A stanza for another domain could not be handed to the remote router at all."""

    stanza: Element
    from_jid: JID
    to_jid: JID
    condition: StanzaCondition
