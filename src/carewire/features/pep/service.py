"""The PEP service of every account (XEP-0163): publish, retract, read, configure, delete.

Each account owns its nodes; only the owner writes them. Items persist in
``ctx.stores.pep`` (XEP-0223) and notifications go out after the store has
committed (:mod:`.notify`). Other features follow changes through
:meth:`PepService.listen` (bookmark and avatar conversion, :mod:`.bookmarks`,
:mod:`.avatars`); a change the service makes on a listener's behalf carries
``internal=True`` so conversions do not echo.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from xml.etree.ElementTree import Element

from carewire.core.feature import FeatureContext
from carewire.core.stores import PepItem
from carewire.errors import ConflictError, NotFoundError
from carewire.features.pep import omemo
from carewire.features.pep.model import (
    PUBSUB_EVENT,
    AccessModel,
    Limits,
    NodeConfig,
    apply_form,
    check_preconditions,
    pubsub_error,
)
from carewire.features.pep.notify import Notifier, delete_event, items_event, retract_event
from carewire.features.roster import Rosters
from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID
from carewire.xmpp.parser import parse_document
from carewire.xmpp.subscription import Subscription
from carewire.xmpp.xml import serialize

log = logging.getLogger(__name__)

AVATAR_DATA = "urn:xmpp:avatar:data"
AVATAR_METADATA = "urn:xmpp:avatar:metadata"
BOOKMARKS = "urn:xmpp:bookmarks:1"


class ChangeKind(StrEnum):
    """What happened to a node."""

    PUBLISHED = "published"
    RETRACTED = "retracted"
    DELETED = "deleted"  # the node, or all its items (purge)


@dataclass(frozen=True, slots=True, kw_only=True)
class PepChange:
    """Payload of a PEP listener: one change of one node of one account."""

    owner: str
    node: str
    kind: ChangeKind
    item_id: str = ""
    payload: Element | None = None
    internal: bool = False  # made by a conversion, not by a client


Listener = Callable[[PepChange], Awaitable[None]]


@dataclass(slots=True)
class _Listeners:
    by_node: dict[str, list[Listener]] = field(default_factory=dict)


class PepService:
    """Every account's PEP nodes."""

    def __init__(self, ctx: FeatureContext, *, limits: Limits, policy: omemo.E2EPolicy) -> None:
        self.ctx = ctx
        self.store = ctx.stores.pep
        self.limits = limits
        self.policy = policy
        self.notifier = Notifier(ctx)
        self.rosters = Rosters.of(ctx)
        self._listeners = _Listeners()

    def listen(self, node: str, listener: Listener) -> None:
        """Call ``listener`` after each change of any account's ``node``."""
        self._listeners.by_node.setdefault(node, []).append(listener)

    async def _changed(self, change: PepChange) -> None:
        for listener in self._listeners.by_node.get(change.node, ()):
            await listener(change)

    def default_config(self, node: str) -> NodeConfig:
        """The configuration of a node created without options (XEP-0163 §4.2)."""
        return NodeConfig()

    async def config_of(self, owner: str, node: str) -> NodeConfig:
        """The node's configuration.

        Raises:
            StanzaError: ``item-not-found`` (no such node).
        """
        stored = await self.store.get_node(owner, node)
        if stored is None:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such node")
        return NodeConfig.from_json(stored.config)

    # -- writes (the owner) ---------------------------------------------------------

    async def publish(
        self,
        owner: str,
        node: str,
        item_id: str | None,
        payload: Element,
        *,
        options: dict[str, list[str]] | None = None,
        internal: bool = False,
    ) -> str:
        """Publish ``payload`` as item ``item_id`` (generated if None); the item's id.

        Raises:
            StanzaError: The XEP-0060 §7.1.3 errors: ``not-acceptable`` +
                ``payload-too-big``, ``conflict`` + ``precondition-not-met``,
                ``not-allowed`` (the encryption policy), ``not-acceptable`` for
                bad options.
        """
        if not internal:
            omemo.check(self.policy, node)
        xml = serialize(payload, None)
        self._check_size(node, xml)
        stored = await self.store.get_node(owner, node)
        if stored is not None:
            config = NodeConfig.from_json(stored.config)
            if options:
                check_preconditions(options, config, self.limits)
        else:
            config = apply_form(options or {}, self.default_config(node), self.limits)
            if not internal:
                await self._check_room(owner)
        item = PepItem(
            item_id=item_id or secrets.token_hex(8),
            payload=xml,
            publisher=f"{owner}@{self.ctx.hosts.domain}",
            published_at=self.ctx.clock.now(),
        )
        try:
            done = await self.store.publish(
                owner,
                node,
                item,
                config=config.to_json(),
                max_items=config.max_items if config.persist_items else 0,
            )
        except NotFoundError:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such account") from None
        config = NodeConfig.from_json(done.config)
        shown = payload if config.deliver_payloads else None
        await self.notifier.broadcast(
            owner, node, config, items_event(node, [(item.item_id, shown)])
        )
        await self._changed(
            PepChange(
                owner=owner,
                node=node,
                kind=ChangeKind.PUBLISHED,
                item_id=item.item_id,
                payload=payload,
                internal=internal,
            )
        )
        return item.item_id

    async def _check_room(self, owner: str) -> None:
        """A new node must fit under the per-account limit."""
        if len(await self.store.list_nodes(owner)) >= self.limits.max_nodes:
            raise StanzaError(
                StanzaCondition.RESOURCE_CONSTRAINT,
                f"an account may have at most {self.limits.max_nodes} nodes",
            )

    def _check_size(self, node: str, xml: str) -> None:
        limit = self.limits.avatar_max_bytes if node == AVATAR_DATA else self.limits.item_max_bytes
        size = len(xml.encode("utf-8"))
        if size > limit:
            # XEP-0060 §7.1.3.4: "<not-acceptable/> ... <payload-too-big/>".
            raise pubsub_error(
                StanzaCondition.NOT_ACCEPTABLE,
                "payload-too-big",
                f"the item is {size} bytes; this node takes at most {limit}",
            )

    async def retract(
        self, owner: str, node: str, item_id: str, *, notify: bool | None, internal: bool = False
    ) -> None:
        """Remove one item (XEP-0060 §7.2).

        Raises:
            StanzaError: ``item-not-found`` (no such node or item).
        """
        config = await self.config_of(owner, node)
        if not await self.store.retract(owner, node, item_id):
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such item")
        if notify if notify is not None else config.notify_retract:
            await self.notifier.broadcast(owner, node, config, retract_event(node, [item_id]))
        await self._changed(
            PepChange(
                owner=owner,
                node=node,
                kind=ChangeKind.RETRACTED,
                item_id=item_id,
                internal=internal,
            )
        )

    async def create(self, owner: str, node: str, options: dict[str, list[str]]) -> None:
        """Create a node (XEP-0060 §8.1), optionally configured.

        Raises:
            StanzaError: ``conflict`` (it exists), ``not-allowed`` (policy), ``not-acceptable``.
        """
        omemo.check(self.policy, node)
        config = apply_form(options, self.default_config(node), self.limits)
        await self._check_room(owner)
        try:
            await self.store.create_node(owner, node, config.to_json())
        except ConflictError:
            raise StanzaError(StanzaCondition.CONFLICT, "the node exists") from None
        except NotFoundError:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such account") from None

    async def configure(self, owner: str, node: str, values: dict[str, list[str]]) -> None:
        """Change a node's configuration (XEP-0060 §8.2); surplus items are dropped.

        Raises:
            StanzaError: ``item-not-found``, ``not-allowed`` (policy), ``not-acceptable``.
        """
        omemo.check(self.policy, node)
        config = apply_form(values, await self.config_of(owner, node), self.limits)
        max_items = config.max_items if config.persist_items else 0
        try:
            await self.store.set_config(owner, node, config.to_json(), max_items=max_items)
        except NotFoundError:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such node") from None

    async def delete(self, owner: str, node: str, *, internal: bool = False) -> None:
        """Delete a node with its items (XEP-0060 §8.4); subscribers hear of it.

        Raises:
            StanzaError: ``item-not-found``.
        """
        config = await self.config_of(owner, node)
        if not await self.store.delete_node(owner, node):
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such node")
        if config.notify_delete:
            await self.notifier.broadcast(owner, node, config, delete_event(node))
        await self._changed(
            PepChange(owner=owner, node=node, kind=ChangeKind.DELETED, internal=internal)
        )

    async def purge(self, owner: str, node: str) -> None:
        """Remove every item of a node (XEP-0060 §8.5).

        Raises:
            StanzaError: ``item-not-found``.
        """
        config = await self.config_of(owner, node)
        await self.store.purge(owner, node)
        purge = Element(f"{{{PUBSUB_EVENT}}}purge", {"node": node})
        await self.notifier.broadcast(owner, node, config, purge)
        await self._changed(PepChange(owner=owner, node=node, kind=ChangeKind.DELETED))

    # -- reads ---------------------------------------------------------------------------

    async def check_read(self, requester: JID, owner: str, config: NodeConfig) -> None:
        """XEP-0060 §6.5.9: may ``requester`` read ``owner``'s node?

        Raises:
            StanzaError: ``not-authorized`` + ``presence-subscription-required``
                (presence model), ``not-allowed`` + ``closed-node`` (whitelist).
        """
        if requester.localpart == owner and requester.domain == self.ctx.hosts.domain:
            return
        if config.access_model is AccessModel.OPEN:
            return
        if config.access_model is AccessModel.WHITELIST:
            raise pubsub_error(StanzaCondition.NOT_ALLOWED, "closed-node", "the node is private")
        roster = await self.rosters.get(owner)
        item = roster.items.get(str(requester.bare))
        if item is None or not Subscription(item.subscription.value).has_from:
            raise pubsub_error(
                StanzaCondition.NOT_AUTHORIZED,
                "presence-subscription-required",
                "the node is for the owner's presence subscribers",
            )

    async def visible_nodes(self, requester: JID, owner: str) -> list[Element]:
        """XEP-0060 §5.2: the owner's nodes ``requester`` may read, as disco#items items."""
        items = []
        jid = f"{owner}@{self.ctx.hosts.domain}"
        for node in await self.store.list_nodes(owner):
            try:
                await self.check_read(requester, owner, NodeConfig.from_json(node.config))
            except StanzaError:
                continue
            items.append(Element(f"{{{ns.DISCO_ITEMS}}}item", {"jid": jid, "node": node.node}))
        return items

    async def read(
        self,
        requester: JID,
        owner: str,
        node: str,
        *,
        ids: list[str] | None = None,
        max_items: int | None = None,
    ) -> list[tuple[str, Element]]:
        """Items of a node the requester may read, oldest of the selection first."""
        config = await self.config_of(owner, node)
        await self.check_read(requester, owner, config)
        items = await self.store.items(owner, node, ids=ids, limit=max_items)
        return [(i.item_id, parse_document(i.payload)) for i in reversed(items)]
