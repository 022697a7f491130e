"""Room ownership in a cluster: each MUC room (XEP-0045) lives on one node (docs/cluster.md).

A room's state (occupants, roles, history) is in the memory of one node, its
owner, claimed in the Redis hash ``{p}rooms`` with ``HSETNX``: the first node
that sees a stanza for the room (or creates it) owns it. Stanzas for the
room that reach another node are forwarded to the owner, which handles them
as if they had arrived there; its broadcasts reach occupants on other nodes
through ordinary routing (their stand-in sessions). A room whose owner died
is taken over by the next node that needs it (the sweep deletes the dead
node's claims, and a claim naming a node without a heartbeat is replaced).
"""

from __future__ import annotations

import logging
from typing import Protocol
from xml.etree.ElementTree import Element

from redis.asyncio import Redis
from redis.exceptions import RedisError

from carewire.cluster.redis import REDIS_ERRORS, text
from carewire.cluster.wire import Keys
from carewire.core.events import RoomEvent
from carewire.core.router import ServiceHandler
from carewire.core.sessions import Session
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID

log = logging.getLogger(__name__)

NO_OWNER = "the room's node cannot be found while the cluster's Redis is unreachable"


class RoomHost(Protocol):
    """What room ownership needs of the node (:class:`~carewire.cluster.node.Cluster`)."""

    redis: Redis
    node: str
    keys: Keys
    is_up: bool

    def route_to(self, node: str, stanza: Element, *, from_jid: JID, to_jid: JID) -> None:
        """Have ``node`` route ``stanza``."""


class RoomOwnership:
    """Which node owns which room, claimed in Redis and cached here."""

    def __init__(self, cluster: RoomHost) -> None:
        self.cluster = cluster
        self._owners: dict[str, str] = {}

    def wrap(self, inner: ServiceHandler) -> ServiceHandler:
        """The room service's handler, in front of which stanzas go to the room's owner."""

        async def handle(
            stanza: Element, from_jid: JID, to_jid: JID, origin: Session | None
        ) -> None:
            if to_jid.localpart is None:  # the service itself (disco): any node answers
                await inner(stanza, from_jid, to_jid, origin)
                return
            owner = await self.owner(to_jid.bare)
            if owner == self.cluster.node:
                await inner(stanza, from_jid, to_jid, origin)
            else:
                self.cluster.route_to(owner, stanza, from_jid=from_jid, to_jid=to_jid)

        return handle

    async def owner(self, room: JID) -> str:
        """The node owning ``room`` (this one if nobody did).

        Raises:
            StanzaError: ``remote-server-timeout`` when Redis cannot say.
        """
        key = str(room)
        cached = self._owners.get(key)
        if cached is not None:
            return cached
        if not self.cluster.is_up:
            raise StanzaError(StanzaCondition.REMOTE_SERVER_TIMEOUT, NO_OWNER)
        try:
            owner = await self._claim(key)
        except REDIS_ERRORS:
            raise StanzaError(StanzaCondition.REMOTE_SERVER_TIMEOUT, NO_OWNER) from None
        self._owners[key] = owner
        return owner

    async def _claim(self, key: str) -> str:
        redis, keys, me = self.cluster.redis, self.cluster.keys, self.cluster.node
        for _ in range(3):
            if await redis.hsetnx(keys.rooms, key, me):
                log.debug("cluster: room %s now lives here", key)
                return me
            raw = await redis.hget(keys.rooms, key)
            if raw is None:
                continue  # released in between
            owner = text(raw)
            if owner == me or await redis.exists(keys.alive(owner)):
                return owner
            # The owner died and was not swept yet: take the room over.
            log.info("cluster: room %s of dead node %s moves here", key, owner)
            await redis.hdel(keys.rooms, key)
        raise StanzaError(StanzaCondition.REMOTE_SERVER_TIMEOUT, "the room's node keeps changing")

    async def on_changed(self, event: RoomEvent) -> None:
        """Hook ``muc/room-changed``: a room made here (e.g. by an alert) is claimed here."""
        key = str(event.room)
        if key in self._owners or not self.cluster.is_up:
            return
        try:
            self._owners[key] = await self._claim(key)
        except (RedisError, OSError, TimeoutError, StanzaError) as exc:
            log.warning("cluster: could not claim room %s: %s", key, exc)

    def forget(self, node: str) -> None:
        """``node`` is gone: its rooms will be claimed again when next used."""
        self._owners = {room: owner for room, owner in self._owners.items() if owner != node}

    def owned_here(self) -> list[str]:
        """The rooms this node claimed."""
        return [room for room, owner in self._owners.items() if owner == self.cluster.node]
