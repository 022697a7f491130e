"""HeldStore contract (messages held for busy users), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from carewire.core.stores import Stores
from carewire.errors import NotFoundError
from tests.storage.factories import new_account, utc

NOW = utc(2026, 3, 1, 8)


async def test_hold_fetch_in_order_and_delete(stores: Stores, alice: str) -> None:
    later = await stores.held.hold(alice, "<m id='b'/>", stamp=NOW, reason="dnd")
    first = await stores.held.hold(
        alice, "<m id='a'/>", stamp=NOW - timedelta(minutes=1), reason="urgent-alert"
    )
    held = await stores.held.fetch(alice)
    assert [(m.id, m.stanza, m.reason) for m in held] == [
        (first, "<m id='a'/>", "urgent-alert"),
        (later, "<m id='b'/>", "dnd"),
    ]
    assert held[0].stamp == NOW - timedelta(minutes=1)
    assert held[0].stamp.utcoffset() == timedelta(0)
    assert await stores.held.owners() == {alice: 2}
    await stores.held.delete(alice, [first])
    await stores.held.delete(alice, [])
    assert [m.id for m in await stores.held.fetch(alice)] == [later]


async def test_unknown_owner_and_other_owners_ids(stores: Stores, alice: str) -> None:
    with pytest.raises(NotFoundError):
        await stores.held.hold("nobody", "<m/>", stamp=NOW, reason="dnd")
    await stores.accounts.create(new_account("bob"))
    bobs = await stores.held.hold("bob", "<m/>", stamp=NOW, reason="dnd")
    await stores.held.delete(alice, [bobs])  # not alice's: left alone
    assert await stores.held.owners() == {"bob": 1}


async def test_held_messages_go_with_the_account(stores: Stores, alice: str) -> None:
    await stores.held.hold(alice, "<m/>", stamp=NOW, reason="dnd")
    await stores.accounts.remove(alice)
    assert await stores.held.owners() == {}
