"""The PEP store (XEP-0163/XEP-0223 persistence) on SQLite and PostgreSQL, and migration 0018."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text

from carewire.core.stores import PepItem, Stores
from carewire.errors import ConflictError, NotFoundError
from carewire.security.envelope import ephemeral_keyring
from carewire.storage import Database, build_stores, migrate
from carewire.storage.reseal import count_values, seal_plaintext
from tests.storage.factories import new_account

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _item(item_id: str, n: int = 0) -> PepItem:
    return PepItem(
        item_id=item_id,
        payload=f"<p xmlns='urn:t'>{n}</p>",
        publisher="ana@example.test",
        published_at=T0,
    )


async def test_publish_replace_trim_and_read(stores: Stores) -> None:
    await stores.accounts.create(new_account("ana"))
    pep = stores.pep
    first = await pep.publish("ana", "n", _item("a"), config='{"x":1}', max_items=2)
    assert first.created and first.evicted == ()
    await pep.publish("ana", "n", _item("b"), config="ignored", max_items=2)
    done = await pep.publish("ana", "n", _item("c"), config="ignored", max_items=2)
    assert not done.created and done.config == '{"x":1}' and done.evicted == ("a",)
    # Re-publishing an id makes it the newest.
    await pep.publish("ana", "n", _item("b", 9), config="ignored", max_items=2)
    assert [i.item_id for i in await pep.items("ana", "n")] == ["b", "c"]
    assert (await pep.items("ana", "n", limit=1))[0].payload.endswith(">9</p>")
    assert [i.item_id for i in await pep.items("ana", "n", ids=["c", "zz"])] == ["c"]
    assert (await pep.items("ana", "n"))[0].published_at == T0
    assert await pep.retract("ana", "n", "c") and not await pep.retract("ana", "n", "c")
    assert not await pep.retract("ana", "nope", "c")
    gone = await pep.set_config("ana", "n", '{"x":2}', max_items=1)
    assert gone == []
    node = await pep.get_node("ana", "n")
    assert node is not None and node.config == '{"x":2}'


async def test_concurrent_first_publishes_both_land(stores: Stores) -> None:
    import asyncio

    await stores.accounts.create(new_account("ana"))
    await asyncio.gather(
        *(
            stores.pep.publish("ana", "n", _item(f"i{k}"), config="{}", max_items=9)
            for k in range(4)
        )
    )
    assert len(await stores.pep.items("ana", "n")) == 4


async def test_nodes_create_delete_and_last_items(stores: Stores) -> None:
    for login in ("ana", "bob"):
        await stores.accounts.create(new_account(login))
    pep = stores.pep
    await pep.create_node("ana", "empty", "{}")
    with pytest.raises(ConflictError):
        await pep.create_node("ana", "empty", "{}")
    with pytest.raises(NotFoundError):
        await pep.create_node("nobody", "x", "{}")
    with pytest.raises(NotFoundError):
        await pep.publish("nobody", "x", _item("a"), config="{}", max_items=1)
    with pytest.raises(NotFoundError):
        await pep.set_config("ana", "missing", "{}", max_items=1)
    for login in ("ana", "bob"):
        await pep.publish(login, "geo", _item("1"), config="{}", max_items=5)
        await pep.publish(login, "geo", _item("2"), config="{}", max_items=5)
    last = await pep.last_items(["ana", "bob", "carl"], ["geo", "empty", "other"])
    assert [(n.owner, n.node, i.item_id) for n, i in last] == [
        ("ana", "geo", "2"),
        ("bob", "geo", "2"),
    ]
    assert await pep.last_items([], ["geo"]) == []
    assert [n.owner for n in await pep.nodes_named("geo")] == ["ana", "bob"]
    assert [n.node for n in await pep.list_nodes("ana")] == ["empty", "geo"]
    await pep.purge("ana", "geo")
    assert await pep.items("ana", "geo") == []
    assert await pep.delete_node("ana", "geo") and not await pep.delete_node("ana", "geo")
    # Removing an account removes its nodes and items.
    await stores.accounts.remove("bob")
    assert await pep.nodes_named("geo") == []


async def test_migration_0018_down_and_up(db_url: str) -> None:
    """0018 down to 0017 drops only the PEP tables; up again restores them, usable."""
    await migrate.upgrade(db_url)
    await migrate.downgrade(db_url, "0017_upload")
    db = await Database.open(db_url)
    try:
        async with db.read("t") as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert "pep_nodes" not in names and "pep_items" not in names and "uploads" in names
    finally:
        await db.close()
    await migrate.upgrade(db_url)
    assert await migrate.current(db_url) == migrate.head()
    db = await Database.open(db_url)
    try:
        stores = build_stores(db, ephemeral_keyring())
        await stores.accounts.create(new_account("ana"))
        await stores.pep.publish("ana", "n", _item("a"), config="{}", max_items=1)
        assert len(await stores.pep.items("ana", "n")) == 1
    finally:
        await db.close()


async def test_payloads_are_sealed_at_rest(opened: tuple[Database, Stores]) -> None:
    db, stores = opened
    await stores.accounts.create(new_account("ana"))
    await stores.pep.publish("ana", "n", _item("a", 7), config="{}", max_items=1)
    async with db.read("raw") as conn:
        raw = (await conn.execute(text("SELECT payload FROM pep_items"))).scalar_one()
    assert raw.startswith("cw1:") and "urn:t" not in raw
    [item] = await stores.pep.items("ana", "n")
    assert item.payload == "<p xmlns='urn:t'>7</p>"
    [(_, last)] = await stores.pep.last_items(["ana"], ["n"])
    assert last.payload == item.payload


async def test_the_plaintext_sealing_pass_seals_items_written_in_clear(db_url: str) -> None:
    await migrate.upgrade(db_url)
    db = await Database.open(db_url)
    try:
        keyring = ephemeral_keyring()
        stores = build_stores(db, keyring)
        await stores.accounts.create(new_account("ana"))
        await stores.pep.publish("ana", "n", _item("a", 5), config="{}", max_items=1)
        async with db.transaction("clear") as txn:  # as if written while encryption was off
            await txn.conn.execute(
                text("UPDATE pep_items SET payload = '<p xmlns=''urn:t''>5</p>'")
            )
        assert (await count_values(db))["pep_items.payload"] == (0, 1)
        assert await seal_plaintext(db, keyring) == {"pep_items.payload": 1}
        assert (await count_values(db))["pep_items.payload"] == (1, 0)
        [item] = await stores.pep.items("ana", "n")
        assert item.payload == "<p xmlns='urn:t'>5</p>"
    finally:
        await db.close()
