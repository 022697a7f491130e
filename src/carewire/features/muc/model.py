"""Room state of the multi-user chat service (XEP-0045): affiliations, roles, config, history.

Pure data and decisions: nothing here awaits, reads the clock or delivers a
stanza. :mod:`carewire.features.muc.service` drives it.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final
from xml.etree.ElementTree import Element

from carewire.core.stores import StoredRoom
from carewire.xmpp.jid import JID

MUC: Final = "http://jabber.org/protocol/muc"
MUC_USER: Final = f"{MUC}#user"
MUC_ADMIN: Final = f"{MUC}#admin"
MUC_OWNER: Final = f"{MUC}#owner"
ROOMCONFIG: Final = f"{MUC}#roomconfig"
ROOMINFO: Final = f"{MUC}#roominfo"
CONFERENCE: Final = "jabber:x:conference"  # XEP-0249 direct invitations

# The product allows at most this many users (members and occupants together) per conversation.
MAX_ROOM_USERS: Final = 200
LIMIT_TEXT: Final = f"A conversation is limited to {MAX_ROOM_USERS} users"
# XEP-0045 §7.2.15 (discussion history): the service keeps the last messages in memory.
HISTORY_SIZE: Final = 20
MAX_NICK_LENGTH: Final = 64
#: The longest exit status text passed on to the other occupants (longer ones are cut).
MAX_STATUS_LENGTH: Final = 1024


class Affiliation(StrEnum):
    """A user's long-lived relation to a room (XEP-0045 §5.2)."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    NONE = "none"
    OUTCAST = "outcast"


class Role(StrEnum):
    """An occupant's privileges while in the room (XEP-0045 §5.1)."""

    MODERATOR = "moderator"
    PARTICIPANT = "participant"
    VISITOR = "visitor"
    NONE = "none"


RANK: Final = {
    Affiliation.OUTCAST: -1,
    Affiliation.NONE: 0,
    Affiliation.MEMBER: 1,
    Affiliation.ADMIN: 2,
    Affiliation.OWNER: 3,
}
MEMBER_AFFILIATIONS: Final = frozenset({Affiliation.OWNER, Affiliation.ADMIN, Affiliation.MEMBER})


