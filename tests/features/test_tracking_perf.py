"""Message tracking under load: bulk batches, the bounded queue (backpressure), flush progress.

Functional checks only (what is written, how many statements, who waits); timings are
the benchmark's business (``python -m bench.tracking``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from carewire.datasets.model import ChangeKind, RecordChanged
from carewire.datasets.query import Query
from carewire.features.tracking import MessageTracker
from carewire.features.tracking.writer import WARN_INTERVAL, BatchWriter
from carewire.xmpp.jid import JID
from tests.features.harness import Harness, make_harness, x

D = "example.test"
FEATURES = ["message", "offline", "roster", "presence", "tracking"]


# --- the batch writer alone ----------------------------------------------------------------


class Sink:
    """A commit function that records its batches (and can run code in between)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    async def __call__(self, items: Sequence[int]) -> None:
        self.batches.append(list(items))
        await asyncio.sleep(0)

    @property
    def items(self) -> list[int]:
        return [i for b in self.batches for i in b]


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_put_never_blocks_and_wait_for_room_commits_down_to_the_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink()
    clock = FakeMonotonic()
    w: BatchWriter[int] = BatchWriter(sink, max_items=10, max_pending=25, monotonic=clock)
    for i in range(60):
        w.put(i)  # never refuses, never drops
    assert len(w) == 60 and w.is_over_limit
    with caplog.at_level(logging.WARNING):
        await w.wait_for_room()
    assert len(w) <= 25 and not w.is_over_limit
    assert sink.items == list(range(len(sink.items)))  # oldest first, in order
    assert all(len(b) <= 10 for b in sink.batches)
    warnings = [r for r in caplog.records if "writes queued" in r.getMessage()]
    assert len(warnings) == 1
    assert "26 writes queued (limit 25)" in warnings[0].getMessage()
    await w.flush()
    assert sink.items == list(range(60))
    assert w.dropped == 0 and w.committed == 60


async def test_wait_for_room_returns_at_once_under_the_limit() -> None:
    sink = Sink()
    w: BatchWriter[int] = BatchWriter(sink, max_items=10, max_pending=25)
    for i in range(25):
        w.put(i)
    await w.wait_for_room()
    assert sink.batches == [] and len(w) == 25


async def test_the_backlog_warning_is_logged_at_most_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeMonotonic()
    w: BatchWriter[int] = BatchWriter(Sink(), max_items=5, max_pending=5, monotonic=clock)
    with caplog.at_level(logging.WARNING):
        for i in range(50):
            w.put(i)
        await w.wait_for_room()
        for i in range(50):
            w.put(i)
        clock.now += WARN_INTERVAL - 1
        w.put(0)
        clock.now += 1
        w.put(0)
        w.put(0)
    warnings = [r for r in caplog.records if "writes queued" in r.getMessage()]
    assert len(warnings) == 2


async def test_flush_returns_while_producers_keep_adding() -> None:
    """flush waits for what was queued before it, not for a queue that never empties."""
    w: BatchWriter[int] | None = None

    async def commit(items: Sequence[int]) -> None:
        assert w is not None
        for i in items:
            w.put(i + 1000)  # a producer as fast as the writer
        await asyncio.sleep(0)

    w = BatchWriter(commit, max_items=10)
    for i in range(30):
        w.put(i)
    await asyncio.wait_for(w.flush(), timeout=5)
    assert w.committed >= 30
    assert len(w) > 0  # what came later is still queued


async def test_a_failing_item_is_dropped_alone_and_counted() -> None:
    done: list[int] = []

    async def commit(items: Sequence[int]) -> None:
        if 3 in items:
            raise ValueError("bad item")
        done.extend(items)

    w: BatchWriter[int] = BatchWriter(commit, max_items=10, max_pending=2)
    for i in range(8):
        w.put(i)
    await w.wait_for_room()
    await w.flush()
    assert done == [0, 1, 2, 4, 5, 6, 7]
    assert w.dropped == 1 and w.committed == 8


# --- the tracker on the data platform -----------------------------------------------------


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=FEATURES, with_platform=True)
    yield harness
    await harness.close()


