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
from carewire.security.throttle import AuthThrottle, ThrottlePolicy
from carewire.storage import migrate
from tests.templates import prefill

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
    await migrate.upgrade(await prefill(url))
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


# -- hardening: unknown logins, the per-address throttle, enrolled devices, lock notices ----


async def _fail(auth: Authenticator, login: str, ip: str, times: int) -> None:
    for _ in range(times):
        decision, _ = await auth.lookup(login, "SCRAM-SHA-256", remote_ip=ip)
        if decision is Admission.ALLOW:
            await auth.failed(login, remote_ip=ip, transport="c2s", mechanism="SCRAM-SHA-256")


async def test_unknown_logins_answer_like_known_ones(stores: Stores) -> None:
    clock = FakeClock(NOW)
    auth = Authenticator(stores, clock, LoginAuditor(stores))
    seen: dict[str, list[Admission]] = {"nurse": [], "nobody": []}
    for _ in range(12):
        for login, decisions in seen.items():
            decision, _ = await auth.lookup(login, "SCRAM-SHA-256", remote_ip="10.0.0.1")
            decisions.append(decision)
            if decision is Admission.ALLOW:
                await auth.failed(
                    login, remote_ip="10.0.0.1", transport="c2s", mechanism="SCRAM-SHA-256"
                )
        clock.advance(181)  # past each delay, so the failures go on counting
    assert seen["nobody"] == seen["nurse"]
    assert seen["nurse"][-1] is Admission.LOCKED and Admission.ALLOW in seen["nurse"]
    # Inside the delay, both are delayed alike.
    auth2 = Authenticator(stores, FakeClock(NOW), LoginAuditor(stores))
    await stores.accounts.unlock("nurse")
    await _fail(auth2, "nurse", "10.0.0.2", 5)
    await _fail(auth2, "ghost", "10.0.0.2", 5)
    for login in ("nurse", "ghost"):
        assert (await auth2.lookup(login, "SCRAM-SHA-256"))[0] is Admission.DELAYED


async def test_a_throttled_address_is_refused_before_any_lookup(stores: Stores) -> None:
    clock = FakeClock(NOW)
    throttle = AuthThrottle(
        clock, policy=ThrottlePolicy(max_failures=4, window=timedelta(minutes=5))
    )
    auth = Authenticator(stores, clock, LoginAuditor(stores), throttle=throttle)
    for n in range(4):  # four different accounts guessed from one address
        await _fail(auth, f"user{n}", "203.0.113.9", 1)
    decision, keys = await auth.lookup("nurse", "SCRAM-SHA-256", remote_ip="203.0.113.9")
    assert decision is Admission.THROTTLED and keys is None
    await auth.throttled("nurse", remote_ip="203.0.113.9", transport="c2s", mechanism="PLAIN")
    assert auth.auditor.outcomes[("PLAIN", "throttled", "throttled")] == 1  # /metrics sees it
    # Nothing counted against the account; another address is not affected.
    acct = await stores.accounts.get("nurse")
    assert acct is not None and acct.failed_logins == 0
    assert (await auth.lookup("nurse", "SCRAM-SHA-256", remote_ip="198.51.100.1"))[0] is (
        Admission.ALLOW
    )
    clock.advance(301)
    assert (await auth.lookup("nurse", "SCRAM-SHA-256", remote_ip="203.0.113.9"))[0] is (
        Admission.ALLOW
    )


async def test_a_locked_account_admits_its_enrolled_device(stores: Stores) -> None:
    clock = FakeClock(NOW)
    devices = {("nurse", "10.1.1.7")}
    locks: list[tuple[str, str, str, int]] = []

    async def enrolled(login: str, ip: str) -> bool:
        return (login, ip) in devices

    async def on_locked(login: str, where: str, ip: str, failures: int) -> None:
        locks.append((login, where, ip, failures))

    auth = Authenticator(
        stores, clock, LoginAuditor(stores), enrolled=enrolled, on_locked=on_locked
    )
    for _ in range(10):  # an attacker elsewhere locks the account
        await _fail(auth, "nurse", "203.0.113.9", 1)
        clock.advance(181)
    assert locks == [("nurse", "c2s", "203.0.113.9", 10)]
    assert (await auth.lookup("nurse", "SCRAM-SHA-256", remote_ip="203.0.113.9"))[0] is (
        Admission.LOCKED
    )
    decision, keys = await auth.lookup("nurse", "SCRAM-SHA-256", remote_ip="10.1.1.7")
    assert decision is Admission.ALLOW and keys is not None
    # Failures from the device's own address take the exception away.
    await auth.failed("nurse", remote_ip="10.1.1.7", transport="c2s", mechanism="PLAIN")
    assert (await auth.lookup("nurse", "SCRAM-SHA-256", remote_ip="10.1.1.7"))[0] is (
        Admission.LOCKED
    )
    # An address that is no device of the user's gets no exception.
    assert (await auth.lookup("nurse", "SCRAM-SHA-256", remote_ip="10.1.1.8"))[0] is (
        Admission.LOCKED
    )
