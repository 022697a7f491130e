"""OfflineStore contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta, timezone

import pytest

from carewire.core.stores import Stores
from carewire.errors import NotFoundError
from tests.storage.factories import new_account, utc

NOW = utc(2024, 6, 1, 12)
DAY = timedelta(days=1)


async def test_store_and_fetch_oldest_first(stores: Stores, alice: str) -> None:
    ids = [
        await stores.offline.store(alice, "<m id='b'/>", stamp=NOW, expires_at=NOW + DAY),
        await stores.offline.store(alice, "<m id='a'/>", stamp=NOW - DAY, expires_at=NOW + DAY),
        await stores.offline.store(alice, "<m id='c'/>", stamp=NOW, expires_at=NOW + DAY),
    ]
    assert len(set(ids)) == 3
    assert all(type(i) is int for i in ids)
    messages = await stores.offline.fetch(alice, now=NOW)
    assert [m.stanza for m in messages] == ["<m id='a'/>", "<m id='b'/>", "<m id='c'/>"]
    assert [m.id for m in messages] == [ids[1], ids[0], ids[2]]
    first = messages[0]
    assert first.owner == alice
    assert (first.stamp, first.expires_at) == (NOW - DAY, NOW + DAY)
    assert first.stamp.tzinfo is not None and first.stamp.utcoffset() == timedelta(0)
    # fetch does not remove
    assert await stores.offline.count(alice) == 3


async def test_concurrent_stores_share_commits_and_fail_alone(stores: Stores, alice: str) -> None:
    """Stores arriving together are written together; an unknown owner fails only its own."""
    bob = await stores.accounts.create(new_account("bob"))
    owners = [alice, bob.login, "nobody"] * 20
    results = await asyncio.gather(
        *(
            stores.offline.store(o, f"<m id='{i}'/>", stamp=NOW, expires_at=NOW + DAY)
            for i, o in enumerate(owners)
        ),
        return_exceptions=True,
    )
    for owner, result in zip(owners, results, strict=True):
        if owner == "nobody":
            assert isinstance(result, NotFoundError)
        else:
            assert type(result) is int
    assert len({r for r in results if type(r) is int}) == 40
    assert await stores.offline.count(alice) == await stores.offline.count(bob.login) == 20
    stanzas = [m.stanza for m in await stores.offline.fetch(alice, now=NOW)]
    assert sorted(stanzas) == sorted(f"<m id='{i}'/>" for i in range(0, 60, 3))


async def test_store_unknown_owner(stores: Stores) -> None:
    with pytest.raises(NotFoundError):
        await stores.offline.store("nobody", "<m/>", stamp=NOW, expires_at=NOW + DAY)
    assert await stores.offline.owners() == set()


async def test_expired_messages_are_hidden_then_purged(stores: Stores, alice: str) -> None:
    await stores.offline.store(alice, "<old/>", stamp=NOW - DAY, expires_at=NOW)
    await stores.offline.store(alice, "<new/>", stamp=NOW, expires_at=NOW + DAY)
    assert [m.stanza for m in await stores.offline.fetch(alice, now=NOW)] == ["<new/>"]
    assert [m.stanza for m in await stores.offline.fetch(alice, now=NOW - DAY)] == [
        "<old/>",
        "<new/>",
    ]
    assert await stores.offline.count(alice) == 2
    assert await stores.offline.purge_expired(NOW) == 1
    assert await stores.offline.purge_expired(NOW) == 0
    assert await stores.offline.count(alice) == 1
    assert await stores.offline.purge_expired(NOW + 2 * DAY) == 1
    assert await stores.offline.owners() == set()


async def test_timezones_compare_as_instants(stores: Stores, alice: str) -> None:
    plus2 = timezone(timedelta(hours=2))
    # 13:00+02:00 is 11:00Z: already expired at NOW (12:00Z).
    await stores.offline.store(
        alice, "<m/>", stamp=NOW.astimezone(plus2), expires_at=utc(2024, 6, 1, 11).astimezone(plus2)
    )
    assert await stores.offline.fetch(alice, now=NOW) == []
    [msg] = await stores.offline.fetch(alice, now=NOW - DAY)
    assert msg.stamp == NOW and msg.stamp.utcoffset() == timedelta(0)


async def test_naive_datetimes_are_rejected(stores: Stores, alice: str) -> None:
    naive = NOW.replace(tzinfo=None)
    with pytest.raises(ValueError, match="naive"):
        await stores.offline.store(alice, "<m/>", stamp=naive, expires_at=NOW + DAY)
    with pytest.raises(ValueError, match="naive"):
        await stores.offline.fetch(alice, now=naive)
    assert await stores.offline.count(alice) == 0


async def test_delete_only_owners_messages(stores: Stores, alice: str) -> None:
    await stores.accounts.create(new_account("bob"))
    a1 = await stores.offline.store(alice, "<a1/>", stamp=NOW, expires_at=NOW + DAY)
    a2 = await stores.offline.store(alice, "<a2/>", stamp=NOW, expires_at=NOW + DAY)
    b1 = await stores.offline.store("bob", "<b1/>", stamp=NOW, expires_at=NOW + DAY)
    assert await stores.offline.owners() == {alice, "bob"}
    await stores.offline.delete(alice, [a1, b1, a1, 999_999])
    await stores.offline.delete(alice, [])
    assert [m.id for m in await stores.offline.fetch(alice, now=NOW)] == [a2]
    assert [m.id for m in await stores.offline.fetch("bob", now=NOW)] == [b1]
    await stores.offline.delete(alice, [a2])
    assert await stores.offline.owners() == {"bob"}
    assert await stores.offline.count(alice) == 0


async def test_delete_many(stores: Stores, alice: str) -> None:
    ids = [
        await stores.offline.store(alice, f"<m n='{i}'/>", stamp=NOW, expires_at=NOW + DAY)
        for i in range(600)
    ]
    await stores.offline.delete(alice, ids[:-1])
    assert [m.id for m in await stores.offline.fetch(alice, now=NOW)] == [ids[-1]]


async def test_ids_are_not_reused(stores: Stores, alice: str) -> None:
    first = await stores.offline.store(alice, "<m/>", stamp=NOW, expires_at=NOW + DAY)
    await stores.offline.delete(alice, [first])
    second = await stores.offline.store(alice, "<m/>", stamp=NOW, expires_at=NOW + DAY)
    assert second > first