def tracker(h: Harness) -> MessageTracker:
    found = h.kernel.ctx.require(MessageTracker)
    assert found is not None
    return found


@contextmanager
def counting() -> Iterator[list[str]]:
    seen: list[str] = []

    def on_execute(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", on_execute)


async def _chat(h: Harness, sender: str, to: str, n: int) -> None:
    session = h.kernel.sessions.get(JID.parse(f"{sender}@{D}/res"))
    assert session is not None
    await h.send(
        session, f"<message to='{to}@{D}' type='chat' id='c{n}'><body>note {n}</body></message>"
    )


async def _total(h: Harness, dataset: str) -> int:
    assert h.platform is not None
    return (await h.platform.datasets.query(dataset, Query(limit=1))).total


async def _pairs(h: Harness, n: int) -> None:
    for i in range(n):
        await h.login(f"s{i}")
        await h.login(f"r{i}")


async def test_a_batch_of_messages_is_written_in_bulk(h: Harness) -> None:
    t = tracker(h)
    assert h.platform is not None
    await _pairs(h, 3)
    await _chat(h, "s0", "r0", 0)  # conversations and identities exist after this
    await _chat(h, "s1", "r1", 0)
    await _chat(h, "s2", "r2", 0)
    await t.flush()
    await t.writer.stop()  # commit only when flushed: one batch below
    events: list[RecordChanged] = []
    h.platform.datasets.subscribe(events.append)
    for n in range(1, 91):
        await _chat(h, f"s{n % 3}", f"r{n % 3}", n)
    with counting() as statements:
        await t.flush()
    assert await _total(h, "MESSAGES") == 93
    assert await _total(h, "MESSAGE_DELIVERIES") == 93
    # 180 writes in one batch (at most 200 a batch): a handful of statements, not ~12 each.
    assert len(statements) <= 12, statements
    assert [e.dataset for e in events] == ["MESSAGES"] * 90 + ["MESSAGE_DELIVERIES"] * 90
    assert all(e.kind is ChangeKind.CREATE for e in events)
    uuids = [e.new["uuid"] for e in events[:90] if e.new is not None]
    assert len(set(uuids)) == 90
    received = [e.new["received_at"] for e in events[:90] if e.new is not None]
    assert all(isinstance(r, datetime) for r in received)
    assert received == sorted(received, key=str)  # queue order is record order
    stored = await h.platform.datasets.store.get_many(
        h.platform.registry.get("MESSAGES"), [e.record_id for e in events[:90]]
    )
    assert [stored[e.record_id].get("uuid") for e in events[:90]] == uuids  # ids match rows
    message_ids = [e.record_id for e in events[:90]]
    assert [e.new["message"] for e in events[90:] if e.new is not None] == message_ids
    assert all(e.new is not None and e.new["sent_at"] is not None for e in events[90:])


async def test_receipts_for_earlier_batches_complete_deliveries_in_bulk(h: Harness) -> None:
    t = tracker(h)
    assert h.platform is not None
    await _pairs(h, 2)
    for n in range(6):
        await _chat(h, f"s{n % 2}", f"r{n % 2}", n)
    await t.flush()
    t.recorder.cache.deliveries = type(t.recorder.cache.deliveries)(10)  # forget: read back
    t.recorder.cache.messages = type(t.recorder.cache.messages)(10)
    await t.writer.stop()
    events: list[RecordChanged] = []
    h.platform.datasets.subscribe(events.append)
    for n in range(6):
        i = n % 2
        session = h.kernel.sessions.get(JID.parse(f"r{i}@{D}/res"))
        assert session is not None
        for kind in ("received", "displayed", "received"):  # a repeat changes nothing
            await h.send(
                session,
                f"<message to='s{i}@{D}'><{kind} xmlns='urn:xmpp:chat-markers:0' "
                f"id='c{n}'/></message>",
            )
    await t.flush()
    assert [e.kind for e in events] == [ChangeKind.UPDATE] * 6
    for e in events:
        assert e.new is not None and e.old is not None
        assert e.old["received_at"] is None and e.new["received_at"] is not None
        assert e.new["displayed_at"] is not None
    assert await _total(h, "MESSAGE_DELIVERIES") == 6


async def test_a_sender_waits_while_the_backlog_is_over_the_limit(h: Harness) -> None:
    t = tracker(h)
    await _pairs(h, 2)
    await t.flush()
    await t.writer.stop()  # no writer task: only waiting senders (and flush) commit
    t.writer.max_pending = 6
    t.writer.max_items = 4
    peak = 0
    for n in range(40):
        await _chat(h, f"s{n % 2}", f"r{n % 2}", n)
        peak = max(peak, len(t.writer))
    # Each message queues two writes (message, delivery) after its sender waited for room.
    assert peak <= 6 + 2
    await t.flush()
    assert await _total(h, "MESSAGES") == 40
    assert await _total(h, "MESSAGE_DELIVERIES") == 40
    assert t.writer.dropped == 0


async def test_a_bad_message_in_a_bulk_batch_costs_only_itself(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    t = tracker(h)
    await _pairs(h, 1)
    await _chat(h, "s0", "r0", 0)
    await t.flush()
    await t.writer.stop()
    for n in range(1, 6):
        await _chat(h, "s0", "r0", n)
    # A clash with an existing uuid fails the bulk insert; the batch is retried one by one.
    assert h.platform is not None
    first = (await h.platform.datasets.query("MESSAGES", Query(limit=1))).records[0]
    pair = (f"r0@{D}", f"s0@{D}")
    t.enqueue_message(
        key=pair,
        sender=f"s0@{D}",
        recipients=(f"r0@{D}",),
        members=pair,
        stanza=x("<message type='chat'><body>again</body></message>"),
        uid=str(first.get("uuid")),
    )
    with caplog.at_level(logging.ERROR):
        await t.flush()
    assert await _total(h, "MESSAGES") == 6
    assert await _total(h, "MESSAGE_DELIVERIES") == 6
    assert t.writer.dropped == 1
    assert any("dropped a MessageOp write: ConflictError" in r.getMessage() for r in caplog.records)


async def test_new_conversations_in_a_batch_are_made_in_bulk(h: Harness) -> None:
    """Thirty first messages between strangers: a few statements, the same records as one by one."""
    t = tracker(h)
    assert h.platform is not None
    await _pairs(h, 30)
    await t.flush()
    await t.writer.stop()
    before = await _total(h, "USERS")
    for i in range(30):
        await _chat(h, f"s{i}", f"r{i}", i)
    with counting() as statements:
        await t.flush()
    # Look-ups and bulk creates per dataset, not ~8 statements per new conversation.
    assert len(statements) <= 16, statements
    assert await _total(h, "CONVERSATIONS") == 30
    assert await _total(h, "CONVERSATION_HISTORY") == 30
    assert await _total(h, "MESSAGES") == 30
    assert await _total(h, "MESSAGE_DELIVERIES") == 30
    assert await _total(h, "USERS") == before + 60  # minimal USERS records, made in bulk
    convs = await h.platform.datasets.query("CONVERSATIONS", Query(limit=100))
    registry = h.platform.registry
    users = await h.platform.datasets.store.get_many(
        registry.get("USERS"),
        [
            u
            for rec in convs.records
            for u in (
                await h.platform.datasets.store.follow(
                    registry.get("CONVERSATIONS"),
                    registry.get("CONVERSATIONS").link("members"),  # type: ignore[arg-type]
                    [rec.id],
                )
            )[rec.id]
        ],
    )
    logins = sorted(str(u.get("login")) for u in users.values())
    assert logins == sorted([f"s{i}" for i in range(30)] + [f"r{i}" for i in range(30)])
    for rec in convs.records:
        assert rec.get("activity_state") == "active" and rec.get("ttl") == 10080
    history = await h.platform.datasets.query("CONVERSATION_HISTORY", Query(limit=100))
    identities = await h.platform.datasets.query("IDENTITIES", Query(limit=200))
    names = {i.id: i.get("name") for i in identities.records}
    assert sorted(names[r.get("member")] for r in history.records) == sorted(  # type: ignore[index]
        f"s{i}@{D}" for i in range(30)
    )
    assert all(i.get("usr") is not None for i in identities.records)  # linked to their users
