"""The message tracker: what the hooks and the rule actions call to record conversations.

Recording never waits on the database: every write is queued on the
:class:`~carewire.features.tracking.writer.BatchWriter` and committed within
about 50 ms (or by :meth:`MessageTracker.flush`). In memory the tracker keeps,
for recent messages, who sent them to whom and under which client ids, so
receipts and markers (which name the sender's id) find the stanza id cheaply;
and each conversation's last activity for expiry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from xml.etree.ElementTree import Element

from carewire.core.feature import FeatureContext
from carewire.core.stores import ExpiryEntry
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.datasets.service import DatasetService
from carewire.errors import NotFoundError, ValidationError
from carewire.features.tracking import stanzas
from carewire.features.tracking.caches import RECENT, Lru
from carewire.features.tracking.ops import (
    DEFAULT_TTL,
    ROOM,
    ConversationOp,
    ConvKey,
    DeliveryOp,
    MessageOp,
    Op,
    State,
    pair_key,
    room_key,
)
from carewire.features.tracking.records import Recorder
from carewire.features.tracking.writer import BatchWriter
from carewire.randomness import uuid4
from carewire.xmpp.jid import JID, InvalidJID

log = logging.getLogger(__name__)

EXPIRY_PAGE = 500
#: A message's lifetime when no expiry policy is in use (the seed's default, 7 days).
DEFAULT_MESSAGE_LIFETIME = timedelta(days=7)
#: Tracking writes per transaction at most, and how long the writer waits for more.
#: Each commit rewrites every index page it touched: a delivery row lands on its
#: recipient's page of two indexes, so a commit per message of a 200-occupant room
#: rewrote some 400 pages, and the cost per row grew with the tables (bench
#: fanout, docs/tracking.md). Fewer, larger commits share those pages; the recorder
#: still lets routing run between chunks of a large batch (records.CHUNK).
BATCH_ITEMS = 1000
BATCH_DELAY = 0.1

#: How long a sender's messages live on clients: the sender's bare JID (None: system) → duration.
LifetimePolicy = Callable[[str | None], timedelta]


def _fixed_lifetime(_sender: str | None) -> timedelta:
    return DEFAULT_MESSAGE_LIFETIME


#: A recent message: (its recipients, who got it already).
#:
#: Fifty thousand stay cached, and every container among them is one more object for
#: each garbage collection to walk (a collection of the younger generations took
#: 50-70 ms with them under 3,000 messages a second). The collector stops tracking an
#: exact tuple that holds only strings, so a 1:1 message keeps its one recipient and
#: its one delivery as plain strings; a message to several keeps a frozenset and a set.
Sent = tuple["str | frozenset[str]", "str | set[str] | None"]


def addressed_to(sent: Sent, who: str) -> bool:
    """Whether ``who`` (a bare JID) is among ``sent``'s recipients."""
    to = sent[0]
    return who == to if isinstance(to, str) else who in to


def with_delivery(sent: Sent, who: str) -> Sent | None:
    """``sent`` with ``who`` noted as served; None if not a recipient, or served already."""
    if not addressed_to(sent, who):
        return None
    got = sent[1]
    if got is None:
        return (sent[0], who)
    if isinstance(got, str):
        return None if got == who else (sent[0], {got, who})
    if who in got:
        return None
    got.add(who)  # a message to many: its own set, changed in place
    return sent


def recipients_of(recipients: tuple[str, ...]) -> str | frozenset[str]:
    """What a :data:`Sent` entry keeps of ``recipients``: the one string, or a frozenset."""
    return recipients[0] if len(recipients) == 1 else frozenset(recipients)


