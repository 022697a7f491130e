"""The push store on SQLite and PostgreSQL, and migration 0016_push down and up."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from carewire.core.stores import Stores
from carewire.errors import NotFoundError
from carewire.push.model import AttemptState, PushPriority, PushService, RegistrationState
from carewire.push.records import (
    AttemptChange,
    NewAttempt,
    NewRegistration,
    PushEnable,
    Registration,
)
from carewire.security.envelope import ephemeral_keyring
from carewire.storage import Database, migrate
from carewire.storage.push import SqlPushStore

AT = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
TOKEN = "ab" * 32


def new_reg(login: str = "alice", node: str = "n1") -> NewRegistration:
    return NewRegistration(
        node=node,
        secret_hash="f" * 64,
        login=login,
        device=f"{login}/phone",
        service=PushService.APNS,
        token=TOKEN,
        topic="",
        at=AT,
    )


QUEUED = AttemptChange(
    state=AttemptState.QUEUED,
    status=None,
    reason="",
    provider_id="",
    tries=0,
    at=datetime(2026, 12, 6, 8, 0, tzinfo=UTC),
)


async def test_registrations_enables_attempts(db: Database, stores: Stores, alice: str) -> None:
    store = SqlPushStore(db, ephemeral_keyring())
    with pytest.raises(NotFoundError):
        await store.add_registration(new_reg("nobody"))
    reg = await store.add_registration(new_reg())
    found = await store.registration("n1")
    assert found is not None and found[0] == reg and found[1] == "f" * 64
    assert await store.registration("n2") is None
    async with db.read("raw") as conn:  # the token is sealed at rest
        raw = (await conn.exec_driver_sql("SELECT token FROM push_registrations")).scalar_one()
    assert TOKEN not in raw
    await store.mark_registration(reg.id, RegistrationState.INVALID, "Unregistered", AT)
    (marked,) = await store.registrations_of("alice")
    assert marked.state is RegistrationState.INVALID and marked.reason == "Unregistered"

    enable = PushEnable(
        login=alice, resource="phone", jid="push.x", node="n1", secret="s1", enabled_at=AT
    )
    await store.add_enable(enable)
    await store.add_enable(replace(enable, secret="s2"))  # the last one wins
    (kept,) = await store.enables()
    assert kept.secret == "s2" and kept.enabled_at == AT
    assert await store.remove_enables(alice, "push.x", "other") == 0
    assert await store.remove_enables(alice, "push.x", None) == 1

    def attempt(key: str, reg: Registration | None, priority: PushPriority) -> NewAttempt:
        return NewAttempt(
            registration=reg,
            login=alice,
            device="alice/phone",
            priority=priority,
            opaque_id=key,
            change=QUEUED,
        )

    later = AT + timedelta(seconds=3)
    change = AttemptChange(
        state=AttemptState.SENT, status=200, reason="", provider_id="id-1", tries=2, at=later
    )
    # An insert and a change of it in one batch: the insert goes first.
    await store.save_attempts([attempt("o1", reg, PushPriority.URGENT)], [("o1", change)])
    await store.save_attempts([attempt("o2", None, PushPriority.NORMAL)], [])
    newest, oldest = await store.attempts(login=alice)
    assert (newest.opaque_id, oldest.opaque_id) == ("o2", "o1") and newest.id > oldest.id
    assert (oldest.state, oldest.status, oldest.tries, oldest.provider_id) == (
        AttemptState.SENT,
        200,
        2,
        "id-1",
    )
    assert oldest.updated_at == later and oldest.priority is PushPriority.URGENT
    assert [a.opaque_id for a in await store.attempts(state=AttemptState.QUEUED)] == ["o2"]
    assert await store.delete_registration(alice, "n1") is True
    assert await store.delete_registration(alice, "n1") is False
    await store.add_registration(new_reg(node="n3"))
    await store.add_enable(enable)
    assert await stores.accounts.remove(alice)  # registrations and enables go with the account
    assert await store.registrations_of(alice) == [] and await store.enables() == []
    assert len(await store.attempts(login=alice)) == 2  # attempts are kept, like deliveries


async def test_push_migration_down_and_up(db_url: str) -> None:
    await migrate.upgrade(db_url, "0015_phi")
    await migrate.upgrade(db_url)
    db = await Database.open(db_url)
    try:
        new = NewAttempt(
            registration=None,
            login="a",
            device="a/b",
            priority=PushPriority.NORMAL,
            opaque_id="o",
            change=QUEUED,
        )
        await SqlPushStore(db, ephemeral_keyring()).save_attempts([new], [])
    finally:
        await db.close()
    await migrate.downgrade(db_url, "0015_phi")
    assert await migrate.current(db_url) == "0015_phi"
    db = await Database.open(db_url)
    try:
        async with db.read("inspect") as conn:

            def names(c: Connection) -> set[str]:
                return set(inspect(c).get_table_names())

            tables = await conn.run_sync(names)
    finally:
        await db.close()
    assert not {"push_registrations", "push_enables", "push_attempts"} & tables
    await migrate.upgrade(db_url)
    assert await migrate.current(db_url) == migrate.head()
