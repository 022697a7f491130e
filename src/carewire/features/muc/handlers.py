"""Presence and messages to rooms (XEP-0045 §7): joining, leaving, nick changes, groupchat,
private messages, subject changes, mediated invitations and declines.
"""

from __future__ import annotations

import logging
from copy import deepcopy
from datetime import datetime
from xml.etree.ElementTree import Element, SubElement

from carewire.features.muc.model import (
    MAX_NICK_LENGTH,
    MAX_STATUS_LENGTH,
    MEMBER_AFFILIATIONS,
    MUC,
    MUC_USER,
    Affiliation,
    HistoryRequest,
    Occupant,
    Role,
    Room,
    RoomConfig,
)
from carewire.features.muc.service import STABLE_ID, X_USER, MucService, limit_error
from carewire.xmpp import ns
from carewire.xmpp import stanza as st
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID, InvalidJID

log = logging.getLogger(__name__)

X_MUC = f"{{{MUC}}}x"
BODY = f"{{{ns.CLIENT}}}body"
SUBJECT = f"{{{ns.CLIENT}}}subject"
_DROPPED_FROM_PRESENCE = frozenset({X_MUC, X_USER, f"{{{ns.CLIENT}}}error"})


def _int_attr(el: Element, name: str) -> int | None:
    raw = el.get(name)
    if raw is None or not raw.strip().isdigit():
        return None  # absent or invalid: no limit from this attribute
    return int(raw)


def parse_history(x: Element | None) -> HistoryRequest:
    """The <history/> limits of a join request (XEP-0045 §7.2.15)."""
    history = None if x is None else x.find(f"{{{MUC}}}history")
    if history is None:
        return HistoryRequest()
    since: datetime | None = None
    raw = history.get("since")
    if raw:
        try:
            since = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            since = None
        if since is not None and since.tzinfo is None:
            since = None
    return HistoryRequest(
        max_stanzas=_int_attr(history, "maxstanzas"),
        max_chars=_int_attr(history, "maxchars"),
        seconds=_int_attr(history, "seconds"),
        since=since,
    )


def check_nick(nick: str) -> None:
    """Refuse nicknames no client could display (the JID parser already applied PRECIS)."""
    if not nick.strip() or len(nick) > MAX_NICK_LENGTH:
        raise StanzaError(StanzaCondition.JID_MALFORMED, "invalid nickname")


def outgoing(stanza: Element, sender: JID, room: Room) -> Element:
    """A copy of a client's message as the room sends it on (from ``room/nick``, no 'to')."""
    out = Element(stanza.tag, {"from": str(sender)})
    for key in ("type", "id", f"{{{ns.XML}}}lang"):
        if stanza.get(key) is not None:
            out.set(key, stanza.get(key, ""))
    for c in stanza:
        # XEP-0359 §3.1: a stanza-id claiming to come from the room is a forgery.
        if c.tag == f"{{{ns.CLIENT}}}error" or (
            c.tag == STABLE_ID and c.get("by") == str(room.jid)
        ):
            continue
        out.append(deepcopy(c))
    return out


