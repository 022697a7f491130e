"""FAST token seeds (storage/fast.py) and migration 0019_fast, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from carewire.core.stores import FastRecord, Stores
from carewire.security.envelope import ephemeral_keyring
from carewire.storage import Database, migrate
from carewire.storage.fast import SqlFastTokenStore
from carewire.storage.tables import accounts, fast_tokens

AT = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)


def record(owner: str, agent: str = "phone-1", **values: object) -> FastRecord:
    base: dict[str, object] = {
        "owner": owner,
        "agent_id": agent,
        "mechanism": "HT-SHA-256-NONE",
        "new_seed": b"\x01" * 32,
        "new_expires_at": AT + timedelta(days=14),
        "updated_at": AT,
    }
    base.update(values)
    return FastRecord(**base)  # type: ignore[arg-type]


async def test_put_get_replace_delete(stores: Stores, alice: str) -> None:
    fast = stores.fast
    assert await fast.get(alice, "phone-1") is None
    first = record(alice)
    await fast.put(first)
    assert await fast.get(alice, "phone-1") == first
    rotated = record(
        alice,
        current_seed=b"\x01" * 32,
        current_expires_at=AT + timedelta(days=14),
        current_count=7,
        new_seed=b"\x02" * 32,
        retired_seed=b"\x00" * 32,
    )
    await fast.put(rotated)  # the same client: replaced, not added
    assert await fast.get(alice, "phone-1") == rotated
    await fast.put(record(alice, "tablet"))
    assert await fast.delete(alice, "phone-1") and not await fast.delete(alice, "phone-1")
    assert await fast.get(alice, "tablet") is not None
    assert await fast.delete_owner(alice) == 1
    assert await fast.get(alice, "tablet") is None


async def test_tokens_go_with_their_account(stores: Stores, alice: str) -> None:
    await stores.fast.put(record(alice))
    await stores.accounts.remove(alice)
    assert await stores.fast.get(alice, "phone-1") is None


async def test_migration_down_and_up(db_url: str) -> None:
    await migrate.upgrade(db_url, "head")
    db = await Database.open(db_url)
    try:
        async with db.transaction("account") as txn:
            await txn.conn.execute(insert(accounts).values(login="alice", created_at=AT))
        await SqlFastTokenStore(db, ephemeral_keyring()).put(record("alice"))
    finally:
        await db.close()
    await migrate.downgrade(db_url, "0015_phi")
    assert await migrate.current(db_url) == "0015_phi"
    await migrate.upgrade(db_url, "head")
    assert await migrate.current(db_url) == migrate.head()
    db = await Database.open(db_url)
    try:
        store = SqlFastTokenStore(db, ephemeral_keyring())
        assert await store.get("alice", "phone-1") is None  # the downgrade dropped them
        await store.put(record("alice"))
        assert await store.get("alice", "phone-1") == record("alice")
    finally:
        await db.close()


async def test_seeds_are_sealed_and_bound_to_their_client(db_url: str) -> None:
    """The database holds no seed in clear; a sealed seed moved to another client does not open."""
    await migrate.upgrade(db_url, "head")
    db = await Database.open(db_url)
    try:
        async with db.transaction("account") as txn:
            await txn.conn.execute(insert(accounts).values(login="alice", created_at=AT))
        store = SqlFastTokenStore(db, ephemeral_keyring())
        await store.put(record("alice", current_seed=b"\x07" * 32))
        await store.put(record("alice", "tablet"))
        async with db.read("raw") as conn:
            rows = (await conn.execute(select(fast_tokens))).all()
        for row in rows:
            assert row.new_seed != b"\x01" * 32 and b"\x01" * 8 not in bytes(row.new_seed)
        phone = next(r for r in rows if r.agent_id == "phone-1")
        assert b"\x07" * 8 not in bytes(phone.current_seed)
        assert await store.get("alice", "phone-1") == record("alice", current_seed=b"\x07" * 32)
        # A seed copied from one client's row to another's does not open: no token at all.
        async with db.transaction("move") as txn:
            await txn.conn.execute(
                update(fast_tokens)
                .where(fast_tokens.c.agent_id == "tablet")
                .values(new_seed=phone.current_seed)
            )
        assert await store.get("alice", "tablet") is None
        assert await store.get("alice", "phone-1") is not None
    finally:
        await db.close()


def _commits(caplog: pytest.LogCaptureFixture, name: str) -> int:
    return sum(f"transaction {name} committed" in r.getMessage() for r in caplog.records)


async def test_concurrent_puts_share_a_transaction(
    stores: Stores, alice: str, caplog: pytest.LogCaptureFixture
) -> None:
    """FAST logins writing at once commit together; each put returns once its row is in."""
    caplog.set_level(logging.DEBUG, logger="carewire.storage.database")
    agents = [f"phone-{n}" for n in range(20)]

    async def put_then_read(agent: str) -> FastRecord | None:
        await stores.fast.put(record(alice, agent, current_count=len(agent)))
        return await stores.fast.get(alice, agent)  # committed when put returned

    read = await asyncio.gather(*(put_then_read(a) for a in agents))
    assert read == [record(alice, a, current_count=len(a)) for a in agents]
    # The first put commits alone; the 19 queued behind it share the next transaction.
    assert 1 <= _commits(caplog, "put_fast_tokens") <= 2


async def test_a_delete_is_not_undone_by_a_queued_put(stores: Stores, alice: str) -> None:
    """Puts and deletes keep their order: a put queued before a delete does not come back."""
    fast = stores.fast
    await asyncio.gather(
        fast.put(record(alice, "other")),  # holds the lock while the next two queue
        fast.put(record(alice)),
        fast.delete(alice, "phone-1"),
        fast.put(record(alice, "tablet")),
        fast.delete_owner(alice),
    )
    assert await fast.get(alice, "phone-1") is None
    assert await fast.get(alice, "tablet") is None
    assert await fast.get(alice, "other") is None
    await fast.put(record(alice))  # and the store still writes
    assert await fast.get(alice, "phone-1") == record(alice)


async def test_every_put_of_a_failed_batch_raises(stores: Stores, alice: str) -> None:
    """A put never returns as if written when its transaction failed."""
    fast = stores.fast
    outcomes = await asyncio.gather(
        fast.put(record(alice, "first")),  # commits alone
        fast.put(record(alice, "second")),  # shares a batch with the next one …
        fast.put(record("nobody", "third")),  # … which no account owns: the batch fails
        return_exceptions=True,
    )
    assert outcomes[0] is None
    assert isinstance(outcomes[1], Exception) and isinstance(outcomes[2], Exception)
    assert await fast.get(alice, "first") is not None
    assert await fast.get(alice, "second") is None
    await fast.put(record(alice, "second"))  # the queue is not stuck
    assert await fast.get(alice, "second") is not None


async def test_put_inside_a_transaction_joins_it(db: Database, stores: Stores, alice: str) -> None:
    """Inside the caller's transaction a put is part of it (and rolls back with it)."""

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with db.transaction("outer"):
            await stores.fast.put(record(alice))
            await stores.fast.delete_owner(alice)
            await stores.fast.put(record(alice, "tablet"))
            raise Abort
    assert await stores.fast.get(alice, "tablet") is None
    async with db.transaction("outer"):
        await stores.fast.put(record(alice, "tablet"))
    assert await stores.fast.get(alice, "tablet") is not None
