"""ControlIdStore contract (applied HL7 control ids) and migration 0006_hl7, on both databases."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from carewire.adapters.base import AdapterConfig
from carewire.errors import ConflictError
from carewire.storage import Database, migrate
from carewire.storage.adapters import SqlAdapterStore
from carewire.storage.hl7 import SqlControlIdStore
from carewire.storage.tables import metadata
from tests.storage.factories import utc

NOW = utc(2026, 3, 1, 8)


async def _adapter(db: Database, name: str = "ADT") -> int:
    saved = await SqlAdapterStore(db).insert(
        AdapterConfig(reference_name=name, component="HL7 ADT"), NOW
    )
    assert saved.id is not None
    return saved.id


async def test_remember_is_seen_per_adapter_and_sender(db: Database) -> None:
    store = SqlControlIdStore(db)
    first, second = await _adapter(db), await _adapter(db, "ADT 2")
    assert not await store.is_seen(first, "ADMIT|HOSP", "M1")
    await store.remember(first, "ADMIT|HOSP", "M1", event="A01", at=NOW)
    assert await store.is_seen(first, "ADMIT|HOSP", "M1")
    assert not await store.is_seen(first, "OTHER|HOSP", "M1")
    assert not await store.is_seen(second, "ADMIT|HOSP", "M1")
    with pytest.raises(ConflictError):
        await store.remember(first, "ADMIT|HOSP", "M1", event="A01", at=NOW)


async def test_remember_many_in_one_statement_and_all_or_nothing(db: Database) -> None:
    store = SqlControlIdStore(db)
    adapter = await _adapter(db)
    await store.remember_many(adapter, [("A|H", "M1", "A01"), ("A|H", "M2", "A08")], at=NOW)
    assert await store.is_seen(adapter, "A|H", "M2")
    with pytest.raises(ConflictError):
        await store.remember_many(adapter, [("A|H", "M3", "A01"), ("A|H", "M1", "A01")], at=NOW)
    assert not await store.is_seen(adapter, "A|H", "M3")
    await store.remember_many(adapter, [], at=NOW)


async def test_remember_joins_the_callers_transaction(db: Database) -> None:
    store = SqlControlIdStore(db)
    adapter = await _adapter(db)
    with pytest.raises(RuntimeError):
        async with db.transaction("message"):
            await store.remember(adapter, "ADMIT|HOSP", "M1", event="A01", at=NOW)
            assert await store.is_seen(adapter, "ADMIT|HOSP", "M1")
            raise RuntimeError("the message's changes failed")
    assert not await store.is_seen(adapter, "ADMIT|HOSP", "M1")


async def test_purge_forgets_old_ids_and_removing_the_adapter_cascades(db: Database) -> None:
    store = SqlControlIdStore(db)
    adapter = await _adapter(db)
    old: datetime = NOW - timedelta(days=8)
    await store.remember(adapter, "A|H", "old", event="A01", at=old)
    await store.remember(adapter, "A|H", "new", event="A01", at=NOW)
    assert await store.purge(NOW - timedelta(days=7)) == 1
    assert not await store.is_seen(adapter, "A|H", "old")
    assert await store.is_seen(adapter, "A|H", "new")
    await SqlAdapterStore(db).delete(adapter)
    assert not await store.is_seen(adapter, "A|H", "new")


async def _tables(db_url: str) -> tuple[set[str], list[object]]:
    def run(conn: Connection) -> tuple[set[str], list[object]]:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        return set(inspect(conn).get_table_names()), list(diff)

    database = await Database.open(db_url)
    try:
        async with database.read("inspect") as conn:
            return await conn.run_sync(run)
    finally:
        await database.close()


async def test_migration_0006_both_directions(db_url: str) -> None:
    # Through the head, so that later revisions do not show as differences.
    await migrate.upgrade(db_url)
    names, diff = await _tables(db_url)
    assert "hl7_messages" in names
    assert diff == []
    await migrate.downgrade(db_url, "0009_held_messages")
    names, _ = await _tables(db_url)
    assert "hl7_messages" not in names
    await migrate.upgrade(db_url)
    names, diff = await _tables(db_url)
    assert "hl7_messages" in names
    assert diff == []
