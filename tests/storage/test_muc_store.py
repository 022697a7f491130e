"""MucStore contract (XEP-0045 persistent rooms) and the 0004_muc migration, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from carewire.core.stores import StoredRoom, Stores
from carewire.storage import Database, migrate
from carewire.storage.tables import metadata

MUC_TABLES = {"muc_rooms", "muc_affiliations"}


def _room(name: str, **kw: object) -> StoredRoom:
    base: dict[str, object] = {"name": name, "config": '{"roomname": "Ward 3"}'}
    base.update(kw)
    return StoredRoom(**base)  # type: ignore[arg-type]


async def test_save_list_replace_delete(stores: Stores) -> None:
    assert await stores.muc.rooms() == []
    first = _room(
        "ward3",
        subject="Night shift",
        subject_by="alice",
        affiliations={"alice@example.test": "owner", "bob@example.test": "member"},
    )
    await stores.muc.save(first)
    await stores.muc.save(_room("Zeta"))
    await stores.muc.save(_room("ärzte", affiliations={"x@other.test": "outcast"}))
    rooms = await stores.muc.rooms()
    assert [r.name for r in rooms] == ["Zeta", "ward3", "ärzte"]  # code point order
    assert rooms[1] == first
    assert rooms[0].affiliations == {}

    replaced = _room(
        "ward3",
        config='{"roomname": "Ward 3 North"}',
        subject="",
        affiliations={"carol@example.test": "admin"},
    )
    await stores.muc.save(replaced)
    rooms = await stores.muc.rooms()
    assert rooms[1] == replaced

    assert await stores.muc.delete("ward3") is True
    assert await stores.muc.delete("ward3") is False
    assert [r.name for r in await stores.muc.rooms()] == ["Zeta", "ärzte"]
    assert (await stores.muc.rooms())[1].affiliations == {"x@other.test": "outcast"}


async def test_large_member_list_round_trips(stores: Stores) -> None:
    members = {f"user{i}@example.test": "member" for i in range(200)}
    await stores.muc.save(_room("big", affiliations=members))
    (room,) = await stores.muc.rooms()
    assert room.affiliations == members


async def _tables(db_url: str) -> tuple[set[str], list[object]]:
    def run(conn: Connection) -> tuple[set[str], list[object]]:
        names = set(inspect(conn).get_table_names())
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        return names, [d for d in diff if "muc_" in repr(d)]

    db = await Database.open(db_url)
    try:
        async with db.read("inspect") as conn:
            return await conn.run_sync(run)
    finally:
        await db.close()


async def test_migration_0004_both_directions(db_url: str) -> None:
    await migrate.upgrade(db_url, "0004_muc")
    names, diff = await _tables(db_url)
    assert names >= MUC_TABLES
    assert diff == []
    await migrate.downgrade(db_url, "0003_audit_console")
    names, _ = await _tables(db_url)
    assert not names & MUC_TABLES
    await migrate.upgrade(db_url, "0004_muc")
    names, diff = await _tables(db_url)
    assert names >= MUC_TABLES
    assert diff == []
