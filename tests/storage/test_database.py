"""Database: URLs, pragmas, named transactions, after-commit hooks, concurrency."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from carewire.core.stores import RosterItem, Stores
from carewire.errors import ConfigError
from carewire.security.envelope import ephemeral_keyring
from carewire.storage import Database, build_stores, dialects, migrate
from carewire.storage.tables import UTCDateTime, accounts, metadata
from tests.storage.factories import new_account, utc


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:///data/cw.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///data/cw.db", "sqlite+aiosqlite"),
        ("postgres://u:p@db/cw", "postgresql+asyncpg"),
        ("postgresql://u:p@db/cw", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u:p@db/cw", "postgresql+asyncpg"),
    ],
)
def test_normalize_url(url: str, driver: str) -> None:
    parsed = dialects.normalize_url(url)
    assert parsed.drivername == driver
    assert parsed.database in ("data/cw.db", "cw")


@pytest.mark.parametrize("url", ["mysql://u@h/db", "postgresql+psycopg2://h/db", "nonsense"])
def test_unsupported_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        dialects.normalize_url(url)


def test_utc_datetime_type() -> None:
    t = UTCDateTime()
    lite, pg = sqlite.dialect(), postgresql.dialect()  # type: ignore[no-untyped-call]
    with pytest.raises(ValueError, match="naive"):
        t.process_bind_param(datetime(2024, 1, 1), lite)
    plus2 = timezone(timedelta(hours=2))
    aware = datetime(2024, 1, 1, 14, tzinfo=plus2)
    assert t.process_bind_param(aware, lite) == datetime(2024, 1, 1, 12)
    assert t.process_bind_param(aware, pg) == datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert t.process_bind_param(None, lite) is None
    assert t.process_result_value(datetime(2024, 1, 1, 12), lite) == utc(2024, 1, 1, 12)
    assert t.process_result_value(aware, pg) == utc(2024, 1, 1, 12)
    result = t.process_result_value(aware, pg)
    assert result is not None and result.tzinfo is UTC


async def test_dialect_and_sqlite_url_rewrite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'cw.db'}"
    db = await Database.open(url)
    try:
        assert db.dialect == "sqlite"
    finally:
        await db.close()
    assert (tmp_path / "sub" / "cw.db").exists()


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    db = await Database.open(f"sqlite:///{tmp_path / 'cw.db'}")
    try:
        async with db.transaction("pragmas") as txn:
            values = {
                name: (await txn.conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        await db.close()
    assert values == {
        "journal_mode": "wal",
        "synchronous": 1,  # NORMAL
        "foreign_keys": 1,
        "busy_timeout": 5000,
    }


async def test_open_does_not_migrate(db_url: str) -> None:
    db = await Database.open(db_url)
    try:
        async with db.read("tables") as conn:
            names = await conn.run_sync(lambda c: c.dialect.get_table_names(c))
        assert "accounts" not in names
    finally:
        await db.close()
    assert await migrate.current(db_url) is None


async def test_after_commit_runs_only_after_commit(
    db: Database, stores: Stores, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    async with db.transaction("ok") as txn:
        txn.after_commit(lambda: calls.append("first"))
        txn.after_commit(lambda: calls.append("second"))
        await txn.conn.execute(text("SELECT 1"))
        assert calls == []
    assert calls == ["first", "second"]

    with pytest.raises(RuntimeError, match="boom"):
        async with db.transaction("fails") as txn:
            txn.after_commit(lambda: calls.append("never"))
            raise RuntimeError("boom")
    assert calls == ["first", "second"]

    def bad() -> None:
        raise KeyError("callback bug")

    with caplog.at_level(logging.ERROR, logger="carewire.storage.database"):
        async with db.transaction("bad_callback") as txn:
            txn.after_commit(bad)
            txn.after_commit(lambda: calls.append("after bad"))
    assert calls[-1] == "after bad"
    assert "bad_callback" in caplog.text


async def test_rollback_discards_writes(db: Database, stores: Stores) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction("create_then_fail") as txn:
            await txn.conn.execute(
                insert(accounts).values(login="ghost", created_at=utc(2024, 1, 1))
            )
            raise RuntimeError("abort")
    assert not await stores.accounts.exists("ghost")


async def test_nested_transactions_join_the_outer_one(db: Database, stores: Stores) -> None:
    calls: list[str] = []
    async with db.transaction("outer") as outer:
        await stores.accounts.create(new_account("inner"))  # the store's own transaction joins
        async with db.transaction("nested") as nested:
            assert nested is outer
            nested.after_commit(lambda: calls.append("nested"))
        assert calls == []  # waits for the outer commit
        outer.after_commit(lambda: calls.append("outer"))
    assert calls == ["nested", "outer"]
    assert await stores.accounts.exists("inner")


async def test_a_failing_outer_transaction_takes_the_joined_writes_with_it(
    db: Database, stores: Stores
) -> None:
    calls: list[str] = []
    with pytest.raises(RuntimeError, match="late failure"):
        async with db.transaction("outer"):
            await stores.accounts.create(new_account("doomed"))
            async with db.transaction("nested") as nested:
                nested.after_commit(lambda: calls.append("never"))
            raise RuntimeError("late failure")
    assert not await stores.accounts.exists("doomed")
    assert calls == []


async def test_a_task_started_in_a_transaction_does_not_join_it(
    db: Database, stores: Stores
) -> None:
    async def elsewhere() -> str:
        async with db.transaction("own") as own:
            await own.conn.execute(
                insert(accounts).values(login="apart", created_at=utc(2024, 1, 1))
            )
            return own.name

    async with db.transaction("outer") as outer:
        task = asyncio.create_task(elsewhere())
        await asyncio.sleep(0)
        assert not task.done() or db.dialect != "sqlite"  # SQLite: waits for the writer lock
    assert await task == "own"
    assert outer.name == "outer"
    assert await stores.accounts.exists("apart")


async def test_transaction_names_are_logged(
    db: Database, stores: Stores, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="carewire.storage.database"):
        await stores.accounts.create(new_account("bob"))
    assert any("create_account" in r.getMessage() for r in caplog.records)


async def test_concurrent_transactions(stores: Stores, alice: str) -> None:
    now = utc(2024, 1, 1)

    async def worker(n: int) -> None:
        await stores.roster.set_item(alice, RosterItem(contact=f"c{n}@example.org"))
        await stores.accounts.record_failure(alice, now, lock_after=1000)
        await stores.offline.store(alice, "<m/>", stamp=now, expires_at=now + timedelta(days=1))
        await stores.roster.get_roster(alice)
        await stores.accounts.reset_failures(alice)
        await stores.accounts.create(new_account(f"user{n}"))

    await asyncio.gather(*(worker(n) for n in range(100)))
    version, items = await stores.roster.get_roster(alice)
    assert (version, len(items)) == (100, 100)
    assert await stores.offline.count(alice) == 100
    assert await stores.accounts.count() == 101


async def test_two_handles_on_one_sqlite_file(tmp_path: Path) -> None:
    """Two processes' worth of writers: busy_timeout + BEGIN IMMEDIATE."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    await migrate.upgrade(url)
    db1, db2 = await Database.open(url), await Database.open(url)
    ring = ephemeral_keyring()
    s1, s2 = build_stores(db1, ring), build_stores(db2, ring)
    try:
        await s1.accounts.create(new_account("alice"))
        at = utc(2024, 1, 1)
        await asyncio.gather(
            *(s.accounts.record_failure("alice", at, lock_after=10**6) for s in [s1, s2] * 50)
        )
        acc = await s2.accounts.get("alice")
        assert acc is not None and acc.failed_logins == 100
    finally:
        await db1.close()
        await db2.close()


