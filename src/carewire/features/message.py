"""Message delivery to local accounts and resources (RFC 6121 §8.5.2 and §8.5.3).

These are the default handlers, registered at the lowest priority so other
features (blocking, carbons, archiving) can act first and stop a message.
"""

from __future__ import annotations

import logging

from carewire.core import hook_names as H
from carewire.core.events import StanzaEvent
from carewire.core.feature import FeatureContext
from carewire.xmpp.errors import StanzaCondition, StanzaError

log = logging.getLogger(__name__)

DEFAULT_PRIORITY = -1000


class MessageDelivery:
    """RFC 6121 §8.5 rules for messages addressed to this domain."""

    def __init__(self, ctx: FeatureContext) -> None:
        self.ctx = ctx
        self.sessions = ctx.sessions
        self.router = ctx.router
        self.hooks = ctx.hooks

    async def to_bare(self, event: StanzaEvent) -> bool:
        """§8.5.2: a message to an account's bare JID."""
        stanza = event.stanza
        assert event.to_jid is not None and event.to_jid.localpart is not None
        login = event.to_jid.localpart
        msg_type = stanza.get("type", "normal")
        if msg_type == "groupchat":
            # §8.5.2.1.1: "the server MUST return an error to the sender" (no conference here).
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        if msg_type == "error":
            return True  # §8.5.2.1.1: error messages to a bare JID are silently ignored
        if msg_type == "headline":
            for s in self.sessions.non_negative(login):
                self.router.deliver(s, stanza)
            return True
        # normal, chat: the highest-priority available resource(s).
        targets = self.sessions.top_priority(login)
        if targets:
            for s in targets:
                self.router.deliver(s, stanza)
            return True
        if await self.hooks.fire(H.MESSAGE_OFFLINE, event):
            return True
        # No offline storage took it: the account may not exist, or storage is off.
        raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)

    async def to_full(self, event: StanzaEvent) -> bool:
        """§8.5.3: a message to a full JID."""
        assert event.to_jid is not None
        session = self.sessions.get(event.to_jid)
        if session is not None:
            self.router.deliver(session, event.stanza)
            return True
        msg_type = event.stanza.get("type", "normal")
        if msg_type in ("chat", "normal"):
            # §8.5.3.2.1: chat (and, by our choice, normal) falls back to the bare JID.
            bare = StanzaEvent(
                stanza=event.stanza,
                from_jid=event.from_jid,
                to_jid=event.to_jid.bare,
                origin=event.origin,
            )
            return await self.to_bare(bare)
        if msg_type == "groupchat":
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        return True  # headline, error: silently ignored

    def to_host(self, event: StanzaEvent) -> bool:
        """Messages to the server itself are not processed (no handler claimed them)."""
        return True


def setup(ctx: FeatureContext) -> None:
    """Register the default message delivery handlers."""
    delivery = MessageDelivery(ctx)
    ctx.hooks.on(H.MESSAGE_BARE, delivery.to_bare, priority=DEFAULT_PRIORITY)
    ctx.hooks.on(H.MESSAGE_FULL, delivery.to_full, priority=DEFAULT_PRIORITY)
    ctx.hooks.on(H.MESSAGE_HOST, delivery.to_host, priority=DEFAULT_PRIORITY)
