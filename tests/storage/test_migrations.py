"""Alembic migrations: up, down, up again, and agreement with tables.py."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from carewire.storage import Database, migrate
from carewire.storage.tables import ALL_TABLES, metadata

TABLES = {t.name for t in ALL_TABLES}


async def _inspect(db_url: str) -> tuple[set[str], list[Any]]:
    def run(conn: Connection) -> tuple[set[str], list[Any]]:
        names = set(inspect(conn).get_table_names())
        diff = compare_metadata(MigrationContext.configure(conn), metadata) if names else []
        return names, diff

    db = await Database.open(db_url)
    try:
        async with db.read("inspect") as conn:
            return await conn.run_sync(run)
    finally:
        await db.close()


async def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    assert await migrate.current(db_url) is None
    assert len(TABLES) == 21

    await migrate.upgrade(db_url)
    names, diff = await _inspect(db_url)
    assert names >= TABLES
    assert diff == []
    assert await migrate.current(db_url) == "0004_muc"

    await migrate.upgrade(db_url)  # idempotent
    assert await migrate.current(db_url) == "0004_muc"

    await migrate.downgrade(db_url, "base")
    names, _ = await _inspect(db_url)
    assert not TABLES & names
    assert await migrate.current(db_url) is None

    await migrate.upgrade(db_url, "head")
    names, diff = await _inspect(db_url)
    assert names >= TABLES
    assert diff == []
