"""Directory groups as addresses: ``<slug>@groups.DOMAIN`` delivers one message to every member.

Theory of operation: the router hands every stanza for ``groups.DOMAIN`` to
this service (``Router.add_service``, like the room service on
``chat.DOMAIN``). The groups and their members are read from the directory's
in-memory index at each stanza, so a membership change applies to the very
next message.

A message with content (a body or a Carewire element) from an allowed sender
— a member, or anyone of the group's organisation when the group allows
"Members can send messages to whole group" — goes to every member but the
sender as a ``chat`` message from the group's JID, carrying the sender as an
XEP-0033 ``ofrom`` address and their name in an XEP-0172 ``<nick/>``. It is
recorded once in MESSAGES (conversation ``(group JID, "GROUP")``) with one
MESSAGE_DELIVERIES row per recipient as each copy is handed to a session or
to offline storage (members without an available resource get it from
offline storage at their next login). Receipts, markers and chat states sent
to the group are recorded by tracking and go no further.

Refusals: an unknown group is ``item-not-found``; a sender of another
organisation gets ``forbidden`` "You may not message users of <Org>"; anyone
else not allowed gets ``forbidden`` :data:`NOT_A_MEMBER`. Service discovery
(XEP-0030) answers on ``groups.DOMAIN`` (identity and the groups the
requester may message) and on each group (its name and members, for its
organisation's users).
"""

from __future__ import annotations

import logging
import uuid
from typing import Final
from xml.etree.ElementTree import Element, SubElement

from carewire.core.events import IqRequest
from carewire.core.feature import FeatureContext
from carewire.core.sessions import Session
from carewire.directory.index import DirectoryIndex, IndexedGroup
from carewire.directory.model import MESSAGE_REFUSED
from carewire.directory.service import DirectoryService
from carewire.features.tracking import MessageTracker, stanzas
from carewire.xmpp import ns
from carewire.xmpp import stanza as st
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID
from carewire.xmpp.xml import deep_copy, make

log = logging.getLogger(__name__)

#: The second half of a group conversation's key (CONVERSATIONS.jid2).
GROUP: Final = "GROUP"
ADDRESS_NS: Final = "http://jabber.org/protocol/address"  # XEP-0033
NICK_NS: Final = "http://jabber.org/protocol/nick"  # XEP-0172
ADDRESSES: Final = f"{{{ADDRESS_NS}}}addresses"
NICK: Final = f"{{{NICK_NS}}}nick"
MESSAGE: Final = f"{{{ns.CLIENT}}}message"
INFO: Final = f"{{{ns.DISCO_INFO}}}query"
ITEMS: Final = f"{{{ns.DISCO_ITEMS}}}query"
NOT_A_MEMBER: Final = "Only the group's members may message it"
#: What the service never copies from the sender's message (it adds its own).
_NOT_COPIED: Final = frozenset({ADDRESSES, NICK, stanzas.STANZA_ID})


def _disco(
    tag: str, identity: tuple[str, str, str] | None = None, features: tuple[str, ...] = ()
) -> Element:
    query = Element(tag)
    if identity is not None:
        category, type_, name = identity
        SubElement(
            query,
            f"{{{ns.DISCO_INFO}}}identity",
            {"category": category, "type": type_, "name": name},
        )
    for var in sorted(features):
        SubElement(query, f"{{{ns.DISCO_INFO}}}feature", {"var": var})
    return query


