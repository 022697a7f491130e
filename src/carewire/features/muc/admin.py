"""IQs to the room service and to rooms: disco (XEP-0030), muc#owner (XEP-0045 §10),
muc#admin (§8, §9), ping (XEP-0199/XEP-0410), vCard; anything else goes to the
handlers other features registered for :attr:`IqTarget.ROOM` (e.g. the archive).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from xml.etree.ElementTree import Element, SubElement

from carewire.core.events import IqRequest
from carewire.core.feature import IqTarget
from carewire.features.muc import forms
from carewire.features.muc.model import (
    MEMBER_AFFILIATIONS,
    MUC,
    MUC_ADMIN,
    MUC_OWNER,
    RANK,
    Affiliation,
    Occupant,
    Role,
    Room,
)
from carewire.features.muc.service import MucService
from carewire.xmpp import ns
from carewire.xmpp import stanza as st
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID, InvalidJID

log = logging.getLogger(__name__)

INFO = f"{{{ns.DISCO_INFO}}}query"
ITEMS = f"{{{ns.DISCO_ITEMS}}}query"
OWNER_QUERY = f"{{{MUC_OWNER}}}query"
ADMIN_QUERY = f"{{{MUC_ADMIN}}}query"
ADMIN_ITEM = f"{{{MUC_ADMIN}}}item"
PING = f"{{{ns.PING}}}ping"
VCARD = f"{{{ns.VCARD}}}vCard"
UNIQUE = f"{{{MUC}#unique}}unique"  # XEP-0045 §10.1.4, the muc#unique request

RoomIq = Callable[[Room, IqRequest], Awaitable[Element | None]]


def _info(identity: tuple[str, str, str], features: set[str]) -> Element:
    query = Element(INFO)
    category, type_, name = identity
    attrs = {"category": category, "type": type_}
    if name:
        attrs["name"] = name
    SubElement(query, f"{{{ns.DISCO_INFO}}}identity", attrs)
    for var in sorted(features):
        SubElement(query, f"{{{ns.DISCO_INFO}}}feature", {"var": var})
    return query


class IqHandlers:
    """Answers IQs addressed to ``chat.DOMAIN`` and its rooms."""

    def __init__(self, service: MucService) -> None:
        self.svc = service
        self.ctx = service.ctx
        self.room_handlers: dict[tuple[str, str], RoomIq] = {
            ("get", INFO): self.room_info,
            ("get", ITEMS): self.room_items,
            ("get", OWNER_QUERY): self.owner_get,
            ("set", OWNER_QUERY): self.owner_set,
            ("get", ADMIN_QUERY): self.admin_get,
            ("set", ADMIN_QUERY): self.admin_set,
            ("get", PING): self.ping,
            ("get", VCARD): self.vcard,
        }

    async def dispatch(self, iq: Element, real: JID, to: JID) -> None:
        """Answer an IQ get/set; results go back to the requesting session."""
        iq_type = iq.get("type", "")
        if iq_type not in ("get", "set"):
            return  # responses to the room: we never send requests
        payload = iq[0]
        request = IqRequest(
            stanza=iq,
            payload=payload,
            from_jid=real,
            to_jid=to.bare,
            origin=self.ctx.sessions.get(real),
        )
        if to.localpart is None:
            result = await self._service(request)
        elif to.resource is not None:
            result = self._occupant(self.svc.room(to), request, to.resource)
        else:
            result = await self._room(self.svc.room(to), request)
        reply = st.iq_result(iq, result)
        reply.set("from", str(to))
        self.ctx.router.post(reply, from_jid=to, to_jid=real)  # a local session or another domain

    async def _room(self, room: Room, req: IqRequest) -> Element | None:
        handler = self.room_handlers.get((req.type, req.payload.tag))
        if handler is not None:
            return await handler(room, req)
        other = self.ctx.iq.lookup(IqTarget.ROOM, req.type, req.payload.tag)
        if other is None:
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        try:
            return await other(req)
        except StanzaError:
            raise
        except Exception:
            log.exception("room IQ handler for %s failed", req.payload.tag)
            raise StanzaError(StanzaCondition.INTERNAL_SERVER_ERROR) from None

    async def _service(self, req: IqRequest) -> Element | None:
        tag = req.payload.tag
        if req.type == "get" and tag == INFO:
            features = {ns.DISCO_INFO, ns.DISCO_ITEMS, MUC, f"{MUC}#unique", ns.PING}
            return _info(("conference", "text", "Conversations"), features)
        if req.type == "get" and tag == ITEMS:
            return self.service_items(req.from_jid)
        if req.type == "get" and tag == PING:
            return None
        if req.type == "get" and tag == UNIQUE:
            unique = Element(UNIQUE)
            unique.text = self.svc.new_name()
            return unique
        raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)

    def _occupant(self, room: Room, req: IqRequest, nick: str) -> Element | None:
        """XEP-0410: a client pinging its own occupant JID learns whether it is still joined."""
        occupant = room.occupant_of(req.from_jid)
        if occupant is None:
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "you are not in this room")
        if req.type == "get" and req.payload.tag == PING and occupant.nick == nick:
            return None
        # IQs are not relayed between occupants.
        raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)

    # -- disco ------------------------------------------------------------------

    def service_items(self, requester: JID) -> Element:
        """XEP-0045 §6.3: public rooms, plus the rooms the requester belongs to."""
        query = Element(ITEMS)
        bare = str(requester.bare)
        for name in sorted(self.svc.rooms):
            room = self.svc.rooms[name]
            visible = room.config.is_public or bare in room.users()
            if visible and not room.is_locked:
                SubElement(
                    query,
                    f"{{{ns.DISCO_ITEMS}}}item",
                    {"jid": str(room.jid), "name": room.config.name or name},
                )
        return query

    async def room_info(self, room: Room, req: IqRequest) -> Element | None:
        """§6.4: identity, the muc_* features and the muc#roominfo form."""
        c = room.config
        features = {
            ns.DISCO_INFO,
            ns.DISCO_ITEMS,
            MUC,
            ns.PING,
            "muc_persistent" if c.is_persistent else "muc_temporary",
            "muc_membersonly" if c.is_members_only else "muc_open",
            "muc_moderated" if c.is_moderated else "muc_unmoderated",
            "muc_nonanonymous" if c.whois.value == "anyone" else "muc_semianonymous",
            "muc_passwordprotected" if c.password else "muc_unsecured",
            "muc_public" if c.is_public else "muc_hidden",
            *self.svc.room_features,
        }
        query = _info(("conference", "text", c.name or room.name), features)
        query.append(forms.roominfo_form(c, subject=room.subject, occupants=len(room.occupants)))
        return query

    async def room_items(self, room: Room, req: IqRequest) -> Element | None:
        """§6.5: occupants' room JIDs, for occupants only (others get an empty list)."""
        query = Element(ITEMS)
        if room.occupant_of(req.from_jid) is not None:
            for nick in sorted(room.occupants):
                SubElement(
                    query,
                    f"{{{ns.DISCO_ITEMS}}}item",
                    {"jid": str(JID(room.name, self.svc.domain, nick)), "name": nick},
                )
        return query

    async def ping(self, room: Room, req: IqRequest) -> Element | None:
        """XEP-0199 ping of the room itself."""
        return None

    async def vcard(self, room: Room, req: IqRequest) -> Element | None:
        """Rooms have no vCard (avatar) yet: an empty one, as XEP-0054 allows."""
        return Element(VCARD)

    # -- muc#owner ------------------------------------------------------------

    def _require_owner(self, room: Room, req: IqRequest) -> None:
        if room.affiliation(str(req.from_jid.bare)) is not Affiliation.OWNER:
            # §10.2: "If the <iq/> is not from an owner, the service MUST return a <forbidden/>".
            raise StanzaError(StanzaCondition.FORBIDDEN, "only owners may configure the room")

    async def owner_get(self, room: Room, req: IqRequest) -> Element | None:
        """§10.2: the configuration form."""
        self._require_owner(room, req)
        query = Element(OWNER_QUERY)
        query.append(forms.config_form(room.config, max_users=self.svc.max_users))
        return query

    async def owner_set(self, room: Room, req: IqRequest) -> Element | None:
        """§10.1.2/§10.2 submit or cancel the form; §10.9 destroy the room."""
        self._require_owner(room, req)
        destroy = req.payload.find(f"{{{MUC_OWNER}}}destroy")
        if destroy is not None:
            reason = destroy.findtext(f"{{{MUC_OWNER}}}reason") or ""
            await self.svc.destroy_room(room, reason=reason, alternate=destroy.get("jid", ""))
            return None
        form = req.payload.find(forms.X)
        if form is None:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "expected a data form or <destroy/>")
        if form.get("type") == "cancel":
            if room.is_locked:  # §10.1.3: cancelling the creation destroys the room
                await self.svc.destroy_room(room)
            return None
        if form.get("type") != "submit":
            raise StanzaError(StanzaCondition.BAD_REQUEST, "the form must be submitted")
        new = forms.apply_config(form, room.config, max_users=self.svc.max_users)
        became_members_only = new.is_members_only and not room.config.is_members_only
        room.config = new
        room.is_locked = False
        for occupant in list(room.occupants.values()):
            occupant.role = self._role_after_config(room, occupant)
        if became_members_only:
            for occupant in list(room.occupants.values()):
                if room.affiliation(occupant.bare) not in MEMBER_AFFILIATIONS:
                    # §10.2: "kick all non-members with status code 322".
                    await self.svc.remove_occupant(room, occupant, codes=[322])
        await self.svc.changed(room)
        log.info("room %s configured", room.jid)
        return None

    @staticmethod
    def _role_after_config(room: Room, occupant: Occupant) -> Role:
        if occupant.role is Role.MODERATOR:
            return Role.MODERATOR
        return room.default_role(room.affiliation(occupant.bare))

    # -- muc#admin ------------------------------------------------------------

    async def admin_get(self, room: Room, req: IqRequest) -> Element | None:
        """§9.5/§8.5: list users by affiliation (admins) or occupants by role (moderators)."""
        item = req.payload.find(ADMIN_ITEM)
        if item is None:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "expected an item")
        requester = str(req.from_jid.bare)
        query = Element(ADMIN_QUERY)
        if item.get("affiliation") is not None:
            wanted = _affiliation(item.get("affiliation", ""))
            if RANK[room.affiliation(requester)] < RANK[Affiliation.ADMIN]:
                raise StanzaError(StanzaCondition.FORBIDDEN, "only admins may list affiliations")
            for jid, aff in sorted(room.affiliations.items()):
                if aff is wanted:
                    SubElement(query, ADMIN_ITEM, {"jid": jid, "affiliation": aff.value})
            return query
        wanted_role = _role(item.get("role", ""))
        viewer = room.occupant_of(req.from_jid)
        if viewer is None or viewer.role is not Role.MODERATOR:
            raise StanzaError(StanzaCondition.FORBIDDEN, "only moderators may list roles")
        for nick, occupant in sorted(room.occupants.items()):
            if occupant.role is wanted_role:
                SubElement(
                    query,
                    ADMIN_ITEM,
                    {
                        "nick": nick,
                        "role": occupant.role.value,
                        "jid": str(occupant.real_jid),
                        "affiliation": room.affiliation(occupant.bare).value,
                    },
                )
        return query

    async def admin_set(self, room: Room, req: IqRequest) -> Element | None:
        """§8 role changes (kick, voice, moderator) and §9/§10 affiliation changes."""
        items = req.payload.findall(ADMIN_ITEM)
        if not items:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "expected at least one item")
        roles: list[tuple[Occupant, Role, str]] = []
        affiliations: dict[str, Affiliation] = {}
        reason = ""
        for item in items:
            reason = item.findtext(f"{{{MUC_ADMIN}}}reason") or reason
            if item.get("affiliation") is not None:
                bare = self._target_bare(room, item)
                new = _affiliation(item.get("affiliation", ""))
                self._check_affiliation_change(room, req.from_jid, bare, new)
                affiliations[bare] = new
            elif item.get("role") is not None:
                occupant = room.occupants.get(item.get("nick", ""))
                if occupant is None:
                    raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such occupant")
                new_role = _role(item.get("role", ""))
                self._check_role_change(room, req.from_jid, occupant, new_role)
                roles.append((occupant, new_role, item.findtext(f"{{{MUC_ADMIN}}}reason") or ""))
            else:
                raise StanzaError(StanzaCondition.BAD_REQUEST, "item needs a role or affiliation")
        self._check_owners_left(room, affiliations)
        if affiliations:
            await self.svc.set_affiliations(room, affiliations, reason=reason)
        for occupant, new_role, why in roles:
            await self.svc.set_role(room, occupant, new_role, reason=why)
        return None

    def _target_bare(self, room: Room, item: Element) -> str:
        raw = item.get("jid")
        if raw is None:
            occupant = room.occupants.get(item.get("nick", ""))
            if occupant is None:
                raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such occupant")
            return occupant.bare
        try:
            return str(JID.parse(raw).bare)
        except InvalidJID as exc:
            raise StanzaError(StanzaCondition.JID_MALFORMED, str(exc)) from None

    @staticmethod
    def _check_affiliation_change(room: Room, actor: JID, target: str, new: Affiliation) -> None:
        mine = room.affiliation(str(actor.bare))
        if mine is Affiliation.OWNER:
            return
        current = room.affiliation(target)
        # §9: an admin may grant and revoke membership and bans, never above member
        # and never for admins or owners.
        if (
            mine is not Affiliation.ADMIN
            or RANK[current] >= RANK[Affiliation.ADMIN]
            or RANK[new] >= RANK[Affiliation.ADMIN]
        ):
            raise StanzaError(StanzaCondition.FORBIDDEN, "you may not change that affiliation")

    @staticmethod
    def _check_role_change(room: Room, actor: JID, target: Occupant, new: Role) -> None:
        me = room.occupant_of(actor)
        mine = room.affiliation(str(actor.bare))
        if me is None or me.role is not Role.MODERATOR:
            raise StanzaError(StanzaCondition.FORBIDDEN, "only moderators may change roles")
        theirs = room.affiliation(target.bare)
        # §8.2: "A moderator MUST NOT be able to revoke ... from a user whose
        # affiliation is the same as or higher than the moderator's", and only
        # admins and owners grant or revoke moderator.
        if RANK[theirs] >= RANK[Affiliation.ADMIN] and RANK[theirs] >= RANK[mine]:
            raise StanzaError(StanzaCondition.NOT_ALLOWED, "you may not change that role")
        if (new is Role.MODERATOR or target.role is Role.MODERATOR) and RANK[mine] < RANK[
            Affiliation.ADMIN
        ]:
            raise StanzaError(StanzaCondition.NOT_ALLOWED, "only admins may change moderators")

    @staticmethod
    def _check_owners_left(room: Room, changes: dict[str, Affiliation]) -> None:
        owners = room.owners()
        if not owners:
            return  # a room owned by the server
        left = {o for o in owners if changes.get(o, Affiliation.OWNER) is Affiliation.OWNER}
        left |= {j for j, a in changes.items() if a is Affiliation.OWNER}
        if not left:
            # §10.6: "If ... the owner ... is the only owner, the service MUST deny
            # the request and return a <conflict/> error".
            raise StanzaError(StanzaCondition.CONFLICT, "a room needs an owner")


def _affiliation(raw: str) -> Affiliation:
    try:
        return Affiliation(raw)
    except ValueError:
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"unknown affiliation {raw!r}") from None


def _role(raw: str) -> Role:
    try:
        return Role(raw)
    except ValueError:
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"unknown role {raw!r}") from None
