"""The room service's state and actions (XEP-0045), and the server-side API other features call.

Theory of operation: every room lives in memory in :attr:`MucService.rooms`;
persistent ones are also written to the :class:`~carewire.core.stores.MucStore`
whenever their configuration, subject or affiliations change, and loaded at
start (occupants and the in-memory history do not survive a restart: clients
rejoin, and longer history comes from the archive). Occupants are local
sessions or users of another domain (federation: a bounce from its server
makes it leave, status 333). Anything
addressed to a user's bare JID (invitations, declines) goes through
:meth:`Router.route`, so offline storage applies.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Sequence
from copy import deepcopy
from xml.etree.ElementTree import Element, SubElement

from carewire.core import hook_names as H
from carewire.core.events import RoomEvent, RoomMessageEvent
from carewire.core.feature import FeatureContext
from carewire.features.muc import stanzas
from carewire.features.muc.model import (
    MAX_ROOM_USERS,
    MEMBER_AFFILIATIONS,
    MUC_USER,
    Affiliation,
    HistoryEntry,
    HistoryRequest,
    Occupant,
    Role,
    Room,
    RoomConfig,
    Whois,
    select_history,
)
from carewire.xmpp import ns
from carewire.xmpp import stanza as st
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID, InvalidJID, normalize_localpart
from carewire.xmpp.xml import SharedBody, serialize

log = logging.getLogger(__name__)
_SID = "{urn:xmpp:sid:0}stanza-id"

X_USER = f"{{{MUC_USER}}}x"
STABLE_ID = "{urn:xmpp:sid:0}stanza-id"


def limit_error(
    limit: int, condition: StanzaCondition = StanzaCondition.NOT_ALLOWED
) -> StanzaError:
    """The error for anything that would take a room over ``limit`` users."""
    return StanzaError(condition, f"A conversation is limited to {limit} users")


def _status(x: Element, codes: Iterable[int]) -> None:
    for code in codes:
        SubElement(x, f"{{{MUC_USER}}}status", {"code": str(code)})


class MucService:
    """Rooms on ``chat.DOMAIN``: state, delivery, and the API for other features.

    Attributes:
        domain: The service's domain (``chat.DOMAIN``).
        max_users: Members and occupants a room may have together (the product's limit).
        room_features: Extra disco features of every room (features that answer room IQs).
    """

    def __init__(self, ctx: FeatureContext, *, max_users: int = MAX_ROOM_USERS) -> None:
        self.ctx = ctx
        self.domain = ctx.hosts.chat_domain
        self.max_users = max_users
        self.rooms: dict[str, Room] = {}
        self.joined: dict[JID, set[str]] = {}  # real full JID → names of rooms it is in
        self.room_features: set[str] = set()

    # -- lookups ----------------------------------------------------------------

    def find(self, jid: JID) -> Room | None:
        """The room addressed by ``jid`` (its bare part), or None."""
        if jid.domain != self.domain or jid.localpart is None:
            return None
        return self.rooms.get(jid.localpart)

    def room(self, jid: JID) -> Room:
        """The room addressed by ``jid``; ``item-not-found`` if there is none."""
        room = self.find(jid)
        if room is None:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such room")
        return room

    def exists(self, room: JID) -> bool:
        """Whether the room exists."""
        return self.find(room) is not None

    def members(self, room: JID) -> frozenset[str]:
        """Real bare JIDs with affiliation member, admin or owner."""
        return self.room(room).members()

    def subject(self, room: JID) -> str:
        """The room's current subject."""
        return self.room(room).subject

    def add_room_feature(self, var: str) -> None:
        """Advertise ``var`` in every room's disco#info (e.g. the archive's namespace)."""
        self.room_features.add(var)

    # -- delivery ---------------------------------------------------------------

    def send(self, to: JID, stanza: Element) -> None:
        """Deliver a stanza to one occupant: a local session (if still bound), or another domain's.

        (The router's ordered queue for other domains keeps the room's order.)
        """
        stanza.set("to", str(to))
        self.ctx.router.post(stanza, from_jid=JID.parse(stanza.get("from", self.domain)), to_jid=to)

    def presence_of(
        self,
        room: Room,
        occupant: Occupant,
        viewer: Occupant | None,
        *,
        codes: Sequence[int] = (),
        is_unavailable: bool = False,
        new_nick: str | None = None,
        reason: str = "",
        status: str = "",
    ) -> Element:
        """An occupant's presence as ``viewer`` sees it (XEP-0045 §7.2.3).

        ``status`` is the text an occupant gave when leaving (§7.14: the exit
        presence "MAY include a <status/> element", which the service passes on).
        """
        presence = Element(st.PRESENCE, {"from": str(JID(room.name, self.domain, occupant.nick))})
        if is_unavailable:
            presence.set("type", "unavailable")
            if status:
                SubElement(presence, f"{{{ns.CLIENT}}}status").text = status
        else:
            presence.extend(deepcopy(c) for c in occupant.payload)
        x = SubElement(presence, X_USER)
        role = Role.NONE if is_unavailable else occupant.role
        attrs = {"affiliation": room.affiliation(occupant.bare).value, "role": role.value}
        if room.can_see_jids(viewer) and occupant.sessions:
            attrs["jid"] = str(occupant.real_jid)
        if new_nick is not None:
            attrs["nick"] = new_nick
        item = SubElement(x, f"{{{MUC_USER}}}item", attrs)
        if reason:
            SubElement(item, f"{{{MUC_USER}}}reason").text = reason
        _status(x, codes)
        return presence

    def broadcast_presence(
        self,
        room: Room,
        occupant: Occupant,
        *,
        codes: Sequence[int] = (),
        self_codes: Sequence[int] = (),
        is_unavailable: bool = False,
        new_nick: str | None = None,
        reason: str = "",
        status: str = "",
    ) -> None:
        """Send an occupant's presence to every occupant (itself too, with status 110)."""
        viewers = list(room.occupants.values())
        if occupant not in viewers:
            viewers.append(occupant)
        for viewer in viewers:
            own = viewer is occupant
            all_codes = [*codes, 110, *self_codes] if own else list(codes)
            for real in list(viewer.sessions):
                self.send(
                    real,
                    self.presence_of(
                        room,
                        occupant,
                        viewer,
                        codes=all_codes,
                        is_unavailable=is_unavailable,
                        new_nick=new_nick,
                        reason=reason,
                        status=status,
                    ),
                )

    def subject_message(self, room: Room) -> Element:
        """The subject as sent to joiners and on change (from the nick that set it, or the room)."""
        sender = JID(room.name, self.domain, room.subject_by) if room.subject_by else room.jid
        msg = Element(st.MESSAGE, {"type": "groupchat", "from": str(sender)})
        SubElement(msg, f"{{{ns.CLIENT}}}subject").text = room.subject or None
        return msg

    def send_history(self, room: Room, real: JID, request: HistoryRequest) -> None:
        """Replay recent groupchat messages with delay stamps (XEP-0045 §7.2.15)."""
        now = self.ctx.clock.now()
        for entry in select_history(room.history, request, now):
            msg = deepcopy(entry.stanza)
            SubElement(
                msg,
                f"{{{ns.DELAY}}}delay",
                {"from": str(room.jid), "stamp": entry.stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")},
            )
            self.send(real, msg)

    # -- occupants --------------------------------------------------------------

    def enter(
        self,
        room: Room,
        real: JID,
        nick: str,
        payload: list[Element],
        *,
        history: HistoryRequest,
        is_new_room: bool = False,
    ) -> None:
        """Add a session as ``nick`` (checks done by the caller) and send it the room's state."""
        occupant = room.occupants.get(nick)
        is_new = occupant is None
        if occupant is None:
            affiliation = room.affiliation(str(real.bare))
            occupant = Occupant(nick=nick, bare=str(real.bare), role=room.default_role(affiliation))
            room.occupants[nick] = occupant
        occupant.sessions[real] = payload
        room.by_real[real] = nick
        self.joined.setdefault(real, set()).add(room.name)
        # "the service MUST first send the complete list of the existing occupants
        # to the new occupant and only then send the new occupant's own presence".
        for other in list(room.occupants.values()):
            if other is not occupant:
                self.send(real, self.presence_of(room, other, occupant))
        others = [o for o in room.occupants.values() if o is not occupant]
        for other in others if is_new else []:
            for other_real in list(other.sessions):
                self.send(other_real, self.presence_of(room, occupant, other))
        codes = [110]
        if room.config.whois is Whois.ANYONE:
            codes.append(100)  # "non-anonymous room"
        if is_new_room:
            codes.append(201)
        self.send(real, self.presence_of(room, occupant, occupant, codes=codes))
        self.send_history(room, real, history)
        # "the service MUST send the room subject to the new occupant" (even if empty).
        self.send(real, self.subject_message(room))
        log.debug("%s entered %s", real, room.jid)

    async def leave(
        self,
        room: Room,
        real: JID,
        *,
        codes: Sequence[int] = (),
        reason: str = "",
        status: str = "",
    ) -> None:
        """Remove one session from the room; the occupant leaves with its last session.

        ``status`` is the occupant's own exit text, passed on to the others (§7.14).
        """
        occupant = room.occupant_of(real)
        if occupant is None:
            return
        self._forget_session(room, occupant, real)
        if occupant.sessions:
            self.send(
                real,
                self.presence_of(
                    room,
                    occupant,
                    occupant,
                    codes=[110, *codes],
                    is_unavailable=True,
                    reason=reason,
                    status=status,
                ),
            )
            return
        occupant.sessions[real] = []  # so it receives its own unavailable presence
        del room.occupants[occupant.nick]
        self.broadcast_presence(
            room, occupant, codes=codes, is_unavailable=True, reason=reason, status=status
        )
        occupant.sessions.clear()
        await self._dispose_if_empty(room)

    async def remove_occupant(
        self, room: Room, occupant: Occupant, *, codes: Sequence[int], reason: str = ""
    ) -> None:
        """Remove every session of an occupant (kick, ban, membership loss)."""
        if room.occupants.get(occupant.nick) is not occupant:
            return
        del room.occupants[occupant.nick]
        self.broadcast_presence(room, occupant, codes=codes, is_unavailable=True, reason=reason)
        for real in list(occupant.sessions):
            self._forget_session(room, occupant, real)
        await self._dispose_if_empty(room)

    def _forget_session(self, room: Room, occupant: Occupant, real: JID) -> None:
        occupant.sessions.pop(real, None)
        room.by_real.pop(real, None)
        names = self.joined.get(real)
        if names is not None:
            names.discard(room.name)
            if not names:
                del self.joined[real]

    async def _dispose_if_empty(self, room: Room) -> None:
        # XEP-0045 §10.9: a temporary room is destroyed when the last occupant exits.
        if not room.occupants and not room.config.is_persistent and room.name in self.rooms:
            await self._drop(room)

    async def session_closed(self, real: JID) -> None:
        """A session ended: it leaves every room it was in."""
        for name in list(self.joined.get(real, ())):
            room = self.rooms.get(name)
            if room is not None:
                await self.leave(room, real)

    # -- room state -------------------------------------------------------------

    def event(self, room: Room) -> RoomEvent:
        """The hook payload describing ``room``."""
        return RoomEvent(
            room=room.jid,
            subject=room.subject,
            members=room.members(),
            is_persistent=room.config.is_persistent,
        )

    async def changed(self, room: Room) -> None:
        """Persist a changed room and tell the other features (hook ``muc/room-changed``)."""
        if room.config.is_persistent and not room.is_locked:
            await self.ctx.stores.muc.save(room.to_stored())
            room.is_stored = True
        elif room.is_stored:
            await self.ctx.stores.muc.delete(room.name)
            room.is_stored = False
        await self.ctx.hooks.fire(H.MUC_ROOM_CHANGED, self.event(room))

    async def _drop(self, room: Room) -> None:
        event = self.event(room)
        self.rooms.pop(room.name, None)
        if room.is_stored:
            await self.ctx.stores.muc.delete(room.name)
            room.is_stored = False
        await self.ctx.hooks.fire(H.MUC_ROOM_DESTROYED, event)
        log.info("room %s destroyed", room.jid)

    async def load(self, _payload: object = None) -> None:
        """Load the persistent rooms (at server start)."""
        for stored in await self.ctx.stores.muc.rooms():
            self.rooms[stored.name] = Room.from_stored(stored, self.domain)
        log.info("loaded %d persistent rooms", len(self.rooms))

    def check_limit(self, room: Room, adding: Iterable[str]) -> None:
        """Refuse to take the room over the user limit (members and occupants together)."""
        users = room.users()
        new = {j for j in adding if j not in users}
        if new and len(users) + len(new) > self.max_users:
            raise limit_error(self.max_users)

    async def set_affiliations(
        self, room: Room, changes: dict[str, Affiliation], *, reason: str = ""
    ) -> None:
        """Apply affiliation changes and their effects on occupants (XEP-0045 §9, §10)."""
        self.check_limit(room, [j for j, a in changes.items() if a in MEMBER_AFFILIATIONS])
        for jid, affiliation in changes.items():
            if affiliation is Affiliation.NONE:
                room.affiliations.pop(jid, None)
            else:
                room.affiliations[jid] = affiliation
        for jid, affiliation in changes.items():
            for occupant in list(room.occupants_of(jid)):
                if affiliation is Affiliation.OUTCAST:
                    await self.remove_occupant(room, occupant, codes=[301], reason=reason)
                elif room.config.is_members_only and affiliation not in MEMBER_AFFILIATIONS:
                    await self.remove_occupant(room, occupant, codes=[321], reason=reason)
                else:
                    occupant.role = room.default_role(affiliation)
                    self.broadcast_presence(room, occupant, reason=reason)
        await self.changed(room)

    async def set_role(
        self, room: Room, occupant: Occupant, role: Role, *, reason: str = ""
    ) -> None:
        """Change an occupant's role; role none is a kick (status 307)."""
        if role is Role.NONE:
            await self.remove_occupant(room, occupant, codes=[307], reason=reason)
            return
        occupant.role = role
        self.broadcast_presence(room, occupant, reason=reason)

    async def destroy_room(self, room: Room, *, reason: str = "", alternate: str = "") -> None:
        """XEP-0045 §10.9: tell every occupant, then forget the room."""
        for occupant in list(room.occupants.values()):
            for real in list(occupant.sessions):
                presence = stanzas.destroyed(
                    JID(room.name, self.domain, occupant.nick), reason=reason, alternate=alternate
                )
                self.send(real, presence)
                self._forget_session(room, occupant, real)
        room.occupants.clear()
        await self._drop(room)

    async def broadcast_groupchat(
        self, room: Room, message: Element, *, sender: JID | None, nick: str
    ) -> Element:
        """Fire ``muc/groupchat``, keep the message in history and send it to every occupant."""
        await self.ctx.hooks.fire(
            H.MUC_GROUPCHAT,
            RoomMessageEvent(
                room=room.jid,
                stanza=message,
                sender=sender,
                nick=nick,
                recipients=frozenset(o.bare for o in room.occupants.values()),
                members=room.members(),
            ),
        )
        room.history.append(
            HistoryEntry(
                stamp=self.ctx.clock.now(),
                stanza=deepcopy(message),
                chars=len(serialize(message, None)),
            )
        )
        self.broadcast(room, message)
        return message

    def forget_messages(self, room: JID, uuids: set[str]) -> int:
        """Drop messages (by the stanza id the room gave them) from the history joiners get."""
        found = self.find(room)
        if found is None:
            return 0
        sid, by = "{urn:xmpp:sid:0}stanza-id", str(room.bare)
        kept = [
            e
            for e in found.history
            if not any(
                c.tag == sid and c.get("by") == by and c.get("id") in uuids for c in e.stanza
            )
        ]
        dropped = len(found.history) - len(kept)
        if dropped:
            found.history.clear()
            found.history.extend(kept)
        return dropped

    def broadcast(self, room: Room, message: Element) -> None:
        """Send a copy of ``message`` to every occupant session (children shared, written once)."""
        sessions = [real for occupant in room.occupants.values() for real in occupant.sessions]
        self.ctx.router.post_copies(SharedBody(message), sessions)

    async def send_invitation(
        self,
        room: Room,
        invitee: JID,
        *,
        inviter: JID | None,
        reason: str,
        has_body: bool = True,
    ) -> None:
        """Send :func:`.stanzas.invitation` to the invitee's bare JID (stored if offline)."""
        msg = stanzas.invitation(room, invitee, inviter=inviter, reason=reason, has_body=has_body)
        await self.ctx.router.route(msg, from_jid=room.jid, to_jid=invitee.bare)

    # -- the server-side API ----------------------------------------------------

    def new_name(self) -> str:
        """A room localpart no room uses yet."""
        while True:
            name = "c" + secrets.token_hex(6)
            if name not in self.rooms:
                return name

    async def create_room(
        self,
        *,
        name: str | None = None,
        subject: str = "",
        owner: JID | None = None,
        members: Iterable[JID] = (),
        persistent: bool = True,
        members_only: bool = True,
    ) -> JID:
        """Create a room owned by ``owner`` (or by nobody: the server) with these members.

        Returns:
            The room's bare JID.

        Raises:
            StanzaError: ``jid-malformed`` for an invalid name, ``conflict`` if it
                exists, ``not-allowed`` for more members than the limit.
        """
        try:
            localpart = self.new_name() if name is None else normalize_localpart(name)
        except InvalidJID as exc:
            raise StanzaError(StanzaCondition.JID_MALFORMED, str(exc)) from None
        if localpart in self.rooms:
            raise StanzaError(StanzaCondition.CONFLICT, "the room exists")
        affiliations = {str(j.bare): Affiliation.MEMBER for j in members}
        if owner is not None:
            affiliations[str(owner.bare)] = Affiliation.OWNER
        if len(affiliations) > self.max_users:
            raise limit_error(self.max_users)
        config = RoomConfig(
            is_persistent=persistent,
            is_members_only=members_only,
            is_public=not members_only,
            max_users=self.max_users,
        )
        room = Room(
            jid=JID(localpart, self.domain, None),
            config=config,
            affiliations=affiliations,
            subject=subject,
        )
        self.rooms[localpart] = room
        await self.changed(room)
        log.info("room %s created with %d members", room.jid, len(affiliations))
        return room.jid

    async def set_subject(self, room: JID, subject: str) -> None:
        """Change the subject as the room itself and tell the occupants."""
        r = self.room(room)
        r.subject, r.subject_by = subject, ""
        self.broadcast(r, self.subject_message(r))
        await self.changed(r)

    async def add_members(self, room: JID, jids: Iterable[JID]) -> None:
        """Make users members (higher affiliations are kept); the user limit applies."""
        r = self.room(room)
        changes = {
            str(j.bare): Affiliation.MEMBER
            for j in jids
            if r.affiliation(str(j.bare)) not in MEMBER_AFFILIATIONS
        }
        if changes:
            await self.set_affiliations(r, changes)

    async def remove_members(self, room: JID, jids: Iterable[JID], *, reason: str = "") -> None:
        """Take users' affiliation away; their occupants leave with status 321."""
        r = self.room(room)
        bares = [str(j.bare) for j in jids]
        changes = {b: Affiliation.NONE for b in bares if r.affiliation(b) in MEMBER_AFFILIATIONS}
        for b in bares:
            for occupant in list(r.occupants_of(b)):
                await self.remove_occupant(r, occupant, codes=[321], reason=reason)
        if changes:
            await self.set_affiliations(r, changes, reason=reason)

    async def invite(
        self, room: JID, jids: Iterable[JID], *, reason: str = "", inviter: JID | None = None
    ) -> None:
        """Add users as members, then send each a mediated invitation (stored offline if needed)."""
        r = self.room(room)
        invitees = list({str(j.bare): j.bare for j in jids}.values())
        await self.add_members(room, invitees)
        for invitee in invitees:
            await self.send_invitation(r, invitee, inviter=inviter, reason=reason)

    async def send_groupchat(
        self, room: JID, body: str, *, nick: str = "", extra: Sequence[Element] = ()
    ) -> Element:
        """Send a groupchat message as the room (``from`` the room, or ``room/nick``).

        Returns:
            The message as broadcast (with what ``muc/groupchat`` handlers added).
        """
        r = self.room(room)
        sender = JID(r.name, self.domain, nick) if nick else r.jid
        msg = Element(
            st.MESSAGE, {"type": "groupchat", "from": str(sender), "id": secrets.token_hex(8)}
        )
        SubElement(msg, f"{{{ns.CLIENT}}}body").text = body
        msg.extend(deepcopy(e) for e in extra)
        return await self.broadcast_groupchat(r, msg, sender=None, nick=nick)

    async def destroy(self, room: JID, *, reason: str = "") -> None:
        """Destroy the room: occupants are told, the stored room is deleted."""
        await self.destroy_room(self.room(room), reason=reason)


def _sid(stanza: Element, by: str) -> str | None:
    return next((c.get("id") for c in stanza if c.tag == _SID and c.get("by") == by), None)