class GroupService:
    """The ``groups.DOMAIN`` service."""

    def __init__(
        self, ctx: FeatureContext, directory: DirectoryService, tracker: MessageTracker
    ) -> None:
        self.ctx = ctx
        self.index: DirectoryIndex = directory.index
        self.tracker = tracker
        self.domain = ctx.hosts.domain
        self.service = ctx.hosts.groups_domain

    def jid_of(self, group: IndexedGroup) -> str:
        """The group's address."""
        return f"{group.slug}@{self.service}"

    # -- who may do what ---------------------------------------------------------------

    def may_send(self, group: IndexedGroup, login: str | None) -> bool:
        """Whether ``login`` may message the group."""
        if login is None:
            return False
        if login in self.index.members_of(group.id):
            return True
        own = self.index.organisation_of(login) == group.organisation_id
        return own and group.whole_group_messaging

    def _check_sender(self, group: IndexedGroup, login: str | None) -> None:
        if self.may_send(group, login):
            return
        org = self.index.organisation_of(login) if login is not None else None
        if org is not None and org != group.organisation_id:
            name = self.index.organisation_name(group.organisation_id) or "that organisation"
            raise StanzaError(StanzaCondition.FORBIDDEN, MESSAGE_REFUSED.format(org=name))
        raise StanzaError(StanzaCondition.FORBIDDEN, NOT_A_MEMBER)

    def _sees(self, group: IndexedGroup, login: str | None) -> bool:
        """Whether the group exists for ``login`` (its organisation's users and its members)."""
        if login is None:
            return False
        return self.index.organisation_of(
            login
        ) == group.organisation_id or login in self.index.members_of(group.id)

    def _group(self, to: JID) -> IndexedGroup:
        group = self.index.group_by_slug(to.localpart or "")
        if group is None:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such group")
        return group

    # -- the router's entry point --------------------------------------------------------

    async def __call__(
        self, stanza: Element, from_jid: JID, to_jid: JID, origin: Session | None
    ) -> None:
        """Every stanza for ``groups.DOMAIN``: IQs, messages (presence means nothing here)."""
        kind = st.stanza_kind(stanza)
        if kind == "iq":
            await self._iq(stanza, from_jid, to_jid)
        elif kind == "message" and to_jid.localpart is not None:
            await self.message(stanza, from_jid, to_jid)

    async def message(self, stanza: Element, sender: JID, to: JID) -> None:
        """Deliver a member's message to the other members (see the module docstring)."""
        msg_type = stanza.get("type", "normal")
        if msg_type == "error":
            return
        group = self._group(to)
        if msg_type == "groupchat":
            raise StanzaError(StanzaCondition.BAD_REQUEST, "send chat messages to a group")
        if not stanzas.has_content(stanza):
            return  # receipts, markers, chat states: tracking saw them; nobody else needs them
        login = sender.localpart if sender.domain == self.domain else None
        self._check_sender(group, login)
        assert login is not None
        await self.deliver(group, stanza, sender.bare)

    async def deliver(self, group: IndexedGroup, stanza: Element, sender: JID) -> str:
        """Record a message once and route a copy to each member but ``sender``; its stanza id."""
        group_jid = self.jid_of(group)
        members = sorted(self.index.members_of(group.id))
        sender_login = sender.localpart or ""
        recipients = [f"{m}@{self.domain}" for m in members if m != sender_login]
        uid = str(uuid.uuid4())
        nick = self.index.name_of(sender_login)
        self.tracker.enqueue_message(
            key=(group_jid, GROUP),
            sender=str(sender),
            recipients=tuple(recipients),
            members=tuple(f"{m}@{self.domain}" for m in members),
            stanza=stanza,
            uid=uid,
            nick=nick,
            is_acknowledgeable=stanzas.is_acknowledgeable(stanza),
        )
        client_ids = stanzas.client_ids(stanza)
        from_jid = JID.parse(group_jid)
        for recipient in recipients:
            for cid in client_ids:
                self.tracker.client_ids.put((group_jid, recipient, cid), uid)
            copy = self._copy(stanza, group_jid, recipient, sender=str(sender), nick=nick, uid=uid)
            await self.ctx.router.route(copy, from_jid=from_jid, to_jid=JID.parse(recipient))
        log.debug("group %s: message to %d members", group.id, len(recipients))
        return uid

    @staticmethod
    def _copy(
        stanza: Element, group_jid: str, recipient: str, *, sender: str, nick: str, uid: str
    ) -> Element:
        attrs = {"type": "chat", "from": group_jid, "to": recipient, "id": stanza.get("id") or uid}
        msg = make(MESSAGE, attrs)
        msg.extend(deep_copy(c) for c in stanza if c.tag not in _NOT_COPIED)
        # XEP-0033: 'ofrom' names the original sender of a stanza whose 'from' is the service.
        msg.append(
            make(ADDRESSES, {}, make(f"{{{ADDRESS_NS}}}address", {"type": "ofrom", "jid": sender}))
        )
        if nick:
            msg.append(make(NICK, text=nick))
        stanzas.stamp(msg, group_jid, uid)
        return msg

    # -- service discovery -------------------------------------------------------------------

    async def _iq(self, iq: Element, from_jid: JID, to: JID) -> None:
        if iq.get("type") not in ("get", "set") or len(iq) == 0:
            return  # responses: we never ask
        req = IqRequest(
            stanza=iq,
            payload=iq[0],
            from_jid=from_jid,
            to_jid=to.bare,
            origin=self.ctx.sessions.get(from_jid),
        )
        result = self._disco(req)
        reply = st.iq_result(iq, result)
        reply.set("from", str(to))
        session = self.ctx.sessions.get(from_jid)
        if session is not None:
            self.ctx.router.deliver(session, reply)

    def _disco(self, req: IqRequest) -> Element:
        tag = req.payload.tag
        if req.type != "get" or tag not in (INFO, ITEMS):
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        if req.payload.get("node") is not None:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "unknown node")
        login = req.from_jid.localpart if req.from_jid.domain == self.domain else None
        # Not XEP-0033's address feature: that would offer a multicast service, which this is not.
        features = (ns.DISCO_INFO, ns.DISCO_ITEMS)
        if req.to_jid.localpart is None:
            if tag == INFO:
                return _disco(INFO, ("directory", "group", "Groups"), features)
            return self._service_items(login)
        group = self._group(req.to_jid)
        if not self._sees(group, login):
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such group")
        if tag == INFO:
            return _disco(INFO, ("directory", "group", group.name), features)
        query = _disco(ITEMS)
        for member in sorted(self.index.members_of(group.id)):
            attrs = {"jid": f"{member}@{self.domain}"}
            name = self.index.name_of(member)
            if name:
                attrs["name"] = name
            SubElement(query, f"{{{ns.DISCO_ITEMS}}}item", attrs)
        return query

    def _service_items(self, login: str | None) -> Element:
        """The groups the requester may message."""
        query = _disco(ITEMS)
        if login is None:
            return query
        own = self.index.organisation_of(login)
        candidates = {g.id: g for g in self.index.all_groups() if g.organisation_id == own}
        for gid in self.index.groups_of(login):
            group = self.index.group(gid)
            if group is not None:
                candidates[gid] = group
        for group in sorted(candidates.values(), key=lambda g: (g.name.lower(), g.id)):
            if self.may_send(group, login):
                SubElement(
                    query,
                    f"{{{ns.DISCO_ITEMS}}}item",
                    {"jid": self.jid_of(group), "name": group.name},
                )
        return query


def setup(ctx: FeatureContext) -> None:
    """Serve ``groups.DOMAIN``."""
    service = ctx.provide(
        GroupService(ctx, ctx.require(DirectoryService), ctx.require(MessageTracker))
    )
    ctx.router.add_service(ctx.hosts.groups_domain, service)
