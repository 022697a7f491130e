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


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryEvent:
    """A stanza about to be written to one session."""

    stanza: Element
    session: Session


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEvent:
    """A session was bound, became available, or closed."""

    session: Session


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountEvent:
    """Something happened to an account."""

    login: str


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
