"""RosterStore contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from carewire.core.stores import RosterItem, Stores, Subscription
from carewire.errors import NotFoundError
from tests.storage.factories import new_account


async def test_empty_roster_has_version_zero(stores: Stores, alice: str) -> None:
    assert await stores.roster.get_roster(alice) == (0, [])
    assert await stores.roster.get_roster("nobody") == (0, [])
    assert await stores.roster.get_item(alice, "bob@example.org") is None


async def test_set_get_replace(stores: Stores, alice: str) -> None:
    item = RosterItem(
        contact="bob@example.org",
        name="Bob",
        subscription=Subscription.TO,
        is_pending_out=True,
        is_approved=True,
        groups=("Cardiology", "Night shift", "Ünïcode"),
    )
    assert await stores.roster.set_item(alice, item) == 1
    got = await stores.roster.get_item(alice, "bob@example.org")
    assert got == item
    assert got is not None
    assert got.is_pending_out is True and got.is_approved is True
    assert isinstance(got.subscription, Subscription)

    replaced = RosterItem(contact="bob@example.org", subscription=Subscription.BOTH)
    assert await stores.roster.set_item(alice, replaced) == 2
    assert await stores.roster.get_roster(alice) == (2, [replaced])
    got = await stores.roster.get_item(alice, "bob@example.org")
    assert got is not None
    assert got.is_pending_out is False and got.groups == () and got.name is None


async def test_versions_increase_per_owner(stores: Stores, alice: str) -> None:
    await stores.accounts.create(new_account("bob"))
    versions = [
        await stores.roster.set_item(alice, RosterItem(contact=f"c{i}@example.org"))
        for i in range(5)
    ]
    assert versions == [1, 2, 3, 4, 5]
    assert await stores.roster.set_item("bob", RosterItem(contact="x@example.org")) == 1
    assert await stores.roster.remove_item(alice, "c0@example.org") == 6
    assert await stores.roster.remove_item(alice, "c0@example.org") is None
    version, items = await stores.roster.get_roster(alice)
    assert version == 6
    assert [i.contact for i in items] == [f"c{i}@example.org" for i in range(1, 5)]
    # Removing every item keeps the version going (it never returns to 0).
    for i in range(1, 5):
        await stores.roster.remove_item(alice, f"c{i}@example.org")
    assert await stores.roster.get_roster(alice) == (10, [])


async def test_remove_unknown_item_does_not_bump(stores: Stores, alice: str) -> None:
    assert await stores.roster.remove_item(alice, "nobody@example.org") is None
    assert await stores.roster.get_roster(alice) == (0, [])


async def test_set_item_unknown_owner(stores: Stores) -> None:
    with pytest.raises(NotFoundError):
        await stores.roster.set_item("nobody", RosterItem(contact="bob@example.org"))


async def test_pending_subscriptions(stores: Stores, alice: str) -> None:
    assert await stores.roster.list_pending_in(alice) == []
    await stores.roster.add_pending_in(alice, "bob@example.org", "<presence id='1'/>")
    await stores.roster.add_pending_in(alice, "carol@example.org", "<presence id='2'/>")
    await stores.roster.add_pending_in(alice, "bob@example.org", "<presence id='3'/>")
    assert await stores.roster.list_pending_in(alice) == [
        ("bob@example.org", "<presence id='3'/>"),
        ("carol@example.org", "<presence id='2'/>"),
    ]
    assert await stores.roster.remove_pending_in(alice, "bob@example.org")
    assert not await stores.roster.remove_pending_in(alice, "bob@example.org")
    assert await stores.roster.list_pending_in(alice) == [
        ("carol@example.org", "<presence id='2'/>")
    ]
    # Pending requests are not roster items and do not change the version.
    assert await stores.roster.get_roster(alice) == (0, [])


async def test_pending_unknown_owner(stores: Stores) -> None:
    with pytest.raises(NotFoundError):
        await stores.roster.add_pending_in("nobody", "bob@example.org", "<presence/>")
