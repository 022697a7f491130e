"""XEP-0163 Personal Eventing Protocol with XEP-0223 persistence, and what clients build on it.

Every account has a PEP service at its bare JID (:mod:`.service`, IQs in
:mod:`.handlers`, the pubsub subset in :mod:`.model`); notifications follow
presence subscriptions and the ``+notify`` features of each client's entity
capabilities (:mod:`.caps`, :mod:`.notify`). On top: XEP-0402 bookmarks kept in
step with private storage (:mod:`.bookmarks`), XEP-0084 avatars kept in step
with the vCard (XEP-0398, :mod:`.avatars`), and the hospital's end-to-end
encryption policy for OMEMO nodes (:mod:`.omemo`). Client documentation: docs/pep.md.

Theory of operation: a client's available presence (hook ``pre-presence``, before
the presence feature broadcasts it) gets the avatar hash and starts the
resolution of its capabilities in a task this feature owns; once the ``+notify``
nodes are known, the last items of those nodes (own and contacts') are sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from carewire.core import hook_names as H
from carewire.core.events import StanzaEvent, SubscriptionEvent
from carewire.core.feature import FeatureContext, IqTarget
from carewire.core.sessions import Session
from carewire.features.pep import omemo
from carewire.features.pep.avatars import CONVERSION_FEATURE, AvatarSync
from carewire.features.pep.bookmarks import CONVERSION_FEATURES, LEGACY, BookmarkSync
from carewire.features.pep.caps import CapsCache, CapsRef, caps_of, notify_nodes
from carewire.features.pep.handlers import OWNER_QUERY, QUERY, PepHandlers
from carewire.features.pep.model import PUBSUB, Limits
from carewire.features.pep.notify import NOTIFY_KEY, notify_set
from carewire.features.pep.service import (
    AVATAR_METADATA,
    BOOKMARKS,
    PepService,
)
from carewire.features.private import PrivateStorage
from carewire.features.vcard import VCards
from carewire.xmpp.xml import serialize

log = logging.getLogger(__name__)

#: The notify set of a session that wants no notifications (shared, not one per session).
_NO_NODES: frozenset[str] = frozenset()

__all__ = ["BookmarkSync", "PepFeature", "PepService", "setup"]

#: XEP-0060 §10 features of the subset served here (what Conversations, Gajim and Dino check).
PUBSUB_FEATURES = tuple(
    f"{PUBSUB}#{name}"
    for name in (
        "publish",
        "publish-options",
        "auto-create",
        "create-nodes",
        "persistent-items",
        "last-published",
        "access-presence",
        "access-open",
        "access-whitelist",
        "filtered-notifications",
        "retrieve-items",
        "retract-items",
        "delete-items",
        "delete-nodes",
        "purge-nodes",
        "config-node",
        "config-node-max",
        "item-ids",
        "presence-notifications",
    )
)
_PRIORITY = 50  # before the presence feature broadcasts the stanza


class PepFeature:
    """Presence-time work of PEP: avatar hash, capabilities, last items."""

    def __init__(
        self, ctx: FeatureContext, service: PepService, avatars: AvatarSync, caps: CapsCache
    ) -> None:
        self.ctx = ctx
        self.service = service
        self.avatars = avatars
        self.caps = caps
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        # The owner of these tasks is their supervisor: a failure is our bug, logged.
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("PEP presence work failed", exc_info=task.exception())

    async def settle(self, _payload: object = None) -> None:
        """Let pending capability look-ups and deliveries finish (server stopping; tests).

        Look-ups end within their timeout; whatever is left after 15 s is cancelled.
        """
        for _ in range(3):  # a finishing task may start one more (the last-item delivery)
            if not self._tasks:
                return
            await asyncio.wait(set(self._tasks), timeout=15)
        for task in set(self._tasks):
            task.cancel()

    async def on_presence(self, event: StanzaEvent) -> bool:
        """Hook ``pre-presence``: stamp the avatar hash; learn the client's ``+notify``."""
        session = event.origin
        if session is None or event.stanza.get("type") is not None:
            return False
        await self.avatars.stamp(session.username, event.stanza)
        if event.to_jid is None:
            self._learn(session, caps_of(event.stanza), is_initial=session.presence is None)
        return False

    def _learn(self, session: Session, ref: CapsRef | None, *, is_initial: bool) -> None:
        before = frozenset() if is_initial else notify_set(session)
        if ref is None:
            if is_initial:
                session.data[NOTIFY_KEY] = _NO_NODES
            return
        features = self.caps.known(ref)
        if features is not None:
            nodes = notify_nodes(features)
            session.data[NOTIFY_KEY] = nodes
            if nodes - before:
                self._spawn(self._send_last(session, nodes - before))
            return
        self._spawn(self._resolve(session, ref, before))

    async def _resolve(self, session: Session, ref: CapsRef, before: frozenset[str]) -> None:
        nodes = notify_nodes(await self.caps.resolve(session, ref))
        if self.ctx.sessions.get(session.jid) is not session:
            return  # gone meanwhile
        session.data[NOTIFY_KEY] = nodes
        await self._send_last(session, nodes - before)

    async def _send_last(self, session: Session, nodes: frozenset[str]) -> None:
        if self.ctx.sessions.get(session.jid) is not session:
            return  # gone meanwhile
        await self.service.notifier.send_last_items(session, nodes)

    async def on_subscribed(self, event: SubscriptionEvent) -> None:
        """XEP-0163 §4.3.2: a new subscriber's resources get the account's last items."""
        subscriber = event.contact.localpart
        if subscriber is None or event.contact.domain != self.ctx.hosts.domain:
            return
        for session in self.ctx.sessions.available_of_user(subscriber):
            nodes = notify_set(session)
            await self.service.notifier.send_last_items(session, nodes, owners=[event.login])

    async def sweep_e2e(self, _payload: object = None) -> None:
        """While the policy refuses, empty stored OMEMO device lists and drop key bundles."""
        if not self.service.policy.is_refused:
            return
        store = self.ctx.stores.pep
        owners: set[str] = set()
        for node in omemo.DEVICE_LISTS:
            empty = omemo.empty_device_list(node)
            for stored in await store.nodes_named(node):
                owners.add(stored.owner)
                items = await store.items(stored.owner, node)
                if len(items) == 1 and items[0].payload == serialize(empty, None):
                    continue
                await store.purge(stored.owner, node)
                await self.service.publish(stored.owner, node, "current", empty, internal=True)
        for owner in sorted(owners):
            for stored in await store.list_nodes(owner):
                if omemo.is_omemo_node(stored.node) and stored.node not in omemo.DEVICE_LISTS:
                    await self.service.delete(owner, stored.node, internal=True)
        if owners:
            log.info(
                "end-to-end encryption refused: device lists of %d accounts emptied", len(owners)
            )


