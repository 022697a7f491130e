"""Tracking writes applied to the datasets: conversations, messages, deliveries, identities.

Theory of operation: :meth:`Recorder.commit` applies a list of ops in one
:meth:`DatasetService.batch` transaction. Record ids already known are kept
in caches (identities and users by name, conversations by key, recent
messages by uuid, recent deliveries by message and recipient), so a message
in a known conversation costs one record create. Cache entries made inside a
transaction are staged and kept only when it commits: a rolled-back batch
leaves no ids of records that do not exist. A record not in the cache is
looked up in committed data first; anything created in the same batch is in
the staged cache. New messages and delivery timestamps are staged and written
in bulk (:meth:`Batch.create_many`, :meth:`Batch.update_many`): a batch of
messages in known conversations costs a handful of statements in all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime

from carewire.core.stores import ExpiryStore
from carewire.datasets.model import Origin, Record, RecordId
from carewire.datasets.query import Filter, FilterOp, Query, Sort
from carewire.datasets.service import Batch, DatasetService
from carewire.features.tracking.caches import (
    Caches,
    Conv,
    Delivery,
    RecentCaches,
    Staged,
    StagedDelivery,
)
from carewire.features.tracking.ops import (
    DEFAULT_TTL,
    ROOM,
    ConversationOp,
    ConvKey,
    DeliveryOp,
    MessageOp,
    Op,
    State,
)
from carewire.features.tracking.resolve import resolve

log = logging.getLogger(__name__)

ORIGIN = Origin(adapter="XMPP", actor="xmpp:tracking", depth=0)
#: Ops written between two turns of the event loop inside one batch's transaction.
CHUNK = 200


class Recorder:
    """Applies tracking ops to the datasets through the :class:`DatasetService`."""

    def __init__(self, svc: DatasetService, domain: str, queue: ExpiryStore | None = None) -> None:
        self.svc = svc
        self.domain = domain
        self.queue = queue  # the expiry queue, written in the same transaction as the messages
        self.cache = RecentCaches()
        self._new = Caches()  # entries made by the transaction in progress
        self.statements = 0  # writes issued (for the benchmark)

    # -- transactions -----------------------------------------------------

    async def commit(self, ops: Sequence[Op]) -> None:
        """Apply ``ops`` in one transaction.

        New messages and verified delivery timestamps are staged and written
        in bulk (:meth:`Batch.create_many`, :meth:`Batch.update_many`); any
        other op writes what is staged first, so records are written in op
        order except that a run of staged ops writes its messages before its
        deliveries.
        """

        async def apply(b: Batch) -> None:
            self.statements += await resolve(self.cache, self._new, self.login_of, b, ops)
            staged = Staged()
            for n, op in enumerate(ops, 1):
                if isinstance(op, MessageOp):
                    await self._stage_message(b, staged, op)
                elif isinstance(op, DeliveryOp) and op.is_verified and op.failure is None:
                    await self._stage_delivery(b, staged, op)
                else:
                    await self._write_staged(b, staged)
                    await self._apply(b, op)
                if n % CHUNK == 0 and n < len(ops):
                    # A large batch is one transaction (fewer, larger commits: see
                    # service.BATCH_ITEMS) but not one long stretch of work: routing
                    # runs between its chunks.
                    await self._write_staged(b, staged)
                    await asyncio.sleep(0)
            await self._write_staged(b, staged)

        await self.transaction("track_messages", apply)

    async def transaction(self, name: str, body: Callable[[Batch], Awaitable[None]]) -> None:
        """Run ``body`` in one batch; cache entries it makes are kept only if it commits."""
        self._new = Caches()
        try:
            async with self.svc.batch(ORIGIN, name) as b:
                await body(b)
        finally:
            new, self._new = self._new, Caches()
        c = self.cache
        c.identities.update(new.identities)
        c.users.update(new.users)
        c.conversations.update(new.conversations)
        for uid, mid in new.messages.items():
            c.messages.put(uid, mid)
        for key, value in new.deliveries.items():
            c.deliveries.put(key, value)

    async def _apply(self, b: Batch, op: Op) -> None:
        if isinstance(op, MessageOp):
            staged = Staged()
            await self._stage_message(b, staged, op)
            await self._write_staged(b, staged)
        elif isinstance(op, DeliveryOp):
            await self._delivery(b, op)
        else:
            await self._conversation(b, op)

    # -- identities and users ---------------------------------------------

    def login_of(self, jid: str) -> str | None:
        """The local login a bare JID belongs to, or None (rooms, other domains)."""
        local, at, domain = jid.partition("@")
        return local if at and domain == self.domain and "/" not in domain else None

    async def user(self, b: Batch, login: str) -> RecordId:
        """The USERS record of a local login (a minimal one is created if missing)."""
        known = self.cache.users.get(login) or self._new.users.get(login)
        if known is not None:
            return known
        found = await self.svc.store.find_by_key(self.svc.registry.get("USERS"), {"login": login})
        rid = found.id if found is not None else (await b.create("USERS", {"login": login})).id
        self._new.users[login] = rid
        return rid

    async def identity(self, b: Batch, jid: str) -> RecordId:
        """The IDENTITIES record of a bare JID, linked to its user when local."""
        known = self.cache.identities.get(jid) or self._new.identities.get(jid)
        if known is not None:
            return known
        ds = self.svc.registry.get("IDENTITIES")
        found = await self.svc.store.find_by_key(ds, {"name": jid})
        if found is not None:
            rid = found.id
        else:
            values: dict[str, object] = {"name": jid}
            login = self.login_of(jid)
            if login is not None:
                values["usr"] = await self.user(b, login)
            rid = (await b.create("IDENTITIES", values)).id
            self.statements += 1
        self._new.identities[jid] = rid
        return rid

    async def users_of(self, b: Batch, jids: Iterable[str]) -> list[RecordId]:
        """USERS ids of the local ones among ``jids``."""
        out = []
        for jid in dict.fromkeys(jids):
            login = self.login_of(jid)
            if login is not None:
                out.append(await self.user(b, login))
        return out

    # -- conversations ------------------------------------------------------

    async def find_conversation(self, key: ConvKey) -> Conv | None:
        """A conversation by key, from the cache or committed data."""
        known = self._new.conversations.get(key) or self.cache.conversations.get(key)
        if known is not None:
            return known
        ds = self.svc.registry.get("CONVERSATIONS")
        found = await self.svc.store.find_by_key(ds, {"jid1": key[0], "jid2": key[1]})
        if found is None:
            return None
        conv = Conv(found.id, str(found.get("activity_state") or State.ACTIVE))
        self.cache.conversations[key] = conv
        return conv

    async def conversation(
        self,
        b: Batch,
        key: ConvKey,
        *,
        members: Iterable[str] = (),
        ttl: int | None = None,
        topic: str | None = None,
        actor: str | None = None,
    ) -> Conv:
        """Find a conversation, or create it (active, with ``members``) with a history row."""
        conv = await self.find_conversation(key)
        if conv is not None:
            return conv
        values: dict[str, object] = {
            "jid1": key[0],
            "jid2": key[1],
            "ttl": ttl or DEFAULT_TTL,
            "activity_state": State.ACTIVE,
            "members": await self.users_of(b, members),
        }
        if topic:
            values["topic"] = topic
        conv = Conv((await b.create("CONVERSATIONS", values)).id, State.ACTIVE)
        self._new.conversations[key] = conv
        await self.history(b, conv, State.ACTIVE, actor)
        return conv

    async def history(self, b: Batch, conv: Conv, state: str, actor: str | None) -> None:
        """A CONVERSATION_HISTORY row: the conversation changed to ``state``."""
        values: dict[str, object] = {"activity_state": state, "conversation": conv.id}
        if actor:
            values["member"] = await self.identity(b, actor)
        await b.create("CONVERSATION_HISTORY", values)

    async def set_state(
        self, b: Batch, key: ConvKey, conv: Conv, state: str, actor: str | None
    ) -> None:
        """Change a conversation's activity state (with a history row) if it differs."""
        if conv.state == state:
            return
        await b.update("CONVERSATIONS", conv.id, {"activity_state": state})
        await self.history(b, conv, state, actor)
        self._new.conversations[key] = Conv(conv.id, state)

    async def _conversation(self, b: Batch, op: ConversationOp) -> None:
        conv = await self.conversation(
            b,
            op.key,
            members=op.members or op.add_members,
            ttl=op.ttl,
            topic=op.topic,
            actor=op.actor,
        )
        changes: dict[str, object] = {}
        if op.ttl is not None:
            changes["ttl"] = op.ttl
        if op.topic is not None:
            changes["topic"] = op.topic
        if op.members is not None:
            changes["members"] = await self.users_of(b, op.members)
        if changes:
            await b.update("CONVERSATIONS", conv.id, changes)
        if op.add_members:
            await b.link(
                "CONVERSATIONS", conv.id, "members", await self.users_of(b, op.add_members)
            )
        if op.remove_members:
            gone = await self.users_of(b, op.remove_members)
            if gone:
                await b.unlink("CONVERSATIONS", conv.id, "members", gone)
            for jid in op.remove_members:
                await self.history(b, conv, State.INACTIVE, jid)
        if op.state is not None:
            await self.set_state(b, op.key, self._current(op.key, conv), op.state, op.actor)

    def _current(self, key: ConvKey, conv: Conv) -> Conv:
        return self._new.conversations.get(key) or conv

    # -- messages -----------------------------------------------------------

    async def message_id(self, uid: str) -> RecordId | None:
        """The MESSAGES record id of a stanza id (cache, staged, or committed data)."""
        known = self.cache.messages.get(uid) or self._new.messages.get(uid)
        if known is not None:
            return known
        found = await self.svc.store.find_by_key(self.svc.registry.get("MESSAGES"), {"uuid": uid})
        if found is None:
            return None
        self.cache.messages.put(uid, found.id)
        return found.id

    async def _stage_message(self, b: Batch, staged: Staged, op: MessageOp) -> None:
        if op.acknowledges is not None and op.acknowledges in staged.uuids:
            await self._write_staged(b, staged)  # the acknowledged message needs its id
        conv = await self.conversation(b, op.key, members=op.members, actor=op.sender)
        conv = self._current(op.key, conv)
        if conv.state != State.ACTIVE:  # a new message brings the conversation back
            await self.set_state(b, op.key, conv, State.ACTIVE, op.sender)
        values: dict[str, object] = {
            "uuid": op.uuid,
            "received_at": op.received_at,
            "sent_at": op.sent_at,
            "message": op.body,
            "elements": op.elements,
            "nick": op.nick,
            "state": "valid",
            "acknowledgeable": "t" if op.is_acknowledgeable else "f",
            "conversation": conv.id,
            "recipients": [await self.identity(b, r) for r in dict.fromkeys(op.recipients)],
        }
        if op.sender is not None:
            values["from"] = await self.identity(b, op.sender)
        if op.expiry is not None:
            values["expires_at"] = op.expiry.expires_at
            staged.expiries.append(op.expiry)
        if op.acknowledges is not None:
            target = await self.message_id(op.acknowledges)
            if target is not None:
                values["acknowledges"] = target
        staged.messages.append((op.uuid, values))
        staged.uuids.add(op.uuid)

    async def _stage_delivery(self, b: Batch, staged: Staged, op: DeliveryOp) -> None:
        mid = None if op.uuid in staged.uuids else await self.message_id(op.uuid)
        if mid is None and op.uuid not in staged.uuids:
            log.info("delivery for an unknown message skipped")
            return
        iid = await self.identity(b, op.recipient)
        staged.deliveries.append((op.uuid, mid, iid, op.field, op.at))

    async def _write_staged(self, b: Batch, staged: Staged) -> None:
        """Write the staged messages, then the staged delivery timestamps, in bulk."""
        if staged.messages:
            # Vouched: fresh stanza ids, and link targets this recorder created or read.
            rows = [values for _, values in staged.messages]
            recs = await b.create_many("MESSAGES", rows, vouched=True)
            for (uid, _), rec in zip(staged.messages, recs, strict=True):
                self._new.messages[uid] = rec.id
            self.statements += len(recs)
        if staged.expiries and self.queue is not None:
            await self.queue.add_many(staged.expiries)  # joins the batch's transaction
        if staged.deliveries:
            await self._write_deliveries(b, staged.deliveries)
        staged.messages.clear()
        staged.uuids.clear()
        staged.deliveries.clear()
        staged.expiries.clear()

    async def _write_deliveries(self, b: Batch, items: Sequence[StagedDelivery]) -> None:
        """Create or complete MESSAGE_DELIVERIES records; the first time of each field counts."""
        fresh = {int(m) for m in self._new.messages.values()}  # created now: no deliveries yet
        resolved: list[tuple[tuple[int, int], str, datetime]] = []
        known: dict[tuple[int, int], Delivery | None] = {}
        for uid, mid, iid, mark, at in items:
            key = (int(mid if mid is not None else self._new.messages[uid]), int(iid))
            resolved.append((key, mark, at))
            if key not in known:
                known[key] = self._new.deliveries.get(key) or self.cache.deliveries.get(key)
        lookup = [k for k, v in known.items() if v is None and k[0] not in fresh]
        if lookup:
            keys = [{"message": m, "recipient": r} for m, r in lookup]
            for rec in await b.find_many("MESSAGE_DELIVERIES", keys):
                key = (_int(rec.get("message")), _int(rec.get("recipient")))
                known[key] = (rec.id, _set_fields(rec))
        creates: dict[tuple[int, int], dict[str, object]] = {}
        updates: dict[tuple[int, int], dict[str, object]] = {}
        for key, mark, at in resolved:
            if key in creates:
                creates[key].setdefault(mark, at)
                continue
            found = known[key]
            if found is None:
                creates[key] = {"message": key[0], "recipient": key[1], "sent_at": at, mark: at}
            elif not found[1] & _bit(mark):  # the first time counts (not a second receipt)
                updates.setdefault(key, {})[mark] = at
                known[key] = (found[0], found[1] | _bit(mark))
        if creates:
            rows = list(creates.values())  # keys known to be new (looked up above)
            recs = await b.create_many("MESSAGE_DELIVERIES", rows, vouched=True)
            for (key, values), rec in zip(creates.items(), recs, strict=True):
                self._new.deliveries[key] = (rec.id, _mask(values))
        if updates:
            changes: list[tuple[int, dict[str, object]]] = []
            for key, change in updates.items():
                found = known[key]
                assert found is not None
                changes.append((int(found[0]), change))
                self._new.deliveries[key] = found
            await b.update_many("MESSAGE_DELIVERIES", changes)

    async def _delivery(self, b: Batch, op: DeliveryOp) -> None:
        mid = await self.message_id(op.uuid)
        if mid is None:
            log.info("delivery for an unknown message skipped")
            return
        if not op.is_verified and not await self._was_recipient(mid, op.recipient):
            return  # a marker for someone else's message: nothing to record
        iid = await self.identity(b, op.recipient)
        key = (int(mid), int(iid))
        known = self._new.deliveries.get(key) or self.cache.deliveries.get(key)
        if known is None:
            ds = self.svc.registry.get("MESSAGE_DELIVERIES")
            found = await self.svc.store.find_by_key(ds, {"message": mid, "recipient": iid})
            if found is not None:
                known = (found.id, _set_fields(found))
        extra: dict[str, object] = {} if op.failure is None else {"failure": op.failure}
        if known is None:
            values: dict[str, object] = {"message": mid, "recipient": iid, "sent_at": op.at}
            values[op.field] = op.at
            rec = await b.create("MESSAGE_DELIVERIES", values | extra)
            self._new.deliveries[key] = (rec.id, _bit("sent_at") | _bit(op.field))
            return
        rid, done = known
        if done & _bit(op.field):
            return  # the first time counts (a second receipt changes nothing)
        await b.update("MESSAGE_DELIVERIES", rid, {op.field: op.at} | extra)
        self._new.deliveries[key] = (rid, done | _bit(op.field))

    async def is_recipient(self, uid: str, jid: str) -> bool | None:
        """Whether ``jid`` is among the recipients of message ``uid`` (None: unknown message)."""
        mid = await self.message_id(uid)
        if mid is None:
            return None
        return await self._was_recipient(mid, jid)

    async def _was_recipient(self, mid: RecordId, jid: str) -> bool:
        iid = self.cache.identities.get(jid) or self._new.identities.get(jid)
        if iid is None:
            ds = self.svc.registry.get("IDENTITIES")
            found = await self.svc.store.find_by_key(ds, {"name": jid})
            if found is None:
                return False
            iid = found.id
        ds = self.svc.registry.get("MESSAGES")
        link = ds.link("recipients")
        assert link is not None
        return iid in (await self.svc.store.follow(ds, link, [mid]))[mid]

    # -- expiry -------------------------------------------------------------

    async def expire(self, key: ConvKey, actor: str | None = None) -> list[str] | None:
        """Expire a conversation and its valid messages; its members' bare JIDs, or None if unknown.

        Runs outside the batch queue (the caller holds the writer's lock).
        """
        conv = await self.find_conversation(key)
        if conv is None:
            return None

        async def change(b: Batch) -> None:
            await self.set_state(b, key, conv, State.EXPIRED, actor)

        await self.transaction("expire_conversation", change)
        await self._expire_messages(conv.id)
        return await self.member_jids(key, conv.id)

    async def _expire_messages(self, cid: RecordId) -> None:
        query = Query(
            filters=(
                Filter(field="conversation", op=FilterOp.EQ, value=int(cid)),
                Filter(field="state", op=FilterOp.NE, value="expired"),
            ),
            limit=200,
        )
        while True:
            page = await self.svc.query("MESSAGES", query)
            if not page.records:
                return
            async with self.svc.batch(ORIGIN, "expire_messages") as b:
                await b.update_many(
                    "MESSAGES", [(rec.id, {"state": "expired"}) for rec in page.records]
                )

    async def member_jids(self, key: ConvKey, cid: RecordId) -> list[str]:
        """Bare JIDs of the local members of a conversation."""
        if key[1] != ROOM:
            return [j for j in dict.fromkeys(key) if self.login_of(j) is not None]
        ds = self.svc.registry.get("CONVERSATIONS")
        link = ds.link("members")
        assert link is not None
        ids = (await self.svc.store.follow(ds, link, [cid]))[cid]
        users = await self.svc.store.get_many(self.svc.registry.get("USERS"), ids)
        return [f"{u.get('login')}@{self.domain}" for u in users.values() if u.get("login")]

    async def last_message_at(self, cid: RecordId) -> datetime | None:
        """When the newest message of a conversation was received."""
        query = Query(
            filters=(Filter(field="conversation", op=FilterOp.EQ, value=int(cid)),),
            sort=(Sort(field="received_at", is_descending=True),),
            limit=1,
        )
        page = await self.svc.query("MESSAGES", query)
        if not page.records:
            return None
        value = page.records[0].get("received_at")
        return value if isinstance(value, datetime) else None


_MARKS = (
    "sent_at",
    "received_at",
    "displayed_at",
    "acknowledged",
    "held_at",
    "released_at",
    "failed_at",
)


#: Each timestamp's bit in the deliveries cache: a delivery is cached as (id, bits), two
#: integers, which the garbage collector stops tracking (50,000 cached (id, frozenset) pairs
#: were walked by every collection; see docs/tracking.md).
_BITS = {name: 1 << i for i, name in enumerate(_MARKS)}


def _bit(mark: str) -> int:
    return _BITS.get(mark, 0)  # 0: not a timestamp of ours, never counted as set


def _mask(values: Iterable[str]) -> int:
    bits = 0
    for name in values:
        bits |= _BITS.get(name, 0)
    return bits


def _set_fields(rec: Record) -> int:
    return _mask(f for f in _MARKS if rec.get(f) is not None)


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value