class MessageTracker:
    """Records conversations, messages and deliveries as dataset records (shared service)."""

    def __init__(self, ctx: FeatureContext, svc: DatasetService) -> None:
        self.ctx = ctx
        self.svc = svc
        self.domain = ctx.hosts.domain
        self.recorder = Recorder(svc, self.domain, ctx.stores.expiry)
        self.lifetime: LifetimePolicy = _fixed_lifetime
        self.writer: BatchWriter[Op] = BatchWriter(
            self.recorder.commit,
            name="tracking-writer",
            max_items=BATCH_ITEMS,
            max_delay=BATCH_DELAY,
        )
        self.recent: Lru[str, Sent] = Lru(RECENT)
        self.client_ids: Lru[tuple[str, str, str], str] = Lru(RECENT)
        self.last_activity: dict[ConvKey, datetime] = {}
        self.room_people: dict[str, set[str]] = {}
        self._last_stamp: datetime | None = None

    # -- addresses ----------------------------------------------------------

    def is_ours(self, jid: str) -> bool:
        """Whether a JID is this server, one of its accounts, or one of its services' entities."""
        domain = jid.partition("@")[2] if "@" in jid else jid
        return self.ctx.hosts.is_local(domain.partition("/")[0])

    def conversation_key(self, jid: str) -> ConvKey:
        """The key a conversation JID names: a room's JID, or two bare JIDs as ``a|b``.

        Raises:
            ValidationError: It is neither.
        """
        try:
            if "|" in jid:
                a, _, b = jid.partition("|")
                return pair_key(str(JID.parse(a.strip()).bare), str(JID.parse(b.strip()).bare))
            room = JID.parse(jid.strip()).bare
        except InvalidJID:
            raise ValidationError(f"{jid!r} is not a conversation JID") from None
        if room.domain != self.ctx.hosts.chat_domain or room.localpart is None:
            raise ValidationError(f"{jid!r} is not a room JID nor two JIDs joined by '|'")
        return room_key(str(room))

    # -- time ---------------------------------------------------------------

    def now_unique(self) -> datetime:
        """The current time, made strictly increasing (the archive's order key)."""
        now = self.ctx.clock.now()
        if self._last_stamp is not None and now <= self._last_stamp:
            now = self._last_stamp + timedelta(microseconds=1)
        self._last_stamp = now
        return now

    def use_lifetime_policy(self, policy: LifetimePolicy) -> None:
        """Give each message sent from now on the lifetime ``policy`` says (the expiry feature)."""
        self.lifetime = policy

    # -- the service API ----------------------------------------------------

    def stamp(self, stanza: Element, by: JID) -> str:
        """Add a fresh ``<stanza-id/>`` by ``by`` (its bare JID) and return the id."""
        uid = uuid4()
        stanzas.stamp(stanza, str(by.bare), uid)
        return uid

    async def record_message(
        self,
        *,
        conversation: tuple[str, str],
        sender: str | None,
        recipients: Iterable[str],
        stanza: Element,
        uuid: str,
        nick: str = "",
        acknowledgeable: bool = False,
        system: bool = False,
    ) -> None:
        """Queue a message for recording (system messages have no sender identity)."""
        key = room_key(conversation[0]) if conversation[1] == ROOM else pair_key(*conversation)
        members = () if key[1] == ROOM else key
        self.enqueue_message(
            key=key,
            sender=None if system else sender,
            recipients=tuple(recipients),
            members=members,
            stanza=stanza,
            uid=uuid,
            nick=nick,
            is_acknowledgeable=acknowledgeable or stanzas.is_acknowledgeable(stanza),
        )

    async def ensure_conversation(
        self,
        jid1: str,
        jid2: str,
        *,
        ttl: int | None = None,
        topic: str = "",
        members: Iterable[str] = (),
    ) -> None:
        """Create the conversation if missing (or add members, set ttl and topic), committed."""
        key = room_key(jid1) if jid2 == ROOM else pair_key(jid1, jid2)
        if ttl is not None and ttl < 1:
            raise ValidationError("a conversation's ttl is at least one minute")
        self.writer.put(
            ConversationOp(key=key, ttl=ttl, topic=topic or None, add_members=tuple(members))
        )
        self.last_activity.setdefault(key, self.ctx.clock.now())
        await self.flush()

    async def message_id(self, uuid: str) -> int | None:
        """The MESSAGES record id of a stanza id (after committing what is queued)."""
        await self.flush()
        return await self.recorder.message_id(uuid)

    async def expire_conversation(self, jid: str) -> bool:
        """Expire a conversation now (a room JID, or ``a|b``); False if there is none."""
        return await self._expire(self.conversation_key(jid), due_before=None)

    async def leave_conversation(self, jid: str, members: Iterable[str]) -> None:
        """Remove members from a conversation (a history row each).

        Raises:
            NotFoundError: There is no such conversation.
            ValidationError: ``jid`` or a member is not a JID.
        """
        key = self.conversation_key(jid)
        try:
            leaving = tuple(str(JID.parse(m.strip()).bare) for m in members)
        except InvalidJID:
            raise ValidationError("members must be JIDs") from None
        await self.flush()
        if await self.recorder.find_conversation(key) is None:
            raise NotFoundError(f"no conversation {jid!r}")
        self.writer.put(ConversationOp(key=key, remove_members=leaving))
        if key[1] == ROOM:
            self.room_people.get(key[0], set()).difference_update(leaving)
        await self.flush()

    async def flush(self) -> None:
        """Return once everything queued before the call is committed."""
        await self.writer.flush()

    # -- queueing (synchronous, for the hooks) -------------------------------

    def enqueue_message(
        self,
        *,
        key: ConvKey,
        sender: str | None,
        recipients: tuple[str, ...],
        members: tuple[str, ...],
        stanza: Element,
        uid: str,
        nick: str = "",
        is_acknowledgeable: bool = False,
        acknowledges: str | None = None,
    ) -> None:
        """Queue a message and remember it for deliveries, receipts and markers."""
        received = self.now_unique()
        expiry = self._expiry(key, sender, recipients, stanza, uid, received)
        stanzas.add_expiry_hint(stanza, expiry.expires_at)
        body, elements = stanzas.body_and_elements(stanza)
        self.writer.put(
            MessageOp(
                key=key,
                uuid=uid,
                sender=sender,
                recipients=recipients,
                members=members,
                body=body,
                elements=elements,
                nick=nick,
                received_at=received,
                sent_at=stanzas.sent_stamp(stanza) or received,
                is_acknowledgeable=is_acknowledgeable,
                acknowledges=acknowledges,
                expiry=expiry,
            )
        )
        self.recent.put(uid, (recipients_of(recipients), None))
        self.last_activity[key] = received

    def _expiry(
        self,
        key: ConvKey,
        sender: str | None,
        recipients: tuple[str, ...],
        stanza: Element,
        uid: str,
        received: datetime,
    ) -> ExpiryEntry:
        """When a message expires: its time plus its sender's lifetime, fixed now (send time)."""
        expires_at = received + self.lifetime(sender)
        if key[1] == ROOM:
            return ExpiryEntry(
                uuid=uid, expires_at=expires_at, kind="groupchat", sender=sender, peer=key[0]
            )
        peer = recipients[0] if recipients else (key[1] if key[0] == sender else key[0])
        return ExpiryEntry(
            uuid=uid,
            expires_at=expires_at,
            kind="chat",
            sender=sender,
            peer=peer,
            client_id=stanzas.retraction_id(stanza),
        )

    def first_delivery(self, uid: str, who: str) -> bool:
        """Whether recent message ``uid`` reaches recipient ``who`` for the first time (noted)."""
        sent = self.recent.get(uid)
        if sent is None:
            return False
        changed = with_delivery(sent, who)
        if changed is None:
            return False
        if changed is not sent:
            self.recent.put(uid, changed)
        return True

    def delivered(
        self,
        uid: str,
        recipient: str,
        mark: str,
        *,
        is_verified: bool = True,
        at: datetime | None = None,
    ) -> None:
        """Queue a MESSAGE_DELIVERIES timestamp (``sent_at`` or a :class:`stanzas.Mark`).

        The time is now, or ``at`` (the copies of one broadcast share the time they left).
        """
        self.writer.put(
            DeliveryOp(
                uuid=uid,
                recipient=recipient,
                field=mark,
                at=self.ctx.clock.now() if at is None else at,
                is_verified=is_verified,
            )
        )

    def failed(self, uid: str, recipient: str, condition: str) -> None:
        """Queue a failed delivery: ``failed_at`` now, and why (a stanza error condition)."""
        self.writer.put(
            DeliveryOp(
                uuid=uid,
                recipient=recipient,
                field="failed_at",
                at=self.ctx.clock.now(),
                failure=condition,
            )
        )

    def conversation_changed(self, op: ConversationOp) -> None:
        """Queue a conversation change (rooms)."""
        self.writer.put(op)

    # -- recipients -----------------------------------------------------------

    async def is_recipient(self, uid: str, jid: str) -> bool | None:
        """Whether ``jid`` was a recipient of message ``uid`` (None: no such message)."""
        sent = self.recent.get(uid)
        if sent is not None:
            return addressed_to(sent, jid)
        await self.flush()
        return await self.recorder.is_recipient(uid, jid)

    def is_room_participant(self, room: str, jid: str) -> bool:
        """Whether ``jid`` was seen as a member or occupant of ``room`` since the start."""
        return jid in self.room_people.get(room, ())

    # -- expiry -------------------------------------------------------------

    async def expire_due(self) -> None:
        """Expire every active conversation whose last message is older than its ttl."""
        now = self.ctx.clock.now()
        due: list[ConvKey] = []
        offset = 0
        while True:
            query = Query(
                filters=(Filter(field="activity_state", op=FilterOp.EQ, value=State.ACTIVE),),
                offset=offset,
                limit=EXPIRY_PAGE,
            )
            page = await self.svc.query("CONVERSATIONS", query)
            for rec in page.records:
                key = (str(rec.get("jid1")), str(rec.get("jid2")))
                last = self.last_activity.get(key)
                if last is None:
                    last = await self.recorder.last_message_at(rec.id) or now
                    self.last_activity[key] = last
                if last + timedelta(minutes=_ttl(rec.get("ttl"))) <= now:
                    due.append(key)
            if len(page.records) < EXPIRY_PAGE:
                break
            offset += EXPIRY_PAGE
        for key in due:
            await self._expire(key, due_before=now)

    async def _expire(self, key: ConvKey, *, due_before: datetime | None) -> bool:
        async with self.writer.exclusive():
            if due_before is not None:
                ttl = await self._ttl_of(key)
                last = self.last_activity.get(key)
                if last is not None and last + timedelta(minutes=ttl) > due_before:
                    return False  # a message arrived meanwhile
            members = await self.recorder.expire(key)
        if members is None:
            return False
        self.last_activity.pop(key, None)
        log.info("conversation expired (%d members notified)", len(members))
        for jid in members:
            login = jid.partition("@")[0]
            for session in self.ctx.sessions.available_of_user(login):
                notice = stanzas.expired_notice(str(session.jid), self.domain, key[0], key[1])
                self.ctx.router.deliver(session, notice)
        return True

    async def _ttl_of(self, key: ConvKey) -> int:
        ds = self.svc.registry.get("CONVERSATIONS")
        rec = await self.svc.store.find_by_key(ds, {"jid1": key[0], "jid2": key[1]})
        return _ttl(rec.get("ttl") if rec is not None else None)


def _ttl(value: object) -> int:
    return value if isinstance(value, int) and value > 0 else DEFAULT_TTL
