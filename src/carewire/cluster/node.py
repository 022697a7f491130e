"""One node of a cluster: its registry in Redis, its channel, and stanzas to other nodes.

Theory of operation (docs/cluster.md has the whole design):

- **Registry.** Each local session is a field of ``{p}sessions:{node}``
  (priority, presence, carbons), written when it is bound or changes and
  deleted when it ends; each change is also published on ``{p}events``, from
  which every node keeps its mirror (:class:`RemoteRegistry`). The kernel's
  ``SessionManager`` answers routing questions over local sessions and the
  mirror's stand-ins, so the RFC 6121 §8.5 rules of the features apply to
  the union of an account's sessions without knowing about nodes.
- **Liveness.** Every ``heartbeat_seconds`` the node renews
  ``{p}node:{node}:alive`` (expiring after ``node_timeout_seconds``) and checks
  the other registered nodes; a node whose key expired is swept (its hash, its
  rooms, a ``GONE`` event) and forgotten by every survivor.
- **Routing.** A stanza for a stand-in is serialised and published on the
  holding node's channel ``{p}node:{node}``, which delivers it to the local
  session (the ``session/deliver`` hooks run there). Everything a node sends
  (registry writes, events, stanzas) leaves through one ordered outbox drained
  by one task, and each node reads its channels on one connection, so what
  one sender sends one recipient arrives in order, and a session's
  registration arrives before the stanzas it sends.
- **Redis down.** Local routing goes on. A message or IQ for another node is
  answered at once with ``remote-server-timeout`` (presence is dropped); the
  outage is logged once. When the subscriber connects again the node
  re-registers all its sessions and reloads its mirror.

Pub/sub rather than Streams: a stanza is never at rest in Redis (message
content is PHI, kept encrypted in PostgreSQL only), latency stays at one
round trip, and a stanza lost while a node's link is broken is lost as it
would be on a broken client connection (XEP-0198 and MAM cover the client).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from xml.etree.ElementTree import Element

from redis.asyncio import Redis

from carewire.cluster.inbound import handle as handle_envelope
from carewire.cluster.outbox import Op, Outbox
from carewire.cluster.redis import REDIS_ERRORS, describe, text
from carewire.cluster.registry import RemoteRegistry, entry_of
from carewire.cluster.rooms import RoomOwnership
from carewire.cluster.wire import (
    Envelope,
    Event,
    EventKind,
    Keys,
    Kind,
    WireError,
    decode_envelope,
    decode_event,
)
from carewire.config_cluster import ClusterSection, node_name
from carewire.core import hook_names as H
from carewire.core.events import AccountEvent, SessionEvent
from carewire.core.kernel import Kernel
from carewire.core.sessions import StanzaSink
from carewire.features.muc import MucService
from carewire.features.roster import Rosters
from carewire.xmpp import stanza as st
from carewire.xmpp.errors import RemoteProtocolError, StanzaCondition, StanzaError, StreamCondition
from carewire.xmpp.jid import JID, InvalidJID
from carewire.xmpp.xml import serialize

log = logging.getLogger(__name__)

#: Seconds the subscriber waits for a message before checking it should reconnect.
POLL = 0.5
#: How long :meth:`Cluster.start` waits for Redis before serving without it.
START_WAIT = 3.0
#: How long stopping waits for the tasks and the goodbye (seconds).
STOP_WAIT = 5.0
UNREACHABLE = "the user's node cannot be reached: the cluster's Redis is unreachable"
CONGESTED = "the link to the user's node is congested"


class _Forward:
    """The sink of a stand-in: stanzas go to the node holding the session."""

    def __init__(self, cluster: Cluster, node: str, jid: JID) -> None:
        self.cluster, self.node, self.jid = cluster, node, jid

    def send_element(self, element: Element) -> None:
        self.cluster.forward(self.node, self.jid, element)

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        self.cluster.close_remote(self.node, self.jid, condition)


class Cluster:
    """This node's part in a cluster: Redis client, registry, routing and rooms.

    Attributes:
        redis: The node's Redis client (shared with the other cluster services).
        node: This node's id.
        keys: The key names under ``[cluster] key_prefix``.
        remote: The mirror of the other nodes' sessions.
        rooms: Room ownership.
        is_up: Whether Redis is reachable (as far as the node knows).
    """

    def __init__(self, settings: ClusterSection, kernel: Kernel, redis: Redis) -> None:
        self.settings = settings
        self.kernel = kernel
        self.redis = redis
        self.node = node_name(settings)
        self.keys = Keys(prefix=settings.key_prefix)
        self.remote = RemoteRegistry(kernel.hosts.domain, self._sink)
        self.rooms = RoomOwnership(self)
        self.is_up = False
        self._ttl_ms = int(settings.node_timeout_seconds * 1000)
        self.outbox = Outbox(redis, on_failed=self._failed)
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = asyncio.Event()
        self._is_outage_logged = False

    def _sink(self, node: str, jid: JID) -> StanzaSink:
        return _Forward(self, node, jid)

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Join the cluster: hooks, the mirror, and the heartbeat, subscriber and publisher."""
        kernel = self.kernel
        kernel.sessions.remote = self.remote
        kernel.hooks.on(H.SESSION_BOUND, self._on_bound)
        kernel.hooks.on(H.SESSION_CHANGED, self._on_changed)
        kernel.hooks.on(H.SESSION_CLOSED, self._on_closed, priority=-10_000)
        kernel.hooks.on(H.MUC_ROOM_CHANGED, self.rooms.on_changed)
        kernel.hooks.on(H.ROSTER_WRITTEN, self._on_roster_written)
        kernel.router.wrap_service(kernel.hosts.chat_domain, self.rooms.wrap)
        loop = asyncio.get_running_loop()
        for name, run in (
            ("listen", self._listen),
            ("publish", self.outbox.run),
            ("heartbeat", self._heartbeat),
        ):
            self._tasks.append(loop.create_task(run(), name=f"cluster-{name}"))
        try:
            await asyncio.wait_for(self._ready.wait(), START_WAIT)
            log.info("cluster: node %s joined (%d sessions elsewhere)", self.node, len(self.remote))
        except TimeoutError:
            log.error("cluster: node %s starts without Redis; serving local users", self.node)

    async def close(self) -> None:
        """Leave the cluster: stop the tasks, delete this node's keys, close the client."""
        await self._cancel()
        if self.is_up:
            try:
                await asyncio.wait_for(self._leave(), STOP_WAIT)
            except REDIS_ERRORS as exc:
                log.warning("cluster: could not leave cleanly (%s); the others will sweep", exc)
        self.is_up = False
        with contextlib.suppress(*REDIS_ERRORS):
            await asyncio.wait_for(self.redis.aclose(), STOP_WAIT)
        log.info("cluster: node %s left", self.node)

    async def _leave(self) -> None:
        k, me = self.keys, self.node
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(k.sessions(me), k.alive(me))
            pipe.srem(k.nodes, me)
            rooms = self.rooms.owned_here()
            if rooms:
                pipe.hdel(k.rooms, *rooms)
            pipe.publish(k.events, Event(kind=EventKind.GONE, node=me).encode())
            await pipe.execute()

    async def abandon(self) -> None:
        """Stop every cluster task without telling anyone (a crash, for tests)."""
        await self._cancel()
        self.is_up = False

    async def _cancel(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_WAIT)
            if pending:  # a Redis call that ignores cancellation must not hold the shutdown
                log.error("cluster: %d task(s) did not stop in time", len(pending))

    # -- what other nodes hold -----------------------------------------------------------

    def forward(self, node: str, jid: JID, element: Element) -> None:
        """Send a stanza to the session ``jid`` on ``node`` (or bounce it at once)."""
        if not self.is_up:
            self._bounce(element, UNREACHABLE)
            return
        envelope = Envelope(kind=Kind.DELIVER, to=str(jid), body=serialize(element, None))
        self._send(node, envelope, element)

    def route_to(self, node: str, stanza: Element, *, from_jid: JID, to_jid: JID) -> None:
        """Have ``node`` route ``stanza`` (a room it owns)."""
        if not self.is_up:
            self._bounce(stanza, UNREACHABLE)
            return
        body = serialize(stanza, None)
        envelope = Envelope(kind=Kind.ROUTE, sender=str(from_jid), to=str(to_jid), body=body)
        self._send(node, envelope, stanza)

    def close_remote(self, node: str, jid: JID, condition: StreamCondition | None) -> None:
        """Have ``node`` end its session ``jid`` (a removed account, a resource conflict)."""
        if self.is_up:
            body = "" if condition is None else condition.value
            envelope = Envelope(kind=Kind.CLOSE, to=str(jid), body=body)
            self.outbox.publish(self.keys.channel(node), envelope.encode())

    def _send(self, node: str, envelope: Envelope, stanza: Element) -> None:
        if not self.outbox.publish(self.keys.channel(node), envelope.encode(), stanza):
            self._bounce(stanza, CONGESTED)

    def _failed(self, exc: BaseException, stanzas: list[Element]) -> None:
        """The outbox could not send a burst: Redis is down; its stanzas are answered."""
        self._set_down(exc)
        for stanza in stanzas:
            self._bounce(stanza, UNREACHABLE)

    def _bounce(self, stanza: Element, text: str) -> None:
        """A stanza for another node that cannot go: messages and IQs get the error."""
        if stanza.tag == st.PRESENCE:
            return  # presence is not answered with errors; a resync repairs what it missed
        err = StanzaError(StanzaCondition.REMOTE_SERVER_TIMEOUT, text)
        self.kernel.router.reply_error(stanza, err)

    # -- local sessions -----------------------------------------------------------------

    def _on_bound(self, event: SessionEvent) -> None:
        session = event.session
        other = self.remote.get(session.jid)
        if other is not None:
            # RFC 6120 §7.7.2.2 across nodes: the session already bound elsewhere ends.
            other.sink.close(StreamCondition.CONFLICT)
            self.remote.down(other.node, str(session.jid))
        self._register(session.jid, entry_of(session).encode())

    def _on_changed(self, event: SessionEvent) -> None:
        session = event.session
        if not session.node and self.kernel.sessions.local(session.jid) is session:
            self._register(session.jid, entry_of(session).encode())

    def _on_closed(self, event: SessionEvent) -> None:
        session = event.session
        if session.node or not self.is_up:
            return
        if self.kernel.sessions.local(session.jid) is not None:
            return  # replaced by a new session of the same resource: that one stays registered
        jid = str(session.jid)
        self.outbox.put(Op("hdel", (self.keys.sessions(self.node), jid)))
        down = Event(kind=EventKind.DOWN, node=self.node, jid=jid)
        self.outbox.publish(self.keys.events, down.encode())

    def _on_roster_written(self, event: AccountEvent) -> None:
        if self.is_up:
            written = Event(kind=EventKind.ROSTER, node=self.node, jid=event.login)
            self.outbox.publish(self.keys.events, written.encode())

    def _register(self, jid: JID, body: str) -> None:
        if not self.is_up:
            return  # registered with every other session when Redis is back
        self.outbox.put(Op("hset", (self.keys.sessions(self.node), str(jid), body)))
        up = Event(kind=EventKind.UP, node=self.node, jid=str(jid), body=body)
        self.outbox.publish(self.keys.events, up.encode())

    # -- the subscriber -------------------------------------------------------------------

    async def _listen(self) -> None:
        """Read this node's channel and the events; reconnect (and resync) after an outage."""
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.keys.channel(self.node), self.keys.events)
                await self._resync()
                self._set_up()
                while self.is_up:
                    message = await pubsub.get_message(timeout=POLL)
                    if message is not None:
                        await self._on_message(message["channel"], message["data"])
            except REDIS_ERRORS as exc:
                self._set_down(exc)
            finally:
                with contextlib.suppress(*REDIS_ERRORS):
                    await pubsub.aclose()
            await asyncio.sleep(min(self.settings.heartbeat_seconds, 1.0))

    async def _on_message(self, channel: bytes, data: bytes) -> None:
        try:
            if channel.decode() == self.keys.events:
                await self._on_event(decode_event(data))
            else:
                await handle_envelope(self.kernel, decode_envelope(data))
        except (WireError, InvalidJID, RemoteProtocolError, ValueError) as exc:
            log.warning("cluster: ignoring a malformed message on %s: %s", channel.decode(), exc)
        except REDIS_ERRORS:
            raise
        except Exception:  # supervisor: one stanza's failure must not stop the node's channel
            log.exception("cluster: handling a message from another node failed")

    async def _on_event(self, event: Event) -> None:
        if event.node == self.node:
            return
        if event.kind is EventKind.UP:
            self.remote.up(event.node, event.jid, event.body)
        elif event.kind is EventKind.DOWN:
            self.remote.down(event.node, event.jid)
        elif event.kind is EventKind.SYNC:
            await self._load(event.node)
        elif event.kind is EventKind.ROSTER:
            rosters = self.kernel.ctx.find(Rosters)
            if rosters is not None:
                rosters.drop(event.jid)
        else:
            await self._forget(event.node)

    # -- registry in Redis ----------------------------------------------------------------

    async def _resync(self) -> None:
        """Register every local session again and reload the mirror of the other nodes."""
        k, me = self.keys, self.node
        local = {str(s.jid): entry_of(s).encode() for s in self.kernel.sessions}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(k.sessions(me))
            if local:
                pipe.hset(k.sessions(me), mapping=local)  # type: ignore[arg-type]
            pipe.set(k.alive(me), "1", px=self._ttl_ms)
            pipe.sadd(k.nodes, me)
            pipe.publish(k.events, Event(kind=EventKind.SYNC, node=me).encode())
            pipe.smembers(k.nodes)
            results = await pipe.execute()
        live = await self._live(results[-1])
        for node in live:
            await self._load(node)
        for node in self.remote.nodes - live:
            await self._forget(node)

    async def _live(self, members: set[bytes]) -> set[str]:
        """The other registered nodes whose heartbeat has not expired."""
        others = sorted(m.decode() for m in members if m.decode() != self.node)
        if not others:
            return set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for node in others:
                pipe.exists(self.keys.alive(node))
            alive = await pipe.execute()
        return {node for node, ok in zip(others, alive, strict=True) if ok}

    async def _load(self, node: str) -> None:
        raw = await self.redis.hgetall(self.keys.sessions(node))
        entries = {text(jid): text(body) for jid, body in raw.items()}
        self.remote.replace(node, entries)

    async def _forget(self, node: str) -> None:
        jids = self.remote.forget(node)
        self.rooms.forget(node)
        muc = self.kernel.ctx.find(MucService)
        if muc is not None:
            for jid in jids:  # occupants of our rooms who were on the dead node
                await muc.session_closed(jid)
        if jids:
            log.info("cluster: node %s is gone: %d of its sessions forgotten", node, len(jids))

    # -- liveness -------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            if not self.is_up:
                continue  # the subscriber reconnects and registers again
            try:
                await self._beat()
            except REDIS_ERRORS as exc:
                self._set_down(exc)

    async def _beat(self) -> None:
        k, me = self.keys, self.node
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(k.alive(me))
            pipe.set(k.alive(me), "1", px=self._ttl_ms)
            pipe.sadd(k.nodes, me)
            pipe.smembers(k.nodes)
            existed, _, added, members = await pipe.execute()
        if not existed or added:
            # Redis lost our keys (restarted without them), or we were taken for dead and
            # swept (perhaps just after this node renewed its key: then only the set says so).
            log.warning("cluster: node %s's registration had expired: registering again", me)
            await self._resync()
            return
        live = await self._live(members)
        for node in sorted(m.decode() for m in members):
            if node != me and node not in live:
                await self._sweep(node)
        for node in self.remote.nodes - live:
            await self._forget(node)

    async def _sweep(self, node: str) -> None:
        """Delete what a dead node left in Redis and tell the others (any survivor may)."""
        k = self.keys
        rooms = await self.redis.hgetall(k.rooms)
        owned = [room for room, owner in rooms.items() if text(owner) == node]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(k.sessions(node))
            pipe.srem(k.nodes, node)
            if owned:
                pipe.hdel(k.rooms, *owned)
            pipe.publish(k.events, Event(kind=EventKind.GONE, node=node).encode())
            await pipe.execute()
        log.warning("cluster: node %s missed its heartbeat: swept", node)
        await self._forget(node)

    def _set_down(self, exc: BaseException) -> None:
        self.is_up = False
        if not self._is_outage_logged:
            self._is_outage_logged = True
            log.error(
                "cluster: Redis at %s is unreachable (%s): local users are served; stanzas "
                "for other nodes are refused until it is back",
                describe(self.settings.redis_url),
                exc or type(exc).__name__,
            )

    def _set_up(self) -> None:
        self.is_up = True
        self._ready.set()
        if self._is_outage_logged:
            self._is_outage_logged = False
            log.warning("cluster: Redis is reachable again: local sessions registered again")
