"""AccountStore contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from carewire.core.stores import NewAccount, Stores
from carewire.errors import ConflictError, NotFoundError
from carewire.storage import Database
from tests.storage.factories import cred, new_account, utc


async def test_create_and_get(stores: Stores) -> None:
    before = datetime.now(UTC)
    acc = await stores.accounts.create(new_account("bob", first_name="Bob", last_name="Ross"))
    assert acc.login == "bob"
    assert (acc.first_name, acc.last_name) == ("Bob", "Ross")
    assert acc.created_at >= before - timedelta(seconds=1)
    assert acc.created_at.tzinfo is UTC
    got = await stores.accounts.get("bob")
    assert got == acc
    assert await stores.accounts.exists("bob")
    assert not await stores.accounts.exists("nobody")
    assert await stores.accounts.get("nobody") is None


async def test_defaults_are_real_booleans_and_ints(stores: Stores, alice: str) -> None:
    acc = await stores.accounts.get(alice)
    assert acc is not None
    assert acc.is_locked is False
    assert type(acc.failed_logins) is int and acc.failed_logins == 0
    assert acc.last_failed_at is None
    assert acc.first_name == acc.last_name == ""


async def test_duplicate_create_conflicts(stores: Stores, alice: str) -> None:
    with pytest.raises(ConflictError):
        await stores.accounts.create(new_account(alice))
    assert await stores.accounts.count() == 1


async def test_credentials(stores: Stores, alice: str) -> None:
    got = await stores.accounts.get_credential(alice, "SCRAM-SHA-256")
    assert got == cred("SCRAM-SHA-256", b"alice")
    assert isinstance(got.salt, bytes)
    assert await stores.accounts.get_credential(alice, "SCRAM-SHA-512") is None
    assert await stores.accounts.get_credential("nobody", "SCRAM-SHA-256") is None

    await stores.accounts.set_credentials(alice, [cred("SCRAM-SHA-256", b"new")])
    assert await stores.accounts.get_credential(alice, "SCRAM-SHA-1") is None
    assert await stores.accounts.get_credential(alice, "SCRAM-SHA-256") == cred(
        "SCRAM-SHA-256", b"new"
    )
    await stores.accounts.set_credentials(alice, [])
    assert await stores.accounts.get_credential(alice, "SCRAM-SHA-256") is None


async def test_get_for_login(stores: Stores, alice: str) -> None:
    account, got = await stores.accounts.get_for_login(alice, "SCRAM-SHA-256")
    assert account is not None and account.login == alice and account.failed_logins == 0
    assert got == cred("SCRAM-SHA-256", b"alice")
    account, got = await stores.accounts.get_for_login(alice, "SCRAM-SHA-512")
    assert account is not None and got is None
    assert await stores.accounts.get_for_login("nobody", "SCRAM-SHA-256") == (None, None)
    await stores.accounts.record_failure(alice, utc(2026, 1, 2), lock_after=10)
    account, got = await stores.accounts.get_for_login(alice, "SCRAM-SHA-1")
    assert (
        account is not None and account.failed_logins == 1 and got == cred("SCRAM-SHA-1", b"alice")
    )


async def test_existing(stores: Stores, alice: str) -> None:
    assert await stores.accounts.existing([]) == set()
    assert await stores.accounts.existing([alice, "ghost", alice]) == {alice}
    await stores.accounts.create_many(new_account(f"u{i:04d}") for i in range(1200))
    wanted = [f"u{i:04d}" for i in range(0, 1300, 3)]
    assert await stores.accounts.existing(wanted) == {w for w in wanted if int(w[1:]) < 1200}


async def test_set_credentials_unknown_login(stores: Stores) -> None:
    with pytest.raises(NotFoundError):
        await stores.accounts.set_credentials("nobody", [cred()])


async def test_list_and_count(stores: Stores) -> None:
    assert await stores.accounts.list() == []
    assert await stores.accounts.count() == 0
    for login in ["carol", "Zed", "alice", "bob", "émile"]:
        await stores.accounts.create(new_account(login))
    logins = [a.login for a in await stores.accounts.list()]
    assert logins == sorted(logins) == ["Zed", "alice", "bob", "carol", "émile"]
    assert [a.login for a in await stores.accounts.list(offset=1, limit=2)] == ["alice", "bob"]
    assert [a.login for a in await stores.accounts.list(offset=3)] == ["carol", "émile"]
    assert [a.login for a in await stores.accounts.list(limit=1)] == ["Zed"]
    assert await stores.accounts.count() == 5


async def test_remove(stores: Stores, alice: str) -> None:
    assert await stores.accounts.remove(alice)
    assert not await stores.accounts.remove(alice)
    assert await stores.accounts.get(alice) is None
    assert await stores.accounts.get_credential(alice, "SCRAM-SHA-1") is None
    # The login can be created again from scratch.
    acc = await stores.accounts.create(new_account(alice))
    assert acc.failed_logins == 0


async def test_record_failure_locks_at_threshold(stores: Stores, alice: str) -> None:
    at = utc(2024, 5, 1, 12)
    for n in range(1, 3):
        acc = await stores.accounts.record_failure(alice, at + timedelta(seconds=n), lock_after=3)
        assert (acc.failed_logins, acc.is_locked) == (n, False)
        assert acc.last_failed_at == at + timedelta(seconds=n)
    acc = await stores.accounts.record_failure(alice, at, lock_after=3)
    assert (acc.failed_logins, acc.is_locked) == (3, True)
    assert acc.is_locked is True
    assert await stores.accounts.get(alice) == acc
    # Still counting while locked, and stays locked.
    acc = await stores.accounts.record_failure(alice, at, lock_after=3)
    assert (acc.failed_logins, acc.is_locked) == (4, True)


async def test_record_failure_unknown_login(stores: Stores) -> None:
    with pytest.raises(NotFoundError):
        await stores.accounts.record_failure("nobody", utc(2024, 1, 1), lock_after=10)


async def test_reset_failures_keeps_lock(stores: Stores, alice: str) -> None:
    at = utc(2024, 5, 1)
    await stores.accounts.record_failure(alice, at, lock_after=1)
    await stores.accounts.reset_failures(alice)
    acc = await stores.accounts.get(alice)
    assert acc is not None
    assert (acc.failed_logins, acc.is_locked, acc.last_failed_at) == (0, True, at)
    await stores.accounts.reset_failures("nobody")  # unknown: nothing to do


async def test_reset_failures_does_not_write_when_zero(
    db: Database, stores: Stores, alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    names: list[str] = []
    original = db.transaction

    def spy(name: str):  # type: ignore[no-untyped-def]
        names.append(name)
        return original(name)

    monkeypatch.setattr(db, "transaction", spy)
    await stores.accounts.reset_failures(alice)
    assert names == []
    await stores.accounts.record_failure(alice, utc(2024, 1, 1), lock_after=10)
    await stores.accounts.reset_failures(alice)
    assert names == ["record_login_failure", "reset_login_failures"]


async def test_unlock(stores: Stores, alice: str) -> None:
    await stores.accounts.record_failure(alice, utc(2024, 1, 1), lock_after=1)
    assert await stores.accounts.unlock(alice)
    acc = await stores.accounts.get(alice)
    assert acc is not None
    assert (acc.failed_logins, acc.is_locked) == (0, False)
    assert not await stores.accounts.unlock("nobody")


async def test_create_many_skips_existing(stores: Stores, alice: str) -> None:
    batch = [new_account("bob"), new_account(alice), new_account("carol"), new_account("bob")]
    created, skipped = await stores.accounts.create_many(iter(batch))
    assert (created, skipped) == (2, [alice, "bob"])
    assert await stores.accounts.count() == 3
    assert await stores.accounts.get_credential("carol", "SCRAM-SHA-1") == cred(
        "SCRAM-SHA-1", b"carol"
    )
    # alice's credentials were not touched by the skipped entry
    assert await stores.accounts.get_credential(alice, "SCRAM-SHA-1") == cred(
        "SCRAM-SHA-1", b"alice"
    )
    assert await stores.accounts.create_many([]) == (0, [])


async def test_create_many_5000(stores: Stores) -> None:
    batch = [
        NewAccount(login=f"user{i:05d}", credentials=[cred(seed=b"%d" % i)], first_name=f"U{i}")
        for i in range(5000)
    ]
    started = time.perf_counter()
    created, skipped = await stores.accounts.create_many(batch)
    elapsed = time.perf_counter() - started
    assert (created, skipped) == (5000, [])
    assert elapsed < 30, elapsed
    assert await stores.accounts.count() == 5000
    acc = await stores.accounts.get("user04999")
    assert acc is not None and acc.first_name == "U4999"
    assert await stores.accounts.get_credential("user01234", "SCRAM-SHA-256") == cred(seed=b"1234")
    created, skipped = await stores.accounts.create_many([*batch[:10], new_account("new")])
    assert created == 1
    assert skipped == [a.login for a in batch[:10]]
