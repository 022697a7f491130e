"""FAST token seeds (storage/fast.py) and migration 0019_fast, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from carewire.core.stores import FastRecord, Stores
from carewire.storage import Database, migrate
from carewire.storage.fast import SqlFastTokenStore
from carewire.storage.tables import accounts

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
        await SqlFastTokenStore(db).put(record("alice"))
    finally:
        await db.close()
    await migrate.downgrade(db_url, "0015_phi")
    assert await migrate.current(db_url) == "0015_phi"
    await migrate.upgrade(db_url, "head")
    assert await migrate.current(db_url) == "0019_fast"
    db = await Database.open(db_url)
    try:
        store = SqlFastTokenStore(db)
        assert await store.get("alice", "phone-1") is None  # the downgrade dropped them
        await store.put(record("alice"))
        assert await store.get("alice", "phone-1") == record("alice")
    finally:
        await db.close()