class StanzaHandlers:
    """Presence and message handling for rooms."""

    def __init__(self, service: MucService) -> None:
        self.svc = service

    # -- presence ---------------------------------------------------------------

    async def presence(self, stanza: Element, real: JID, to: JID) -> None:
        """Join, presence update, nick change or exit (XEP-0045 §7.2, §7.6, §7.14)."""
        ptype = stanza.get("type")
        room = self.svc.find(to)
        if ptype == "unavailable":
            if room is not None and real in room.by_real:
                # §7.14: the exit presence "MAY include a <status/> element" for the others.
                status = (stanza.findtext(f"{{{ns.CLIENT}}}status") or "").strip()
                await self.svc.leave(room, real, status=status[:MAX_STATUS_LENGTH])
            return
        if ptype == "error":
            if room is not None and real in room.by_real:
                # The occupant's client bounced a presence the room sent it: it is gone.
                # Status 333 (XEP-0045, status code registry): "Inform users that a user was removed
                # because of an error reply".
                await self.svc.leave(room, real, codes=[333])
            return
        if ptype is not None:
            return  # subscriptions and probes mean nothing to a room
        if to.resource is None:
            # §7.2.1: "If the user does not specify a room nickname ... the service
            # MUST return a <jid-malformed/> error".
            raise StanzaError(StanzaCondition.JID_MALFORMED, "a room nickname is required")
        if real.localpart is None or real.resource is None:
            raise StanzaError(StanzaCondition.NOT_ALLOWED, "only user sessions can join rooms")
        nick = to.resource
        check_nick(nick)
        payload = [deepcopy(c) for c in stanza if c.tag not in _DROPPED_FROM_PRESENCE]
        muc_x = stanza.find(X_MUC)
        if room is None:
            await self._create(to, real, nick, payload, is_locked=muc_x is not None)
            return
        occupant = room.occupant_of(real)
        if occupant is None:
            self._check_entry(room, real, nick, muc_x)
            self.svc.enter(room, real, nick, payload, history=parse_history(muc_x))
        elif occupant.nick != nick:
            self._change_nick(room, occupant, nick)
        elif muc_x is not None:
            # A client that believes it is not joined sends the join again: resend the state.
            occupant.sessions[real] = payload
            self.svc.enter(room, real, nick, payload, history=parse_history(muc_x))
        else:
            occupant.sessions[real] = payload
            self.svc.broadcast_presence(room, occupant)

    async def _create(
        self, to: JID, real: JID, nick: str, payload: list[Element], *, is_locked: bool
    ) -> None:
        """§10.1.1: the first to enter a room creates it and becomes its owner.

        "If the initial presence does not include the MUC extension, the
        service SHOULD create the room as an instant room"; otherwise the room
        stays locked until the owner configures it (or accepts the defaults).
        """
        room = Room(
            jid=to.bare,
            config=RoomConfig(max_users=self.svc.max_users),
            affiliations={str(real.bare): Affiliation.OWNER},
            is_locked=is_locked,
        )
        self.svc.rooms[room.name] = room
        self.svc.enter(room, real, nick, payload, history=HistoryRequest(), is_new_room=True)
        log.info("room %s created by %s", room.jid, real.bare)
        await self.svc.changed(room)

    def _check_entry(self, room: Room, real: JID, nick: str, muc_x: Element | None) -> None:
        """The entry checks of XEP-0045 §7.2, in its order."""
        bare = str(real.bare)
        affiliation = room.affiliation(bare)
        if room.is_locked and affiliation is not Affiliation.OWNER:
            # §10.1.1: "the service MUST ... deny entrance ... with <item-not-found/>".
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "the room is being configured")
        if affiliation is Affiliation.OUTCAST:
            raise StanzaError(StanzaCondition.FORBIDDEN, "you are banned from this room")
        if room.config.is_members_only and affiliation not in MEMBER_AFFILIATIONS:
            raise StanzaError(StanzaCondition.REGISTRATION_REQUIRED, "this room is members-only")
        if room.config.password:
            given = None if muc_x is None else muc_x.findtext(f"{{{MUC}}}password")
            if given != room.config.password:
                raise StanzaError(StanzaCondition.NOT_AUTHORIZED, "a password is required")
        holder = room.occupants.get(nick)
        if holder is not None and holder.bare != bare:
            raise StanzaError(StanzaCondition.CONFLICT, "that nickname is in use")
        users = room.users()
        if bare not in users and len(users) >= self.svc.max_users:
            raise limit_error(self.svc.max_users, StanzaCondition.SERVICE_UNAVAILABLE)
        present = {o.bare for o in room.occupants.values()}
        if (
            bare not in present
            and len(present) >= room.config.max_users
            and affiliation not in (Affiliation.OWNER, Affiliation.ADMIN)
        ):
            # §7.2.11: "the service MUST return a <service-unavailable/> error".
            raise limit_error(room.config.max_users, StanzaCondition.SERVICE_UNAVAILABLE)

    def _change_nick(self, room: Room, occupant: Occupant, nick: str) -> None:
        """§7.6: unavailable from the old nick (303), then available from the new one."""
        holder = room.occupants.get(nick)
        if holder is not None:
            raise StanzaError(StanzaCondition.CONFLICT, "that nickname is in use")
        self.svc.broadcast_presence(room, occupant, codes=[303], is_unavailable=True, new_nick=nick)
        del room.occupants[occupant.nick]
        occupant.nick = nick
        room.occupants[nick] = occupant
        for real in occupant.sessions:
            room.by_real[real] = nick
        self.svc.broadcast_presence(room, occupant)

    # -- messages ---------------------------------------------------------------

    async def message(self, stanza: Element, real: JID, to: JID) -> None:
        """Groupchat, private messages, invitations and declines."""
        mtype = stanza.get("type", "normal")
        if mtype == "error":
            # An occupant's client bounced something: nothing to answer. A remote occupant's
            # server bounces when the occupant is gone (or unreachable): it leaves, as for a
            # bounced presence (status 333, "removed because of an error reply").
            room = self.svc.find(to)
            if room is not None and real in room.by_real and self.svc.ctx.router.is_remote(real):
                await self.svc.leave(room, real, codes=[333])
            return
        room = self.svc.room(to)
        if to.resource is not None:
            self._private(room, stanza, real, to.resource, mtype)
        elif mtype == "groupchat":
            await self._groupchat(room, stanza, real)
        else:
            x = stanza.find(X_USER)
            if x is None or (
                x.find(f"{{{MUC_USER}}}invite") is None and x.find(f"{{{MUC_USER}}}decline") is None
            ):
                raise StanzaError(
                    StanzaCondition.NOT_ACCEPTABLE, "only groupchat messages go to the room"
                )
            await self._invitations(room, x, real)

    def _sender(self, room: Room, real: JID) -> Occupant:
        occupant = room.occupant_of(real)
        if occupant is None:
            # §7.4: "If the sender is not an occupant of the room, the service
            # SHOULD return a <not-acceptable/> error to the sender".
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "you are not in this room")
        return occupant

    async def _groupchat(self, room: Room, stanza: Element, real: JID) -> None:
        occupant = self._sender(room, real)
        if occupant.role is Role.VISITOR:
            raise StanzaError(StanzaCondition.FORBIDDEN, "visitors may not speak in this room")
        sender = JID(room.name, self.svc.domain, occupant.nick)
        out = outgoing(stanza, sender, room)
        subject = stanza.find(SUBJECT)
        if subject is not None and stanza.find(BODY) is None:
            # §8.1: only moderators, unless the room lets participants change it.
            if occupant.role is not Role.MODERATOR and not room.config.can_change_subject:
                raise StanzaError(StanzaCondition.FORBIDDEN, "you may not change the subject")
            room.subject, room.subject_by = subject.text or "", occupant.nick
            self.svc.broadcast(room, out)
            await self.svc.changed(room)
        elif stanza.find(BODY) is not None:
            await self.svc.broadcast_groupchat(room, out, sender=real, nick=occupant.nick)
        else:
            self.svc.broadcast(room, out)  # chat states and the like: not kept

    def _private(self, room: Room, stanza: Element, real: JID, nick: str, mtype: str) -> None:
        """§7.5: a message to one occupant, from the sender's room JID."""
        occupant = self._sender(room, real)
        if mtype == "groupchat":
            raise StanzaError(StanzaCondition.BAD_REQUEST, "private messages cannot be groupchat")
        target = room.occupants.get(nick)
        if target is None:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such occupant")
        out = outgoing(stanza, JID(room.name, self.svc.domain, occupant.nick), room)
        out.append(Element(X_USER))
        for target_real in list(target.sessions):
            self.svc.send(target_real, deepcopy(out))

    async def _invitations(self, room: Room, x: Element, real: JID) -> None:
        """§7.8.2 mediated invitations and §7.8.3 declines."""
        for decline in x.findall(f"{{{MUC_USER}}}decline"):
            to = _jid_attr(decline, "to")
            msg = Element(st.MESSAGE, {"from": str(room.jid), "to": str(to)})
            out = SubElement(
                SubElement(msg, X_USER), f"{{{MUC_USER}}}decline", {"from": str(real.bare)}
            )
            reason = decline.findtext(f"{{{MUC_USER}}}reason")
            if reason:
                SubElement(out, f"{{{MUC_USER}}}reason").text = reason
            await self.svc.ctx.router.route(msg, from_jid=room.jid, to_jid=to.bare)
        invites = x.findall(f"{{{MUC_USER}}}invite")
        if not invites:
            return
        occupant = self._sender(room, real)
        invitees = [_jid_attr(i, "to").bare for i in invites]
        affiliation = room.affiliation(occupant.bare)
        is_privileged = affiliation in (Affiliation.OWNER, Affiliation.ADMIN)
        if room.config.is_members_only:
            if not (is_privileged or room.config.can_invite):
                raise StanzaError(StanzaCondition.FORBIDDEN, "only admins may invite to this room")
            # §7.8.2: "If the room is members-only, the service MAY also add the
            # invitee to the member list."
            await self.svc.add_members(room.jid, invitees)
        else:
            self.svc.check_limit(room, [str(j) for j in invitees])
        for invite, invitee in zip(invites, invitees, strict=True):
            reason = invite.findtext(f"{{{MUC_USER}}}reason") or ""
            await self.svc.send_invitation(room, invitee, inviter=real.bare, reason=reason)


def _jid_attr(el: Element, name: str) -> JID:
    raw = el.get(name)
    if not raw:
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"missing '{name}'")
    try:
        return JID.parse(raw)
    except InvalidJID as exc:
        raise StanzaError(StanzaCondition.JID_MALFORMED, str(exc)) from None
