"""Lockout policy and the login audit, on real SQLite stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carewire import storage
from carewire.clock import FakeClock
from carewire.core.accounts import AccountInput, AccountService
from carewire.core.auth import Admission, Authenticator, LockoutPolicy, LoginAuditor, admission
from carewire.core.stores import Account, LoginAttempt, LoginOutcome, Stores
from carewire.security.envelope import ephemeral_keyring
from carewire.storage import migrate

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = LockoutPolicy()


def account(
    failed: int = 0, last: datetime | None = None, locked: bool = False, disabled: bool = False
) -> Account:
    return Account(
        login="a",
        created_at=NOW,
        failed_logins=failed,
        last_failed_at=last,
        is_locked=locked,
        is_disabled=disabled,
    )


def test_admission_examples() -> None:
    assert admission(None, NOW, POLICY) is Admission.ALLOW
    assert admission(account(4, NOW), NOW, POLICY) is Admission.ALLOW
    assert admission(account(5, NOW - timedelta(seconds=179)), NOW, POLICY) is Admission.DELAYED
    assert admission(account(5, NOW - timedelta(minutes=3)), NOW, POLICY) is Admission.ALLOW
    assert (
        admission(account(10, NOW, locked=True), NOW + timedelta(days=1), POLICY)
        is Admission.LOCKED
    )


@given(
    failed=st.integers(0, 20), ago=st.integers(0, 600), locked=st.booleans(), disabled=st.booleans()
)
def test_admission_properties(failed: int, ago: int, locked: bool, disabled: bool) -> None:
    decision = admission(
        account(failed, NOW - timedelta(seconds=ago), locked, disabled), NOW, POLICY
    )
    if locked:
        assert decision is Admission.LOCKED
    elif disabled:
        assert decision is Admission.DISABLED
    elif failed >= 5 and ago < 180:
        assert decision is Admission.DELAYED
    else:
        assert decision is Admission.ALLOW


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[Stores]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"
    await migrate.upgrade(url)
    db = await storage.Database.open(url)
    s = storage.build_stores(db, ephemeral_keyring())
    await AccountService(s).create(AccountInput(login="nurse", password="pw"))
    yield s
    await db.close()


async def test_failures_delay_then_lock_and_success_resets(stores: Stores) -> None:
    clock = FakeClock(NOW)
    auditor = LoginAuditor(stores)
    auth = Authenticator(stores, clock, auditor)
    kw: dict[str, Any] = {"remote_ip": "127.0.0.1", "transport": "c2s", "mechanism": "PLAIN"}
    for _ in range(4):
        await auth.failed("nurse", **kw)
    assert (await auth.lookup("nurse", "SCRAM-SHA-256"))[0] is Admission.ALLOW
    await auth.succeeded("nurse", **kw)
    assert (await stores.accounts.get("nurse")).failed_logins == 0  # type: ignore[union-attr]
    for _ in range(5):
        await auth.failed("nurse", **kw)
    decision, keys = await auth.lookup("nurse", "SCRAM-SHA-256")
    assert decision is Admission.DELAYED and keys is None
    for _ in range(5):
        clock.advance(181)
        assert (await auth.lookup("nurse", "SCRAM-SHA-256"))[0] is Admission.ALLOW
        await auth.failed("nurse", **kw)
    acct = await stores.accounts.get("nurse")
    assert acct is not None and acct.is_locked and acct.failed_logins == 10
    clock.advance(86400)
    assert (await auth.lookup("nurse", "SCRAM-SHA-256"))[0] is Admission.LOCKED
    assert await AccountService(stores).unlock("nurse")
    decision, keys = await auth.lookup("nurse", "SCRAM-SHA-256")
    assert decision is Admission.ALLOW and keys is not None


async def test_refusals_do_not_count_and_unknown_users_are_audited(stores: Stores) -> None:
    clock = FakeClock(NOW)
    auditor = LoginAuditor(stores)
    auth = Authenticator(stores, clock, auditor)
    kw: dict[str, Any] = {"remote_ip": "10.1.2.3", "transport": "c2s", "mechanism": "SCRAM-SHA-1"}
    await auth.failed("nurse", outcome=LoginOutcome.DELAYED, counts=False, **kw)
    assert (await stores.accounts.get("nurse")).failed_logins == 0  # type: ignore[union-attr]
    await auth.failed("ghost", **kw)  # no such account: audited, nothing to count
    await auth.succeeded("nurse", **kw)
    await auditor.close()
    rows = await stores.login_audit.query(limit=10)
    assert [r.outcome for r in rows] == [
        LoginOutcome.SUCCESS,
        LoginOutcome.FAILURE,
        LoginOutcome.DELAYED,
    ]
    assert {r.login for r in rows} == {"nurse", "ghost"}
    assert all(r.remote_ip == "10.1.2.3" and r.at == NOW for r in rows)


def test_login_of() -> None:
    assert Authenticator.login_of("Nurse", "example.test") == "nurse"
    assert Authenticator.login_of("nurse@example.test", "example.test") == "nurse"
    assert Authenticator.login_of("nurse@other.test", "example.test") is None
    assert Authenticator.login_of("bad\u0007", "example.test") is None


async def test_a_disabled_account_gets_no_keys(stores: Stores) -> None:
    auth = Authenticator(stores, FakeClock(NOW), LoginAuditor(stores))
    assert await stores.accounts.set_disabled("nurse", True)
    assert await stores.accounts.disabled(["nurse", "ghost"]) == {"nurse"}
    decision, keys = await auth.lookup("nurse", "SCRAM-SHA-256")
    assert decision is Admission.DISABLED and keys is None
    assert not await stores.accounts.set_disabled("ghost", True)
    await stores.accounts.set_disabled("nurse", False)
    decision, keys = await auth.lookup("nurse", "SCRAM-SHA-256")
    assert decision is Admission.ALLOW and keys is not None


# -- failures are written before they are answered ------------------------------------


class _SlowLoginAudit:
    """Counts transactions; each takes a moment, so concurrent failures must share them."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.fail_next = False

    async def append_many(self, attempts: Sequence[LoginAttempt]) -> None:
        await asyncio.sleep(0.01)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("database unavailable")
        self.batches.append(len(attempts))


def _failure(n: int) -> LoginAttempt:
    return LoginAttempt(
        at=datetime(2026, 3, 1, tzinfo=UTC),
        login=f"u{n}",
        remote_ip="192.0.2.9",
        transport="c2s",
        mechanism="PLAIN",
        outcome=LoginOutcome.FAILURE,
        reason="not-authorized",
    )


async def test_record_durably_returns_once_written_and_groups_commits() -> None:
    store = _SlowLoginAudit()
    auditor = LoginAuditor(cast(Stores, SimpleNamespace(login_audit=store)))
    await asyncio.gather(*(auditor.record_durably(_failure(n)) for n in range(20)))
    assert sum(store.batches) == 20  # every one written before its call returned
    assert len(store.batches) < 20  # … in shared transactions


async def test_record_durably_survives_a_failing_write() -> None:
    store = _SlowLoginAudit()
    auditor = LoginAuditor(cast(Stores, SimpleNamespace(login_audit=store)))
    store.fail_next = True
    await auditor.record_durably(_failure(1))  # logged, not raised: the login is still answered
    assert store.batches == []
    await auditor.flush()  # kept for the background writer's retry
    assert store.batches == [1]
