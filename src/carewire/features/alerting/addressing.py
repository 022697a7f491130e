"""Whom a rule action addresses: users of the chat domain, rooms of ``chat.DOMAIN``.

Rule actions name recipients as bare JIDs (the XMPP adapter's actions turn
logins into JIDs); a room's JID stands for its members. What is neither a
user of this domain nor an existing room is reported back as unknown, never
silently dropped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import TypeVar

from carewire.adapters.xmpp.gateway import GatewayError
from carewire.features.muc.service import MucService
from carewire.xmpp.errors import StanzaError
from carewire.xmpp.jid import JID, InvalidJID

T = TypeVar("T")


def parse_bare(text: str) -> JID | None:
    """``text`` as a bare JID, or None when it is not a JID."""
    try:
        return JID.parse(text).bare
    except InvalidJID:
        return None


async def checked(work: Awaitable[T]) -> T:
    """Await room work; a refusal (the 200-user limit …) becomes a :class:`GatewayError`."""
    try:
        return await work
    except StanzaError as err:
        raise GatewayError(err.text or err.condition.value) from None


class Addresses:
    """Sorts recipients into users and rooms of this server."""

    def __init__(self, *, domain: str, room_domain: str, muc: MucService) -> None:
        self.domain = domain
        self.room_domain = room_domain
        self.muc = muc

    def split(self, recipients: Iterable[str]) -> tuple[list[JID], list[JID], list[str]]:
        """Users of this domain, rooms of chat.DOMAIN, and what is neither."""
        users: list[JID] = []
        rooms: list[JID] = []
        unknown: list[str] = []
        for text in recipients:
            jid = parse_bare(text)
            if jid is None or jid.localpart is None:
                unknown.append(text)
            elif jid.domain == self.domain:
                users.append(jid)
            elif jid.domain == self.room_domain:
                rooms.append(jid)
            else:
                unknown.append(text)
        return users, rooms, unknown

    def users(self, recipients: Iterable[str]) -> tuple[list[JID], list[str]]:
        """Users, with rooms expanded to their members (order kept, no repeats)."""
        users, rooms, unknown = self.split(recipients)
        seen = {u: None for u in users}
        for room in rooms:
            if not self.muc.exists(room):
                unknown.append(str(room))
                continue
            for member in sorted(self.muc.members(room)):
                jid = parse_bare(member)
                if jid is not None and jid.domain == self.domain:
                    seen.setdefault(jid, None)
        return list(seen), unknown

    def room(self, conversation: str) -> JID:
        """The existing room ``conversation`` names.

        Raises:
            GatewayError: Not a room JID of chat.DOMAIN, or no such room.
        """
        jid = parse_bare(conversation)
        if jid is None or jid.domain != self.room_domain or jid.localpart is None:
            raise GatewayError(f"{conversation!r} is not a conversation room of {self.room_domain}")
        if not self.muc.exists(jid):
            raise GatewayError(f"no conversation {jid}")
        return jid