async def test_in_memory_sqlite() -> None:
    db = await Database.open("sqlite+aiosqlite://")
    try:
        async with db.transaction("create_schema") as txn:
            await txn.conn.run_sync(metadata.create_all)
        stores = build_stores(db, ephemeral_keyring())
        await stores.accounts.create(new_account("alice"))
        assert await stores.roster.set_item("alice", RosterItem(contact="b@x")) == 1
        await asyncio.gather(*(stores.accounts.get("alice") for _ in range(20)))
        assert await stores.accounts.count() == 1
    finally:
        await db.close()


async def test_point_reads_only_on_file_sqlite(db_url: str, tmp_path: Path) -> None:
    """File SQLite reads point lookups inline (and sees committed writes); others do not."""
    await migrate.upgrade(db_url)
    db = await Database.open(db_url)
    stores = build_stores(db, ephemeral_keyring())
    try:
        assert db.has_point_reads is db_url.startswith("sqlite")
        await stores.accounts.create(new_account("nurse"))
        account, _ = await stores.accounts.get_for_login("nurse", "SCRAM-SHA-1")
        assert account is not None and account.login == "nurse"
        if db.has_point_reads:
            with db.point_read("check") as conn:
                assert conn.execute(text("SELECT count(*) FROM accounts")).scalar() == 1
                with pytest.raises(OperationalError, match="readonly"):
                    conn.execute(text("DELETE FROM accounts"))  # query_only: never writes
    finally:
        await db.close()
    memory = await Database.open("sqlite+aiosqlite:///:memory:")
    try:
        assert not memory.has_point_reads
    finally:
        await memory.close()


async def test_timings_and_the_server_version_for_metrics(db: Database) -> None:
    before = {kind: buckets.count for kind, buckets in db.latency.items()}
    async with db.transaction("timed") as txn:
        await txn.conn.execute(text("SELECT 1"))
    async with db.read("timed") as conn:
        await conn.execute(text("SELECT 1"))
    assert db.latency["transaction"].count == before["transaction"] + 1
    assert db.latency["read"].count == before["read"] + 1
    assert db.latency["transaction"].total > 0
    version = await db.server_version()
    expected = "SQLite " if db.dialect == dialects.SQLITE else "PostgreSQL "
    assert version.startswith(expected) and version[len(expected)].isdigit()
