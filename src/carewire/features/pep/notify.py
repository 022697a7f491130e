"""PEP notifications (XEP-0163 §4.3): who hears of a node's items, and last-item delivery.

PEP subscriptions are implicit: an account's resource hears of a contact's node
when the account is subscribed to the contact's presence, the node's access
model lets it read, and the resource's entity capabilities list ``NODE+notify``
(:mod:`.caps`). The owner's own resources hear of every node of the owner they
``+notify``. Notifications go straight to the matching available sessions as
``headline`` messages from the owner's bare JID.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from xml.etree.ElementTree import Element, SubElement

from carewire.core.feature import FeatureContext
from carewire.core.sessions import Session
from carewire.core.stores import PepItem
from carewire.features.pep.model import PUBSUB_EVENT, AccessModel, NodeConfig, SendLast
from carewire.features.roster import Rosters
from carewire.xmpp import ns
from carewire.xmpp.errors import RemoteProtocolError
from carewire.xmpp.jid import JID, InvalidJID
from carewire.xmpp.parser import parse_document
from carewire.xmpp.stanza import MESSAGE
from carewire.xmpp.xml import deep_copy, make

log = logging.getLogger(__name__)

#: ``session.data`` key: the nodes the session's client ``+notify`` (a frozenset).
NOTIFY_KEY = "pep.notify"
EVENT = f"{{{PUBSUB_EVENT}}}event"


def notify_set(session: Session) -> frozenset[str]:
    """The nodes ``session`` wants notifications of."""
    nodes = session.data.get(NOTIFY_KEY)
    return nodes if isinstance(nodes, frozenset) else frozenset()


def items_event(node: str, items: Iterable[tuple[str, Element | None]]) -> Element:
    """``<items node=…><item id=…>payload</item></items>`` (XEP-0060 §7.1.2.1)."""
    el = Element(f"{{{PUBSUB_EVENT}}}items", {"node": node})
    for item_id, payload in items:
        item = SubElement(el, f"{{{PUBSUB_EVENT}}}item", {"id": item_id})
        if payload is not None:
            item.append(payload)
    return el


def retract_event(node: str, ids: Sequence[str]) -> Element:
    """``<items node=…><retract id=…/></items>`` (XEP-0060 §7.2.2.1)."""
    el = Element(f"{{{PUBSUB_EVENT}}}items", {"node": node})
    for item_id in ids:
        SubElement(el, f"{{{PUBSUB_EVENT}}}retract", {"id": item_id})
    return el


def delete_event(node: str) -> Element:
    """``<delete node=…/>`` (XEP-0060 §8.4.2)."""
    return Element(f"{{{PUBSUB_EVENT}}}delete", {"node": node})


def event_message(owner: JID, to: JID, child: Element, *, stamp: datetime | None = None) -> Element:
    """The headline message carrying one event from ``owner``'s PEP service."""
    attrs = {"type": "headline", "from": str(owner), "to": str(to), "id": secrets.token_hex(6)}
    msg = make(MESSAGE, attrs)
    event = SubElement(msg, EVENT)
    event.append(deep_copy(child))
    if stamp is not None:  # last-item delivery: when it was published (XEP-0203)
        SubElement(msg, f"{{{ns.DELAY}}}delay", {"from": str(owner), "stamp": stamp.isoformat()})
    return msg


class Notifier:
    """Sends PEP events to the sessions that should hear them."""

    def __init__(self, ctx: FeatureContext) -> None:
        self.ctx = ctx
        self.rosters = Rosters.of(ctx)

    def owner_jid(self, owner: str) -> JID:
        """The bare JID of ``owner``'s PEP service."""
        return JID.parse(f"{owner}@{self.ctx.hosts.domain}")

    async def readers(self, owner: str, config: NodeConfig) -> list[str]:
        """The logins whose resources may hear of ``owner``'s node: the owner, then contacts."""
        logins = [owner]
        if config.access_model is AccessModel.WHITELIST:
            return logins
        roster = await self.rosters.get(owner)
        for contact in roster.contacts(lambda s: s.has_from):
            login = self._local(contact)
            if login is not None and login != owner:
                logins.append(login)
        return logins

    async def broadcast(self, owner: str, node: str, config: NodeConfig, child: Element) -> int:
        """Send ``child`` to every session that may and wants to hear of the node; how many."""
        sent = 0
        owner_jid = self.owner_jid(owner)
        for login in await self.readers(owner, config):
            for session in self.ctx.sessions.available_of_user(login):
                if node in notify_set(session):
                    self.ctx.router.deliver(session, event_message(owner_jid, session.jid, child))
                    sent += 1
        return sent

    async def send_last_items(
        self, session: Session, nodes: frozenset[str], *, owners: list[str] | None = None
    ) -> int:
        """XEP-0163 §4.3.2: the last item of each of ``nodes`` of the session's user and of
        the contacts whose presence the user receives (or of ``owners``); how many were sent."""
        if not nodes:
            return 0
        login = session.username
        if owners is None:
            owners = [login]
            roster = await self.rosters.get(login)
            for contact in roster.contacts(lambda s: s.has_to):
                other = self._local(contact)
                if other is not None and other != login:
                    owners.append(other)
        sent = 0
        for node, item in await self.ctx.stores.pep.last_items(owners, sorted(nodes)):
            config = NodeConfig.from_json(node.config)
            if not self._may_receive_last(node.owner, login, config):
                continue
            payload = self._payload(item) if config.deliver_payloads else None
            child = items_event(node.node, [(item.item_id, payload)])
            msg = event_message(
                self.owner_jid(node.owner), session.jid, child, stamp=item.published_at
            )
            self.ctx.router.deliver(session, msg)
            sent += 1
        return sent

    @staticmethod
    def _may_receive_last(owner: str, login: str, config: NodeConfig) -> bool:
        if config.send_last_published_item is SendLast.NEVER:
            return False
        # The user's roster says it receives the owner's presence ('to'/'both'): the
        # owner's side says 'from'/'both' (one server keeps both rosters in step).
        return owner == login or config.access_model is not AccessModel.WHITELIST

    @staticmethod
    def _payload(item: PepItem) -> Element | None:
        try:
            return parse_document(item.payload)
        except RemoteProtocolError:  # a stored payload was checked when it was published
            log.error("a stored PEP item does not parse; sent without payload")
            return None

    def _local(self, contact: str) -> str | None:
        try:
            jid = JID.parse(contact)
        except InvalidJID:
            return None
        if jid.domain != self.ctx.hosts.domain or jid.localpart is None:
            return None
        return jid.localpart
