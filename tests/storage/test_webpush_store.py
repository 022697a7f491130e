"""The Web Push store on SQLite and PostgreSQL, and migration 0023_webpush down and up."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from carewire.core.stores import Stores
from carewire.errors import NotFoundError
from carewire.push.model import AttemptState, PushPriority
from carewire.push.records import AttemptChange, NewAttempt
from carewire.push.webpush_model import NewWebSubscription
from carewire.security.envelope import ephemeral_keyring
from carewire.storage import Database, migrate
from carewire.storage.push import SqlPushStore
from carewire.storage.tables_push import webpush_subscriptions
from carewire.storage.webpush import SqlWebPushStore
from tests.storage.factories import new_account

AT = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
KEY = b"\x04" + os.urandom(64)
AUTH = os.urandom(16)


def new_sub(login: str, endpoint: str = "https://push.example/a") -> NewWebSubscription:
    return NewWebSubscription(login=login, endpoint=endpoint, p256dh=KEY, auth=AUTH, at=AT)


async def test_subscriptions(db: Database, stores: Stores, alice: str) -> None:
    store = SqlWebPushStore(db, ephemeral_keyring())
    with pytest.raises(NotFoundError):
        await store.add(new_sub("nobody"))
    first = await store.add(new_sub(alice))
    second = await store.add(new_sub(alice, "https://push.example/b"))
    assert await store.of(alice) == [first, second]
    assert (first.endpoint, first.p256dh, first.auth) == ("https://push.example/a", KEY, AUTH)
    async with db.read("peek") as conn:
        sealed = (await conn.execute(select(webpush_subscriptions.c.subscription))).scalars().all()
    assert all(s.startswith("cw1:") and "push.example" not in s for s in sealed)
    # The same endpoint subscribed for another account moves there (a shared browser).
    await stores.accounts.create(new_account("bob"))
    moved = await store.add(new_sub("bob"))
    assert await store.of(alice) == [second] and await store.of("bob") == [moved]
    assert not await store.remove(alice, "https://push.example/a")  # bob's now
    assert await store.remove(alice, "https://push.example/b")
    await store.remove_id(moved.id)
    assert await store.of(alice) == [] and await store.of("bob") == []


async def test_subscriptions_go_with_their_account(
    db: Database, stores: Stores, alice: str
) -> None:
    store = SqlWebPushStore(db, ephemeral_keyring())
    await stores.accounts.create(new_account("bob"))
    await store.add(new_sub(alice))
    kept = await store.add(new_sub("bob", "https://push.example/b"))
    assert await stores.accounts.remove(alice)
    assert await store.of(alice) == [] and await store.of("bob") == [kept]


async def test_web_push_attempts_name_their_service(db: Database, alice: str) -> None:
    change = AttemptChange(
        state=AttemptState.SENT, status=201, reason="", provider_id="m1", tries=1, at=AT
    )
    store = SqlPushStore(db, ephemeral_keyring())
    new = NewAttempt(
        registration=None,
        registration_id=7,
        service="webpush",
        login=alice,
        device=f"{alice}/web-7",
        priority=PushPriority.URGENT,
        opaque_id="w1",
        change=change,
    )
    await store.save_attempts([new], [])
    (attempt,) = await store.attempts(login=alice)
    assert (attempt.service, attempt.registration_id, attempt.state) == (
        "webpush",
        7,
        AttemptState.SENT,
    )


async def test_webpush_migration_down_and_up(db_url: str) -> None:
    await migrate.upgrade(db_url)
    await migrate.downgrade(db_url, "0022_federation")
    assert await migrate.current(db_url) == "0022_federation"
    db = await Database.open(db_url)
    try:
        async with db.read("inspect") as conn:

            def names(c: Connection) -> set[str]:
                return set(inspect(c).get_table_names())

            tables = await conn.run_sync(names)
    finally:
        await db.close()
    assert "webpush_subscriptions" not in tables and "push_attempts" in tables
    await migrate.upgrade(db_url)
    assert await migrate.current(db_url) == migrate.head()
