"""Offline message storage (XEP-0160) with delayed-delivery stamps (XEP-0203).

A chat or normal message for an account without an available resource is
stored durably (the store commits before we return), stamped with
``<delay/>``, kept for the offline timeout and delivered when the account
next sends initial presence.

The offline timeout is the XMPP adapter's "Offline Message Timeout", read
when each message is stored (so a change applies to messages stored from then
on); its "Default" (and the timeout when no XMPP adapter is enabled) is
``FeatureConfig.offline_ttl`` (7 days unless configured otherwise).
"""

from __future__ import annotations

import asyncio
import logging
from copy import deepcopy
from datetime import datetime, timedelta
from xml.etree.ElementTree import Element

from carewire.adapters.xmpp.gateway import ChatSettingsSource
from carewire.core import hook_names as H
from carewire.core.events import SessionEvent, StanzaEvent
from carewire.core.feature import FeatureContext
from carewire.core.sessions import Session
from carewire.errors import NotFoundError
from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.parser import parse_document
from carewire.xmpp.xml import make, serialize

log = logging.getLogger(__name__)

CHATSTATES = "http://jabber.org/protocol/chatstates"
PURGE_INTERVAL = 3600.0


def _is_worth_storing(event: StanzaEvent) -> bool:
    """XEP-0160 §3: store normal and chat messages; XEP-0085 §5.5: not bare chat states."""
    stanza = event.stanza
    if stanza.get("type", "normal") not in ("normal", "chat"):
        return False
    return any(child.tag.split("}", 1)[0] != "{" + CHATSTATES for child in stanza)


def _expires_at(stanza: Element, kept_until: datetime) -> datetime:
    """When a stored copy goes: the offline timeout, or the message's own expiry if sooner.

    The expiry hint (``urn:carewire:expiry:0``, docs/retention.md) is put on by
    the server, so an expired message leaves offline storage with everything else.
    """
    hint = stanza.find(f"{{{ns.EXPIRY}}}expires")
    if hint is None:
        return kept_until
    try:
        at = datetime.fromisoformat(hint.get("at", "").replace("Z", "+00:00"))
    except ValueError:
        return kept_until
    return min(kept_until, at) if at.tzinfo is not None else kept_until


class OfflineMessages:
    """Stores messages for absent users and hands them over at initial presence."""

    def __init__(self, ctx: FeatureContext, settings: ChatSettingsSource) -> None:
        self.ctx = ctx
        self.settings = settings
        # Logins known to have stored messages; None until loaded (then: always ask the store).
        self.owners: set[str] | None = None
        # How many messages an account has stored, once read (the limit check asks for it at
        # every store: an alert to 200 offline phones must not be 400 counting queries).
        self.counts: dict[str, int] = {}
        # One hand-over at a time per account: the login's and a late store's (see store).
        self._handing: dict[str, asyncio.Lock] = {}

    async def load_owners(self, _payload: object = None) -> None:
        """Remember who has messages so logins without any skip the database."""
        self.owners = await self.ctx.stores.offline.owners()

    async def store(self, event: StanzaEvent) -> bool:
        """Persist a message for an absent account (hook ``message/offline``)."""
        if not _is_worth_storing(event):
            return True  # discarded by design (headline, bare chat states)
        assert event.to_jid is not None and event.to_jid.localpart is not None
        owner = event.to_jid.localpart
        limit = self.ctx.config.offline_max_per_user
        if limit and await self._count(owner) >= limit:
            raise StanzaError(StanzaCondition.RESOURCE_CONSTRAINT, "offline storage is full")
        now = self.ctx.clock.now()
        stored = deepcopy(event.stanza)
        stored.append(
            make(
                f"{{{ns.DELAY}}}delay",
                {"from": self.ctx.hosts.domain, "stamp": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")},
                text="Offline Storage",
            )
        )
        if self.owners is not None:
            # Before the write: a login that starts meanwhile must look in the store.
            self.owners.add(owner)
        try:
            await self.ctx.stores.offline.store(
                owner,
                serialize(stored, None),
                stamp=now,
                expires_at=_expires_at(event.stanza, now + self.ttl()),
            )
        except NotFoundError:
            # RFC 6121 §8.5.2.2.1: no such account → service-unavailable.
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE) from None
        if owner in self.counts:
            self.counts[owner] += 1
        late = self.ctx.sessions.top_priority(owner)
        if late:
            # The account came online while this message was being stored (its presence
            # was being handled when the message was routed): its login may have looked
            # in the store before this commit, so it is handed over now, not at next login.
            async with self._handing.setdefault(owner, asyncio.Lock()):
                await self._hand_over(late[0], owner)
            return True
        await self.ctx.hooks.fire(H.MESSAGE_STORED, event)
        return True

    async def _count(self, owner: str) -> int:
        """How many messages ``owner`` has stored (read once, then counted here)."""
        known = self.counts.get(owner)
        if known is not None:
            return known
        if self.owners is not None and owner not in self.owners:
            n = 0
        else:
            n = await self.ctx.stores.offline.count(owner)
        self.counts[owner] = n
        return n

    def ttl(self) -> timedelta:
        """How long a message stored now is kept (the adapter's Offline Message Timeout)."""
        settings = self.settings.current()
        if settings.get("offline_message_timeout") in (None, "Default"):
            return self.ctx.config.offline_ttl
        return settings.offline_message_timeout

    async def deliver(self, event: SessionEvent) -> None:
        """Send stored messages to a session that just became available."""
        session = event.session
        owner = session.username
        if self.owners is not None and owner not in self.owners:
            return
        async with self._handing.setdefault(owner, asyncio.Lock()):
            await self._hand_over(session, owner)

    async def _hand_over(self, session: Session, owner: str) -> None:
        messages = await self.ctx.stores.offline.fetch(owner, now=self.ctx.clock.now())
        for m in messages:
            try:
                self.ctx.router.deliver(session, parse_document(m.stanza))
            except Exception:  # a corrupt row must not block the rest
                log.exception("stored message %d could not be delivered", m.id)
        if messages:
            await self.ctx.stores.offline.delete(owner, [m.id for m in messages])
            log.info("delivered %d offline messages to %s", len(messages), session.jid)
        if self.owners is not None:
            self.owners.discard(owner)
        self.counts.pop(owner, None)

    async def purge(self) -> None:
        """Discard messages older than the offline timeout."""
        n = await self.ctx.stores.offline.purge_expired(self.ctx.clock.now())
        if n:
            log.info("discarded %d expired offline messages", n)
            self.counts.clear()
            await self.load_owners()

    async def forget(self, event: object) -> None:
        """An account was removed (its rows went with it)."""
        login = getattr(event, "login", None)
        if self.owners is not None and login is not None:
            self.owners.discard(login)
        if login is not None:
            self.counts.pop(login, None)
            self._handing.pop(login, None)


def setup(ctx: FeatureContext) -> None:
    """Register offline storage."""
    offline = ctx.provide(OfflineMessages(ctx, ctx.require(ChatSettingsSource)))
    ctx.hooks.on(H.MESSAGE_OFFLINE, offline.store)
    ctx.hooks.on(H.SESSION_INITIAL_PRESENCE, offline.deliver)
    ctx.hooks.on(H.SERVER_STARTED, offline.load_owners)
    ctx.hooks.on(H.ACCOUNT_REMOVED, offline.forget)
    ctx.disco.add_server_feature(ns.OFFLINE)
    ctx.every("offline-purge", PURGE_INTERVAL, offline.purge)
