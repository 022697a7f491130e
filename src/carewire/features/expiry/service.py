"""Message expiry, one message at a time (seed 001 "Message Expiration"; docs/retention.md).

Theory of operation: every tracked message is queued, in the transaction that
records it, with its expiry (``message_expiry``, indexed on ``expires_at``).
One task owned by the feature sleeps until the earliest expiry (re-reading it
at least every ``expiry_check_interval`` seconds, an index lookup, so new
messages and clock changes are noticed) and then takes the due messages in
batches of :data:`BATCH`, soonest first. For each batch, in this order:

1. the MESSAGES records become ``state = expired`` (one bulk update): the
   archive (XEP-0313) no longer returns them; bodies stay until the retention
   purge (the seed keeps expired messages on the server for the retention period);
2. copies in offline storage go (their ``expires_at`` was set to the message's
   expiry when stored, so one indexed delete removes them);
3. rooms forget them from the history they replay to joiners;
4. clients are told: an XEP-0424 retraction to each participant's available
   sessions (a stored one, delivered at the next login, when they have none),
   an XEP-0425 moderated retraction to a room's occupants;
5. the queue rows are deleted.

A crash between steps repeats the batch at the next start: marking expired,
deleting and forgetting are idempotent; a retraction may then reach a client
twice, which clients ignore (the message is already gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from carewire.core.feature import FeatureContext
from carewire.core.stores import ExpiryEntry
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.datasets.service import DatasetService
from carewire.errors import NotFoundError
from carewire.features.expiry import stanzas
from carewire.features.muc.service import MucService
from carewire.features.tracking import MessageTracker
from carewire.features.tracking.records import ORIGIN
from carewire.xmpp.jid import JID, InvalidJID
from carewire.xmpp.xml import serialize

log = logging.getLogger(__name__)

#: Messages expired per batch (one bulk update, one delete, one queue delete).
BATCH = 500


@dataclass(slots=True)
class ExpiryCounts:
    """What one run did (for logs and tests)."""

    messages: int = 0
    offline: int = 0
    room_history: int = 0
    retractions: int = 0
    batches: int = 0
    rooms: set[str] = field(default_factory=set)


class Expirer:
    """Expires due messages in batches and tells their clients."""

    def __init__(self, ctx: FeatureContext, tracker: MessageTracker, svc: DatasetService) -> None:
        self.ctx = ctx
        self.tracker = tracker
        self.svc = svc
        self.domain = ctx.hosts.domain
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    # -- the timer ----------------------------------------------------------

    async def start(self, _payload: object = None) -> None:
        """Start the timer task (owned here, cancelled by :meth:`stop`)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="message-expiry")

    async def stop(self, _payload: object = None) -> None:
        """Stop the timer task."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def poke(self) -> None:
        """Re-read the next expiry now (a test or an administrator moved something)."""
        self._wake.set()

    async def _run(self) -> None:
        check = self.ctx.config.expiry_check_interval
        while True:
            try:
                await self.expire_due()
                next_at = await self.ctx.stores.expiry.next_at()
            except Exception:  # supervisor: log and try again at the next check
                log.exception("message expiry failed")
                next_at = None
            delay = check
            if next_at is not None:
                delay = min(check, max(0.0, (next_at - self.ctx.clock.now()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()

    # -- one run ------------------------------------------------------------

    async def expire_due(self, now: datetime | None = None) -> ExpiryCounts:
        """Expire every message due at ``now`` (default: the clock's), batch by batch."""
        now = now or self.ctx.clock.now()
        counts = ExpiryCounts()
        await self.tracker.flush()  # messages queued before now are recorded (and queued)
        while True:
            due = await self.ctx.stores.expiry.due(now, limit=BATCH)
            if not due:
                break
            await self._expire(due, now, counts)
            if len(due) < BATCH:
                break
        if counts.messages:
            log.info(
                "expired %d messages in %d batches (%d offline copies, %d from room "
                "history, %d retractions)",
                counts.messages,
                counts.batches,
                counts.offline,
                counts.room_history,
                counts.retractions,
            )
        return counts

    async def _expire(self, due: Sequence[ExpiryEntry], now: datetime, c: ExpiryCounts) -> None:
        c.batches += 1
        c.messages += await self._mark_expired([e.uuid for e in due])
        c.offline += await self.ctx.stores.offline.purge_expired(now)
        rooms: dict[str, list[ExpiryEntry]] = {}
        for entry in due:
            if entry.kind == "groupchat":
                rooms.setdefault(entry.peer, []).append(entry)
            else:
                c.retractions += await self._tell_chat(entry, now)
        for room, entries in rooms.items():
            c.room_history += self._tell_room(room, entries)
            c.rooms.add(room)
        await self.ctx.stores.expiry.remove([e.uuid for e in due])

    async def _mark_expired(self, uuids: list[str]) -> int:
        """MESSAGES records of ``uuids`` become ``expired`` (the archive leaves them out)."""
        query = Query(
            filters=(
                Filter(field="uuid", op=FilterOp.IN, value=uuids),
                Filter(field="state", op=FilterOp.NE, value="expired"),
            ),
            limit=len(uuids),
        )
        page = await self.svc.query("MESSAGES", query)
        if page.records:
            async with self.svc.batch(ORIGIN, "expire_messages") as b:
                await b.update_many(
                    "MESSAGES", [(r.id, {"state": "expired"}) for r in page.records]
                )
        return len(uuids)

    async def _tell_chat(self, entry: ExpiryEntry, now: datetime) -> int:
        """Retract a two-person message on both sides; how many stanzas went out or were stored."""
        if entry.sender is None:
            return await self._tell(entry.peer, entry, now, is_sender=False)
        told = await self._tell(entry.peer, entry, now, is_sender=False)
        return told + await self._tell(entry.sender, entry, now, is_sender=True)

    async def _tell(self, jid: str, entry: ExpiryEntry, now: datetime, *, is_sender: bool) -> int:
        login, at, domain = jid.partition("@")
        if not at or domain != self.domain:
            return 0  # another server's user: nothing of ours to retract there
        sessions = self.ctx.sessions.available_of_user(login)
        build = stanzas.sent_carbon if is_sender else stanzas.chat_retraction
        for session in sessions:
            self.ctx.router.deliver(session, build(entry, str(session.jid)))
        if sessions:
            return len(sessions)
        # Nobody online: keep it for the next login (the offline timeout applies).
        stored = build(entry, jid)
        try:
            await self.ctx.stores.offline.store(
                login,
                serialize(stored, None),
                stamp=now,
                expires_at=now + self.ctx.config.offline_ttl,
            )
        except NotFoundError:
            return 0  # the account is gone
        return 1

    def _tell_room(self, room: str, entries: list[ExpiryEntry]) -> int:
        muc = self.ctx.find(MucService)
        if muc is None:
            return 0
        try:
            jid = JID.parse(room)
        except InvalidJID:
            return 0
        forgotten = muc.forget_messages(jid, {e.uuid for e in entries})
        found = muc.find(jid)
        if found is not None:
            for entry in entries:
                muc.broadcast(found, stanzas.room_retraction(entry))
        return forgotten
