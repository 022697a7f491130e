"""What another XMPP domain may reach here (RFC 6120 §13.1, XEP-0030 §8): the federation gate.

Theory of operation: the router hands every stanza that arrives from another
domain to hook ``remote/inbound`` before routing it (see
:mod:`carewire.core.router`); this feature decides there, once for all
features, what a remote entity may see of ours. The rules (documented in
``docs/federation-features.md``):

- Messages and presence to an account of ours pass (1:1 chat, subscriptions,
  probes, receipts, markers, clinical extensions); the account's privacy list
  (XEP-0191 blocking) still applies, and which domains may federate at all is
  the federation policy's (the allow-list of partner domains).
- Everything for ``chat.DOMAIN`` passes: the room service decides (members-only
  rooms, bans, who may read a room's archive).
- The internal services (``patients.``, ``groups.``, ``upload.``, ``push.``)
  answer nobody from another domain: ``service-unavailable``.
- IQs to the server itself: only disco#info, disco#items and ping.
- IQs to an account's bare JID: only disco#info, disco#items and vCard reads,
  and only for an entity the account shares its presence with (subscription
  'from' or 'both'), as XEP-0030 §8 requires for disco; anyone else gets
  ``service-unavailable``, the answer for an account that does not exist, so
  a remote domain cannot list our accounts.
- IQs to a resource (full JID): only from an entity the account shares its
  presence with, or that the resource sent directed presence to (a remote
  room it joined).

IQ responses (result, error) always pass: the router matches them to what was asked.
"""

from __future__ import annotations

import logging
from typing import Final

from carewire.core import hook_names as H
from carewire.core.events import StanzaEvent
from carewire.core.feature import FeatureContext
from carewire.features.presence import sent_directed_presence
from carewire.features.roster import Rosters
from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID
from carewire.xmpp.subscription import Subscription

log = logging.getLogger(__name__)

#: Before every other handler of the hook.
PRIORITY: Final = 1000
IQ: Final = f"{{{ns.CLIENT}}}iq"
#: Payloads a remote entity may ask the server itself about.
SERVER_PAYLOADS: Final = frozenset(
    {f"{{{ns.DISCO_INFO}}}query", f"{{{ns.DISCO_ITEMS}}}query", f"{{{ns.PING}}}ping"}
)
#: Payloads a remote entity may ask an account's bare JID about (reads only).
ACCOUNT_PAYLOADS: Final = frozenset(
    {f"{{{ns.DISCO_INFO}}}query", f"{{{ns.DISCO_ITEMS}}}query", f"{{{ns.VCARD}}}vCard"}
)


def _unavailable() -> StanzaError:
    return StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)


class FederationGate:
    """The rules for stanzas from other domains."""

    def __init__(self, ctx: FeatureContext) -> None:
        self.ctx = ctx
        self.hosts = ctx.hosts
        self.rosters = Rosters.of(ctx)

    async def on_inbound(self, event: StanzaEvent) -> bool:
        """Hook ``remote/inbound``: refuse (raise) what a remote entity may not reach."""
        to = event.to_jid
        assert to is not None
        if to.domain == self.hosts.chat_domain:
            return False  # the room service applies the rooms' own rules
        if to.domain != self.hosts.domain:
            log.debug("refused a stanza from %s to an internal service", event.from_jid.domain)
            raise _unavailable()
        if event.stanza.tag == IQ and event.stanza.get("type") in ("get", "set"):
            await self._check_iq(event, to)
        return False

    async def _check_iq(self, event: StanzaEvent, to: JID) -> None:
        payload = event.stanza[0] if len(event.stanza) else None
        tag = payload.tag if payload is not None else ""
        requester = event.from_jid
        if to.localpart is None:
            if tag not in SERVER_PAYLOADS:
                raise _unavailable()
            return
        if to.resource is None:
            is_read = event.stanza.get("type") == "get"
            if not is_read or tag not in ACCOUNT_PAYLOADS:
                raise _unavailable()
            if not await self.shares_presence(to.localpart, requester):
                raise _unavailable()
            return
        session = self.ctx.sessions.get(to)
        if session is not None and sent_directed_presence(session, requester):
            return
        if not await self.shares_presence(to.localpart, requester):
            raise _unavailable()

    async def shares_presence(self, login: str, requester: JID) -> bool:
        """Whether ``login`` lets ``requester`` see its presence (subscription 'from' or 'both')."""
        if not self.ctx.sessions.is_online(login) and not await self.ctx.stores.accounts.exists(
            login
        ):
            return False
        roster = await self.rosters.get(login)
        item = roster.items.get(str(requester.bare))
        return item is not None and Subscription(item.subscription.value).has_from


def setup(ctx: FeatureContext) -> None:
    """Apply the federation gate to every stanza from another domain."""
    gate = ctx.provide(FederationGate(ctx))
    ctx.hooks.on(H.REMOTE_INBOUND, gate.on_inbound, priority=PRIORITY)
