"""SqlAuditStore: appends keep one chain under concurrency; queries filter and page."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from carewire.clock import FakeClock
from carewire.security.audit import (
    GENESIS,
    AuditEvent,
    AuditTrail,
    Channel,
    Outcome,
)
from carewire.security.audit_key import AuditKey
from carewire.security.audit_verify import verify_trail
from carewire.storage import Database, migrate
from carewire.storage.audit import SqlAuditStore

START = datetime(2026, 3, 1, tzinfo=UTC)


def ev(actor: str, action: str, target: str = "", **kw: object) -> AuditEvent:
    return AuditEvent(actor=actor, channel=Channel.API, action=action, target=target, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def migrated(db_url: str) -> str:
    await migrate.upgrade(db_url)
    return db_url


@pytest.fixture
async def store(migrated: str) -> AsyncIterator[SqlAuditStore]:
    db = await Database.open(migrated)
    try:
        yield SqlAuditStore(db)
    finally:
        await db.close()


async def test_append_chains_and_rehydrates(store: SqlAuditStore) -> None:
    first = await store.append(START, ev("api:gw", "record.create", "CALLS/1", details={"id": 1}))
    second = await store.append(START, ev("cli:root", "rule.delete", "r", outcome=Outcome.FAILURE))
    assert first.prev_hash == GENESIS and second.prev_hash == first.hash
    read = [e async for e in store.iterate()]
    assert read == [first, second]
    assert read[0].event.details == {"id": 1} and read[1].event.outcome is Outcome.FAILURE


async def test_append_many_is_one_chain(store: SqlAuditStore) -> None:
    await store.append_many([])
    one = await store.append(START, ev("system", "boot"))
    await store.append_many(
        [(START + timedelta(seconds=i), ev("xmpp:a", "login")) for i in range(5)]
    )
    read = [e async for e in store.iterate(batch=2)]
    assert len(read) == 6 and read[0] == one
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(read))


async def test_entries_filters_and_pages(store: SqlAuditStore) -> None:
    events = [
        ev("cli", "rule.create", "a"),
        ev("cli:root", "rule.update", "a"),
        ev("cli_other", "rule.update", "b"),
        ev("api:gw", "record.create", "CALLS/1"),
        ev("api:gw", "api.auth", outcome=Outcome.FAILURE),
        ev("xmpp:bob", "login"),
        ev("xmpp:bob", "rules.weird"),
    ]
    for i, e in enumerate(events):
        await store.append(START + timedelta(days=i), e)
    page, total = await store.entries(limit=3)
    assert total == 7 and [e.event.action for e in page] == ["rules.weird", "login", "api.auth"]
    page, total = await store.entries(offset=5, limit=3)
    assert total == 7 and [e.event.actor for e in page] == ["cli:root", "cli"]
    _, total = await store.entries(actor="cli")
    assert total == 2  # cli and cli:root, not cli_other
    _, total = await store.entries(action="rule")
    assert total == 3  # rule.create, rule.update ×2, not rules.weird
    _, total = await store.entries(action="rule.update", actor="cli")
    assert total == 1
    page, total = await store.entries(outcome=Outcome.FAILURE)
    assert total == 1 and page[0].event.action == "api.auth"
    page, total = await store.entries(START + timedelta(days=1), START + timedelta(days=3))
    assert total == 2 and [e.event.actor for e in page] == ["cli_other", "cli:root"]
    _, total = await store.entries(actor="%")
    assert total == 0  # LIKE wildcards are taken literally


async def test_iterate_period(store: SqlAuditStore) -> None:
    for i in range(10):
        await store.append(START + timedelta(hours=i), ev("a", "x", str(i)))
    got = [
        e.event.target
        async for e in store.iterate(START + timedelta(hours=3), START + timedelta(hours=7), 2)
    ]
    assert got == ["3", "4", "5", "6"]


async def test_concurrent_appends_keep_one_chain(store: SqlAuditStore) -> None:
    trail = AuditTrail(store, FakeClock(START))
    await asyncio.gather(*(trail.record(ev("api:gw", "record.create", str(i))) for i in range(20)))
    result = await verify_trail(trail)
    assert result.ok and result.checked == 20, result


async def test_two_processes_keep_one_chain(migrated: str) -> None:
    """Two Database objects (as the server and the CLI would have) append at once."""
    one, two = await Database.open(migrated), await Database.open(migrated)
    key = AuditKey.generate()  # one installation: one key
    try:
        trails = [AuditTrail(SqlAuditStore(db, key), FakeClock(START)) for db in (one, two)]
        await asyncio.gather(
            *(trails[i % 2].record(ev(f"p{i % 2}", "record.create", str(i))) for i in range(20)),
            trails[0].record_many([(START, ev("xmpp:a", "login")) for _ in range(10)]),
        )
        result = await verify_trail(trails[1])
        assert result.ok and result.checked == 30, result
    finally:
        await one.close()
        await two.close()
