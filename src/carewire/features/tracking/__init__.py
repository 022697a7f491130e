"""Clinical message tracking: conversations, messages and deliveries as dataset records.

XEP-0359 stanza ids, XEP-0184 receipts and XEP-0333 chat markers are
recorded; Carewire's acknowledgeable messages (``urn:carewire:ack:0``) and
conversation expiry (``urn:carewire:conversation:0``) are implemented here.
See ``docs/tracking.md``.

Every chat or normal message with a body (or a ``urn:carewire:*`` element)
between two accounts (ours, or one of ours and a user of another domain:
:mod:`.remote`), and every groupchat message a room broadcasts,
gets a server stanza id and becomes a MESSAGES record in its CONVERSATIONS
record; handing it to a session (or to offline storage) and the recipient's
receipts and markers become MESSAGE_DELIVERIES timestamps. Writes are queued
and committed in batches (:mod:`.writer`); routing never waits for them.
Without the data platform (plain kernel tests) the feature does nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime

from carewire.core import hook_names as H
from carewire.core.events import DeliveryEvent, RoomEvent, RoomMessageEvent, StanzaEvent
from carewire.core.feature import FeatureContext
from carewire.datasets.service import DatasetService
from carewire.features.tracking import stanzas
from carewire.features.tracking.ops import ConversationOp, State, pair_key, room_key
from carewire.features.tracking.remote import RemoteTracking
from carewire.features.tracking.service import MessageTracker, addressed_to
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID

__all__ = ["MessageTracker", "setup"]

log = logging.getLogger(__name__)

# Before blocking, carbons and delivery see the message, so the stanza id is on every copy.
PRE_MESSAGE_PRIORITY = 500
# Messages from other domains: after the wipe and device gates re-route them, before delivery.
INBOUND_PRIORITY = 500
EXPIRY_INTERVAL = 60.0
MESSAGE = "{jabber:client}message"


class TrackingHooks:
    """The hook handlers: what routing tells the tracker."""

    def __init__(self, ctx: FeatureContext, tracker: MessageTracker) -> None:
        self.ctx = ctx
        self.tracker = tracker
        self.domain = ctx.hosts.domain

    async def on_pre_message(self, event: StanzaEvent) -> None:
        """A local session sends a message: stamp and record it, record its markers."""
        stanza, to = event.stanza, event.to_jid
        if event.origin is None:
            return
        # Backpressure: over the writer's limit, the sender waits (its connection stops
        # being read) until the backlog is committed down to the limit; nothing is dropped.
        await self.tracker.writer.wait_for_room()
        stanzas.strip_stanza_ids(stanza, self.tracker.is_ours)
        if to is None:
            return
        sender = str(event.from_jid.bare)
        found = stanzas.marks(stanza)
        acknowledges = await self.record_marks(found, sender, to) if found else None
        if to.localpart is None or not stanzas.is_trackable(stanza):
            return
        router = self.ctx.router
        is_remote = router.is_remote(to)
        if to.domain != self.domain and not (is_remote and router.remote is not None):
            return  # a service of ours, or another domain with federation off
        recipient = str(to.bare)
        # XEP-0359: "For one-on-one messages the assigning entity is the account": the
        # recipient's when it is ours, the sender's (its archive) for another domain's user.
        uid = self.tracker.stamp(stanza, event.from_jid if is_remote else to)
        for cid in stanzas.client_ids(stanza):
            self.tracker.client_ids.put((sender, recipient, cid), uid)
        self.tracker.enqueue_message(
            key=pair_key(sender, recipient),
            sender=sender,
            recipients=(recipient,),
            members=(sender, recipient),
            stanza=stanza,
            uid=uid,
            is_acknowledgeable=stanzas.is_acknowledgeable(stanza),
            acknowledges=acknowledges,
        )

    async def record_marks(
        self, found: list[tuple[stanzas.Mark, str]], sender: str, to: JID
    ) -> str | None:
        """Record receipts and markers; validate acknowledgements. The acknowledged uuid, if any."""
        in_room = to.domain == self.ctx.hosts.chat_domain
        acknowledged = None
        for mark, ref in found:
            uid = ref if in_room else self.tracker.client_ids.get((str(to.bare), sender, ref))
            if uid is None and ref in self.tracker.recent:
                uid = ref
            if mark is stanzas.Mark.ACKNOWLEDGED:
                uid = uid or ref
                is_recipient = await self.tracker.is_recipient(uid, sender)
                if is_recipient is None:
                    raise StanzaError(
                        StanzaCondition.ITEM_NOT_FOUND,
                        "there is no message with this id to acknowledge",
                    )
                if not is_recipient:
                    raise StanzaError(
                        StanzaCondition.FORBIDDEN, "only a recipient may acknowledge a message"
                    )
                acknowledged = uid
                self.tracker.delivered(uid, sender, mark)
            elif uid is not None:
                sent = self.tracker.recent.get(uid)
                if sent is not None and addressed_to(sent, sender):
                    self.tracker.delivered(uid, sender, mark)
            elif stanzas.is_uuid(ref):  # an older message: the writer checks the recipient
                self.tracker.delivered(ref, sender, mark, is_verified=False)
        return acknowledged

    def on_deliver(self, event: DeliveryEvent) -> None:
        """Stanzas are written to sessions: the first copy per recipient sets ``sent_at``."""
        stanza = event.stanza
        if stanza.tag != MESSAGE:
            return
        uid = stanzas.stanza_id(stanza)
        if uid is None:
            return
        at: datetime | None = None  # one time for the copies written together
        tracker, domain = self.tracker, self.domain
        for target in event.targets:
            if target is None:
                continue
            who = f"{target[0].username}@{domain}"
            if tracker.first_delivery(uid, who):
                if at is None:
                    at = self.ctx.clock.now()
                tracker.delivered(uid, who, "sent_at", at=at)

    def on_stored(self, event: StanzaEvent) -> None:
        """Offline storage kept a message: it counts as sent to that recipient."""
        uid = stanzas.stanza_id(event.stanza)
        if uid is None or event.to_jid is None:
            return
        who = str(event.to_jid.bare)
        if self.tracker.first_delivery(uid, who):
            self.tracker.delivered(uid, who, "sent_at")

    def on_groupchat(self, event: RoomMessageEvent) -> None:
        """A room broadcasts a message: stamp it (by the room) and record it."""
        if not stanzas.has_content(event.stanza):
            return
        room = str(event.room.bare)
        sender = str(event.sender.bare) if event.sender is not None else None
        self.tracker.room_people.setdefault(room, set()).update(event.recipients, event.members)
        uid = self.tracker.stamp(event.stanza, event.room)
        self.tracker.enqueue_message(
            key=room_key(room),
            sender=sender,
            recipients=tuple(sorted(event.recipients - {sender} if sender else event.recipients)),
            members=tuple(sorted(event.members)),
            stanza=event.stanza,
            uid=uid,
            nick=event.nick,
            is_acknowledgeable=stanzas.is_acknowledgeable(event.stanza),
        )

    def on_room_changed(self, event: RoomEvent) -> None:
        """A room was created or changed: its conversation's topic and members follow."""
        room = str(event.room.bare)
        self.tracker.room_people.setdefault(room, set()).update(event.members)
        self.tracker.conversation_changed(
            ConversationOp(
                key=room_key(room),
                topic=event.subject,
                members=tuple(sorted(event.members)),
                state=State.ACTIVE,  # a room that changes exists (again, if it was closed)
            )
        )

    def on_room_destroyed(self, event: RoomEvent) -> None:
        """A room was destroyed: its conversation is closed."""
        room = str(event.room.bare)
        self.tracker.room_people.pop(room, None)
        self.tracker.conversation_changed(ConversationOp(key=room_key(room), state=State.CLOSED))

    async def on_started(self, _payload: object) -> None:
        """Start the writer task."""
        self.tracker.writer.start()

    async def on_stopping(self, _payload: object) -> None:
        """Commit everything queued and stop the writer."""
        await self.tracker.writer.stop()