def _limits(ctx: FeatureContext) -> Limits:
    c = ctx.config
    return Limits(
        item_max_bytes=c.pep_item_max_bytes,
        avatar_max_bytes=c.pep_avatar_max_bytes,
        max_items=c.pep_max_items,
        max_nodes=c.pep_max_nodes,
    )


def _policy(ctx: FeatureContext) -> omemo.E2EPolicy:
    mode = omemo.E2EMode(ctx.config.e2e_encryption)
    return omemo.E2EPolicy(mode=mode, reason=ctx.config.e2e_reason or omemo.DEFAULT_REASON)


def _advertise(ctx: FeatureContext, service: PepService, policy: omemo.E2EPolicy) -> None:
    # XEP-0163 §6: "an account MUST advertise ... an identity of "pubsub/pep""
    ctx.disco.add_account_identity("pubsub", "pep")
    for var in (*PUBSUB_FEATURES, PUBSUB, *CONVERSION_FEATURES, CONVERSION_FEATURE):
        ctx.disco.add_account_feature(var)
    ctx.disco.add_account_form(lambda: omemo.disco_form(policy))
    ctx.disco.add_account_items(service.visible_nodes)


def setup(ctx: FeatureContext) -> None:
    """Register PEP's IQ handlers, presence hook, conversions and disco features."""
    policy = _policy(ctx)
    service = ctx.provide(PepService(ctx, limits=_limits(ctx), policy=policy))
    handlers = PepHandlers(service)
    caps = CapsCache(ctx.router, timeout=min(ctx.config.ping_timeout, 10.0))
    avatars = AvatarSync(ctx, service)
    feature = ctx.provide(PepFeature(ctx, service, avatars, caps))
    bookmarks = ctx.provide(BookmarkSync(ctx, service))
    service.listen(BOOKMARKS, bookmarks.from_pep)
    service.listen(LEGACY, bookmarks.from_legacy_pep)
    service.listen(AVATAR_METADATA, avatars.from_pep)
    private = ctx.find(PrivateStorage)
    if private is not None:
        private.on_stored(bookmarks.from_private)
    vcards = ctx.find(VCards)
    if vcards is not None:
        vcards.on_set(avatars.from_vcard)
    own, bare = (IqTarget.ACCOUNT,), (IqTarget.BARE,)
    ctx.iq.register(QUERY, handlers.own_set, types=("set",), targets=own)
    ctx.iq.register(QUERY, handlers.forbidden, types=("set",), targets=bare)
    ctx.iq.register(QUERY, handlers.get, types=("get",), targets=(*own, *bare))
    ctx.iq.register(OWNER_QUERY, handlers.owner_get, types=("get",), targets=own)
    ctx.iq.register(OWNER_QUERY, handlers.owner_set, types=("set",), targets=own)
    ctx.iq.register(OWNER_QUERY, handlers.forbidden, types=("get", "set"), targets=bare)
    ctx.hooks.on(H.PRE_PRESENCE, feature.on_presence, priority=_PRIORITY)
    ctx.hooks.on(H.PRESENCE_SUBSCRIBED, feature.on_subscribed)
    ctx.hooks.on(H.ACCOUNT_REMOVED, avatars.forget)
    ctx.hooks.on(H.SERVER_STARTED, feature.sweep_e2e)
    ctx.hooks.on(H.SERVER_STARTED, bookmarks.on_started)
    ctx.hooks.on(H.SERVER_STOPPING, feature.settle)
    _advertise(ctx, service, policy)
