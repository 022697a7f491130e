"""A link column that leads its dataset's unique key gets no index of its own."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, inspect, text

from carewire.storage.database import Database
from tests.datasets.conftest import Platform

TABLE = "ds_message_deliveries"
COVERED = "ix_ds_message_deliveries__message_id"  # (message_id, recipient_id) is the key


async def _indexes(db: Database, table: str) -> dict[str, Any]:
    def run(conn: Connection) -> dict[str, Any]:
        found = inspect(conn)
        out: dict[str, Any] = {}
        for ix in [*found.get_indexes(table), *found.get_unique_constraints(table)]:
            out[str(ix["name"])] = ix["column_names"]
        return out

    async with db.read("list_indexes") as conn:
        return await conn.run_sync(run)


async def test_the_key_serves_look_ups_by_its_leading_link(platform: Platform) -> None:
    have = await _indexes(platform.db, TABLE)
    assert COVERED not in have
    assert ["message_id", "recipient_id"] in have.values()  # the key's own index
    assert have["ix_ds_message_deliveries__recipient_id"] == ["recipient_id"]  # not covered
    svc = platform.service
    at = platform.clock.now()
    message = await svc.create("MESSAGES", {"uuid": "m-1", "received_at": at, "sent_at": at})
    user = await svc.create("IDENTITIES", {"name": "ann@example.org"})
    async with svc.batch() as b:
        rows = [{"message": message.id, "recipient": user.id, "sent_at": at}]
        await b.create_many("MESSAGE_DELIVERIES", rows, vouched=True)
    ds = platform.registry.get("MESSAGE_DELIVERIES")
    found = await platform.store.find_by_key(ds, {"message": message.id, "recipient": user.id})
    assert found is not None and found.values["sent_at"] == at


async def test_an_older_database_loses_the_covered_index_at_load(platform: Platform) -> None:
    async with platform.db.transaction("old_index") as txn:
        await txn.conn.execute(text(f"CREATE INDEX {COVERED} ON {TABLE} (message_id)"))
    assert COVERED in await _indexes(platform.db, TABLE)
    from carewire.datasets.registry import Registry
    from carewire.storage.datasets import SqlDatasetStore

    await Registry(SqlDatasetStore(platform.db)).load()  # as after an upgrade and restart
    have = await _indexes(platform.db, TABLE)
    assert COVERED not in have
    assert "ix_ds_message_deliveries__recipient_id" in have
