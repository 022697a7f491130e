"""BusyStore contract (busy periods and release requests), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from carewire.core.stores import BusyKind, BusyPeriod, Stores
from carewire.errors import NotFoundError
from carewire.storage.database import Database
from carewire.storage.tables import busy_periods
from tests.storage.factories import new_account, utc

NOW = utc(2026, 3, 1, 8)


def _dnd(login: str, minutes: int, note: str = "") -> BusyPeriod:
    return BusyPeriod(
        login=login, kind=BusyKind.DND, until=NOW + timedelta(minutes=minutes), note=note
    )


def _alert(login: str, ref: str, minutes: int) -> BusyPeriod:
    return BusyPeriod(
        login=login, kind=BusyKind.ALERT, ref=ref, until=NOW + timedelta(minutes=minutes)
    )


async def test_put_replaces_by_login_kind_and_ref(stores: Stores, alice: str) -> None:
    await stores.busy.put([_dnd(alice, 30, "procedure"), _alert(alice, "a1", 10)])
    await stores.busy.put([_dnd(alice, 60, "longer")])
    got = await stores.busy.of(alice)
    assert got == [_alert(alice, "a1", 10), _dnd(alice, 60, "longer")]
    assert got[0].until.utcoffset() == timedelta(0)
    await stores.busy.put([])


async def test_remove_by_alert_for_everyone_or_one(stores: Stores, alice: str) -> None:
    await stores.accounts.create(new_account("bob"))
    await stores.busy.put([_alert(alice, "a1", 10), _alert("bob", "a1", 10), _dnd("bob", 5)])
    await stores.busy.remove(kind=BusyKind.ALERT, ref="a1", login=alice)
    assert [p.login for p in await stores.busy.all()] == ["bob", "bob"]
    await stores.busy.remove(kind=BusyKind.ALERT, ref="a1")
    assert await stores.busy.all() == [_dnd("bob", 5)]
    await stores.busy.remove(kind=BusyKind.DND, login="bob")
    assert await stores.busy.all() == []


async def test_ended_periods_go_but_requests_stay(stores: Stores, alice: str) -> None:
    request = BusyPeriod(login=alice, kind=BusyKind.RELEASE, until=NOW - timedelta(hours=1))
    await stores.busy.put([_dnd(alice, -1), _alert(alice, "a1", 0), _alert(alice, "a2", 5)])
    await stores.busy.put([request])
    assert await stores.busy.remove_ended(NOW) == 2
    assert await stores.busy.of(alice) == [request, _alert(alice, "a2", 5)]
    assert await stores.busy.take(BusyKind.RELEASE) == [request]
    assert await stores.busy.take(BusyKind.RELEASE) == []


async def test_unknown_login_and_account_removal(stores: Stores, alice: str) -> None:
    with pytest.raises(NotFoundError):
        await stores.busy.put([_dnd("nobody", 5)])
    await stores.busy.put([_dnd(alice, 5)])
    await stores.accounts.remove(alice)
    assert await stores.busy.all() == []


async def test_kinds_are_stored_as_their_names(stores: Stores, db: Database, alice: str) -> None:
    """Rows written before the kinds became an enum read back the same (and vice versa)."""
    await stores.busy.put([_dnd(alice, 5), _alert(alice, "a1", 5)])
    await stores.busy.put([BusyPeriod(login=alice, kind=BusyKind.RELEASE, until=NOW)])
    async with db.read("raw_busy_kinds") as conn:
        raw = {row[0] for row in await conn.execute(select(busy_periods.c.kind))}
    assert raw == {"dnd", "alert", "release"}
    assert {p.kind for p in await stores.busy.all()} == set(BusyKind)
    assert all(type(p.kind) is BusyKind for p in await stores.busy.all())