class Whois(StrEnum):
    """Who may see occupants' real JIDs (muc#roomconfig_whois)."""

    ANYONE = "anyone"  # non-anonymous room
    MODERATORS = "moderators"  # semi-anonymous room


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomConfig:
    """A room's configuration (the muc#roomconfig form's values)."""

    name: str = ""
    description: str = ""
    is_persistent: bool = False
    is_members_only: bool = False
    is_moderated: bool = False
    is_public: bool = True
    whois: Whois = Whois.ANYONE
    max_users: int = MAX_ROOM_USERS
    can_change_subject: bool = False
    can_invite: bool = False
    password: str = ""

    def to_json(self) -> str:
        """The configuration as a JSON object (for the store)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RoomConfig:
        """Read a stored configuration; unknown keys are ignored, missing ones defaulted."""
        raw = json.loads(text)
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known} if isinstance(raw, dict) else {}
        config = replace(cls(), **values)
        return replace(config, whois=Whois(config.whois))


@dataclass(slots=True, kw_only=True)
class Occupant:
    """One nickname in a room, used by one or more sessions of the same user."""

    nick: str
    bare: str  # the real bare JID
    role: Role
    # Real full JID → the occupant's presence children (show, status, caps, …).
    sessions: dict[JID, list[Element]] = field(default_factory=dict)

    @property
    def real_jid(self) -> JID:
        """The full JID shown to those allowed to see it (the first session)."""
        return next(iter(self.sessions))

    @property
    def payload(self) -> list[Element]:
        """The presence children of the most recently updated session."""
        return list(self.sessions.values())[-1] if self.sessions else []


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    """One groupchat message as broadcast (without 'to'), kept for joiners."""

    stamp: datetime
    stanza: Element
    chars: int  # length of the serialised stanza (XEP-0045 'maxchars')


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryRequest:
    """What a joining client asked for (XEP-0045 §7.2.15 <history/>); None: no limit."""

    max_stanzas: int | None = None
    max_chars: int | None = None
    seconds: int | None = None
    since: datetime | None = None


def select_history(
    entries: Iterable[HistoryEntry], request: HistoryRequest, now: datetime
) -> list[HistoryEntry]:
    """The newest entries satisfying every limit of ``request``, oldest first."""
    chosen: list[HistoryEntry] = []
    chars = 0
    for entry in reversed(list(entries)):
        if request.max_stanzas is not None and len(chosen) >= request.max_stanzas:
            break
        if request.seconds is not None and entry.stamp < now - timedelta(seconds=request.seconds):
            break
        if request.since is not None and entry.stamp <= request.since:
            break
        if request.max_chars is not None and chars + entry.chars > request.max_chars:
            break
        chars += entry.chars
        chosen.append(entry)
    chosen.reverse()
    return chosen


@dataclass(slots=True, kw_only=True)
class Room:
    """A room's state: configuration, affiliations, occupants, subject and recent history."""

    jid: JID  # bare: name@chat.DOMAIN
    config: RoomConfig
    affiliations: dict[str, Affiliation] = field(default_factory=dict)
    subject: str = ""
    subject_by: str = ""
    occupants: dict[str, Occupant] = field(default_factory=dict)  # by nick
    by_real: dict[JID, str] = field(default_factory=dict)  # real full JID → nick
    history: deque[HistoryEntry] = field(default_factory=lambda: deque(maxlen=HISTORY_SIZE))
    is_locked: bool = False  # created by a client and not configured yet (§10.1.1)
    is_stored: bool = False

    @property
    def name(self) -> str:
        """The room JID's localpart."""
        assert self.jid.localpart is not None
        return self.jid.localpart

    def affiliation(self, bare: str) -> Affiliation:
        """The affiliation of a real bare JID."""
        return self.affiliations.get(bare, Affiliation.NONE)

    def members(self) -> frozenset[str]:
        """Real bare JIDs with affiliation member, admin or owner."""
        return frozenset(j for j, a in self.affiliations.items() if a in MEMBER_AFFILIATIONS)

    def owners(self) -> frozenset[str]:
        """Real bare JIDs with affiliation owner."""
        return frozenset(j for j, a in self.affiliations.items() if a is Affiliation.OWNER)

    def users(self) -> set[str]:
        """Everyone who counts against the user limit: members and occupants."""
        return set(self.members()) | {o.bare for o in self.occupants.values()}

    def default_role(self, affiliation: Affiliation) -> Role:
        """XEP-0045 §5.1.2: the role an affiliation gets on entering."""
        if affiliation in (Affiliation.OWNER, Affiliation.ADMIN):
            return Role.MODERATOR
        if affiliation is Affiliation.NONE and self.config.is_moderated:
            return Role.VISITOR
        if affiliation is Affiliation.OUTCAST:
            return Role.NONE
        return Role.PARTICIPANT

    def occupant_of(self, real: JID) -> Occupant | None:
        """The occupant a real full JID is in the room as, or None."""
        nick = self.by_real.get(real)
        return None if nick is None else self.occupants.get(nick)

    def occupants_of(self, bare: str) -> Iterator[Occupant]:
        """The occupants (nicknames) a real bare JID uses."""
        return (o for o in list(self.occupants.values()) if o.bare == bare)

    def can_see_jids(self, viewer: Occupant | None) -> bool:
        """Whether ``viewer`` receives real JIDs in presence (non-anonymous, or a moderator)."""
        if self.config.whois is Whois.ANYONE:
            return True
        return viewer is not None and viewer.role is Role.MODERATOR

    def to_stored(self) -> StoredRoom:
        """What the store keeps of a persistent room."""
        return StoredRoom(
            name=self.name,
            config=self.config.to_json(),
            subject=self.subject,
            subject_by=self.subject_by,
            affiliations={j: a.value for j, a in self.affiliations.items()},
        )

    @classmethod
    def from_stored(cls, stored: StoredRoom, domain: str) -> Room:
        """A room loaded at start (no occupants, no history)."""
        return cls(
            jid=JID(stored.name, domain, None),
            config=RoomConfig.from_json(stored.config),
            affiliations={j: Affiliation(a) for j, a in stored.affiliations.items()},
            subject=stored.subject,
            subject_by=stored.subject_by,
            is_stored=True,
        )