def setup(ctx: FeatureContext) -> None:
    """Register message tracking (into the data platform's datasets)."""
    tracker = ctx.provide(MessageTracker(ctx, ctx.require(DatasetService)))
    hooks = TrackingHooks(ctx, tracker)
    remote = RemoteTracking(ctx, tracker, hooks.record_marks)
    ctx.hooks.on(H.REMOTE_SENT, remote.on_sent)
    ctx.hooks.on(H.REMOTE_FAILED, remote.on_failed)
    ctx.hooks.on(H.MESSAGE_BARE, remote.on_inbound, priority=INBOUND_PRIORITY)
    ctx.hooks.on(H.MESSAGE_FULL, remote.on_inbound, priority=INBOUND_PRIORITY)
    ctx.hooks.on(H.PRE_MESSAGE, hooks.on_pre_message, priority=PRE_MESSAGE_PRIORITY)
    ctx.hooks.on(H.SESSION_DELIVER, hooks.on_deliver)
    ctx.hooks.on(H.MESSAGE_STORED, hooks.on_stored)
    ctx.hooks.on(H.MUC_GROUPCHAT, hooks.on_groupchat)
    ctx.hooks.on(H.MUC_ROOM_CHANGED, hooks.on_room_changed)
    ctx.hooks.on(H.MUC_ROOM_DESTROYED, hooks.on_room_destroyed)
    ctx.hooks.on(H.SERVER_STARTED, hooks.on_started)
    ctx.hooks.on(H.SERVER_STOPPING, hooks.on_stopping)
    ctx.durability.register(tracker.flush)
    ctx.every("conversation-expiry", EXPIRY_INTERVAL, tracker.expire_due)
    ctx.disco.add_server_feature(stanzas.SID)
    ctx.disco.add_account_feature(stanzas.SID)
    ctx.disco.add_server_feature(stanzas.ACK)
