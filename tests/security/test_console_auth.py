"""Console accounts and their store on SQLite and PostgreSQL: passwords, lockout, sessions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import insert, select

from carewire.errors import ConflictError, NotFoundError, ValidationError
from carewire.security.console_auth import (
    ResetLinkError,
    Role,
    SessionExpired,
    SignInError,
    check_password,
    digest,
)
from carewire.security.console_model import GENERIC_FAILURE
from carewire.storage.tables import console_users, password_resets
from tests.security.console_accounts import CONFIG, GOOD, Opened

TIMEOUT = timedelta(minutes=20)


async def stored_hash(o: Opened, username: str) -> str:
    query = select(console_users.c.password_hash).where(console_users.c.username == username)
    async with o.db.read("test_hash") as conn:
        return str((await conn.execute(query)).scalar_one())


async def test_passwords_are_argon2id_hashes(opened: Opened) -> None:
    user, generated = await opened.accounts.create_user("alice", Role.ORG_ADMIN, password=GOOD)
    assert generated is None and not user.must_change_password
    stored = await stored_hash(opened, "alice")
    assert stored.startswith("$argon2id$") and GOOD not in stored


def test_password_policy() -> None:
    with pytest.raises(ValidationError, match="at least 12 characters"):
        check_password("x" * 11)
    check_password("x" * 12)
    with pytest.raises(ValidationError):
        check_password("x" * 1025)


async def test_create_user_checks_and_conflicts(opened: Opened) -> None:
    a = opened.accounts
    with pytest.raises(ValidationError, match="12 characters"):
        await a.create_user("bob", Role.AUDITOR, password="short")
    with pytest.raises(ValidationError, match="username"):
        await a.create_user("-bad name", Role.AUDITOR, password=GOOD)
    with pytest.raises(ValidationError, match="e-mail"):
        await a.create_user("bob", Role.AUDITOR, email="not-an-address", password=GOOD)
    bob, _ = await a.create_user("Bob", Role.AUDITOR, email="Bob@Example.org", password=GOOD)
    assert (bob.username, bob.email, bob.role) == ("bob", "bob@example.org", Role.AUDITOR)
    with pytest.raises(ConflictError):
        await a.create_user("bob", Role.AUDITOR, password=GOOD)
    with pytest.raises(ConflictError):
        await a.create_user("robert", Role.AUDITOR, email="bob@example.org", password=GOOD)
    assert [u.username for u in await a.list_users()] == ["bob"]


async def test_generated_password_must_be_changed(opened: Opened) -> None:
    user, password = await opened.accounts.create_user("carol", Role.AUDITOR)
    assert password is not None and len(password) >= 12 and user.must_change_password
    session, _ = await opened.accounts.sign_in("carol", password)
    assert session.user.must_change_password
    await opened.accounts.change_password(session, password, GOOD)
    session, _ = await opened.accounts.sign_in("carol", GOOD)
    assert not session.user.must_change_password


async def test_first_admin_once(opened: Opened) -> None:
    password = await opened.accounts.ensure_first_admin("carewire.test")
    assert password is not None
    assert await opened.accounts.ensure_first_admin("carewire.test") is None
    [admin] = await opened.accounts.list_users()
    assert (admin.username, admin.role, admin.email) == (
        "admin",
        Role.SYSTEM_ADMIN,
        "admin@carewire.test",
    )
    assert admin.must_change_password
    session, _ = await opened.accounts.sign_in("admin", password)
    assert session.user.username == "admin"
    create = [e for e in await opened.audit() if e["action"] == "console.user.create"]
    assert create[0]["actor"] == "system" and create[0]["target"] == "admin"


async def test_sign_in_by_username_or_email(opened: Opened) -> None:
    await opened.accounts.create_user("dave", Role.ORG_ADMIN, email="dave@h.example", password=GOOD)
    for login in ("dave", "DAVE ", "dave@h.example", "Dave@H.Example"):
        session, token = await opened.accounts.sign_in(login, GOOD, remote_ip="192.0.2.1")
        assert session.user.username == "dave" and len(token) >= 43
        assert session.token_hash != token and len(session.csrf_token) >= 43
    entries = await opened.audit()
    logins = [e for e in entries if e["action"] == "login"]
    assert len(logins) == 4
    assert all(e["outcome"] == "success" and e["actor"] == "console:dave" for e in logins)
    assert logins[0]["remote_ip"] == "192.0.2.1" and logins[0]["channel"] == "console"


async def test_failures_are_generic_and_audited(opened: Opened) -> None:
    await opened.accounts.create_user("erin", Role.ORG_ADMIN, password=GOOD)
    with pytest.raises(SignInError) as wrong:
        await opened.accounts.sign_in("erin", "wrong password!")
    with pytest.raises(SignInError) as unknown:
        await opened.accounts.sign_in("nobody", GOOD)
    assert str(wrong.value) == str(unknown.value) == GENERIC_FAILURE
    failures = [e for e in await opened.audit() if e["outcome"] == "failure"]
    assert [f["details"]["reason"] for f in failures] == ["wrong-password", "unknown-user"]
    assert failures[0]["details"]["failed_logins"] == 1


async def test_lockout_sequence(opened: Opened) -> None:
    """5 failures → a 3-minute wait between attempts; 10 → locked until unlocked."""
    a, clock = opened.accounts, opened.clock
    await a.create_user("frank", Role.ORG_ADMIN, password=GOOD)

    async def reason(password: str) -> str:
        with pytest.raises(SignInError) as exc:
            await a.sign_in("frank", password)
        return exc.value.reason

    for _ in range(5):
        assert await reason("wrong password!") == "wrong-password"
    # During the wait even the right password is refused, and the refusal does not count.
    assert await reason(GOOD) == "delayed"
    clock.advance(179)
    assert await reason(GOOD) == "delayed"
    clock.advance(1)
    for _ in range(4):  # failures 6 to 9, each after the wait
        assert await reason("wrong password!") == "wrong-password"
        assert await reason("wrong password!") == "delayed"
        clock.advance(180)
    [user] = await a.list_users()
    assert user.failed_logins == 9 and not user.is_locked
    assert await reason("wrong password!") == "wrong-password"  # the 10th
    [user] = await a.list_users()
    assert user.failed_logins == 10 and user.is_locked
    clock.advance(3600)
    assert await reason(GOOD) == "locked"
    with pytest.raises(NotFoundError):
        await a.unlock("nobody")
    await a.unlock("frank")
    session, _ = await a.sign_in("frank", GOOD)
    assert session.user.failed_logins == 0
    assert any(e["action"] == "console.user.unlock" for e in await opened.audit())


async def test_success_clears_failures(opened: Opened) -> None:
    await opened.accounts.create_user("gina", Role.ORG_ADMIN, password=GOOD)
    for _ in range(4):
        with pytest.raises(SignInError):
            await opened.accounts.sign_in("gina", "wrong password!")
    await opened.accounts.sign_in("gina", GOOD)
    [user] = await opened.accounts.list_users()
    assert user.failed_logins == 0


async def test_rehash_when_the_parameters_change(db_url: str) -> None:
    from tests.security.console_accounts import open_accounts

    o = await open_accounts(db_url, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    try:
        await o.accounts.create_user("hank", Role.AUDITOR, password=GOOD)
        before = await stored_hash(o, "hank")
        stronger = await open_accounts(
            db_url, PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
        )
        try:
            await stronger.accounts.sign_in("hank", GOOD)
            after = await stored_hash(o, "hank")
            assert after != before and after.startswith("$argon2id$v=19$m=2048,t=2")
        finally:
            await stronger.db.close()
    finally:
        await o.db.close()


async def test_sessions_expire_after_the_idle_timeout(opened: Opened) -> None:
    a, clock = opened.accounts, opened.clock
    await a.create_user("ivy", Role.AUDITOR, password=GOOD)
    _, token = await a.sign_in("ivy", GOOD)
    assert await a.session("not-a-token", timeout=TIMEOUT) is None
    clock.advance(19 * 60)
    assert await a.session(token, timeout=TIMEOUT) is not None  # activity: the clock restarts
    clock.advance(20 * 60)
    assert await a.session(token, timeout=TIMEOUT) is not None  # exactly 20 minutes: still on
    clock.advance(20 * 60 + 1)
    with pytest.raises(SessionExpired):
        await a.session(token, timeout=TIMEOUT)
    assert await a.session(token, timeout=TIMEOUT) is None  # it was ended
    [logout] = [e for e in await opened.audit() if e["action"] == "logout"]
    assert logout["details"]["reason"] == "inactivity" and logout["target"] == "ivy"


async def test_sign_out_ends_the_session(opened: Opened) -> None:
    a = opened.accounts
    await a.create_user("jack", Role.AUDITOR, password=GOOD)
    session, token = await a.sign_in("jack", GOOD)
    _, other = await a.sign_in("jack", GOOD)
    await a.sign_out(session)
    assert await a.session(token, timeout=TIMEOUT) is None
    assert await a.session(other, timeout=TIMEOUT) is not None
    assert [e["action"] for e in await opened.audit()][-1] == "logout"


async def test_password_change_ends_the_other_sessions(opened: Opened) -> None:
    a = opened.accounts
    await a.create_user("kate", Role.AUDITOR, password=GOOD)
    session, token = await a.sign_in("kate", GOOD)
    _, other = await a.sign_in("kate", GOOD)
    with pytest.raises(ValidationError, match="current password"):
        await a.change_password(session, "not my password", "a new long password")
    with pytest.raises(ValidationError, match="differ"):
        await a.change_password(session, GOOD, GOOD)
    await a.change_password(session, GOOD, "a new long password")
    assert await a.session(token, timeout=TIMEOUT) is not None
    assert await a.session(other, timeout=TIMEOUT) is None


async def test_reset_link_single_use_and_ends_sessions(opened: Opened) -> None:
    a = opened.accounts
    await a.create_user("liam", Role.ORG_ADMIN, email="liam@h.example", password=GOOD)
    _, token = await a.sign_in("liam", GOOD)
    assert await a.request_reset("nobody", config=CONFIG) is None
    reset = await a.request_reset("liam@h.example", config=CONFIG, remote_ip="192.0.2.7")
    assert reset is not None and reset.email == "liam@h.example"
    assert reset.url.startswith("https://console.carewire.test:8443/reset/")
    assert reset.expires_at == opened.clock.now() + timedelta(minutes=30)
    link = reset.url.rsplit("/", 1)[1]
    await a.check_reset(link)
    with pytest.raises(ValidationError):
        await a.complete_reset(link, "too short")
    user = await a.complete_reset(link, "a brand new password")  # still usable after that
    assert user.username == "liam"
    with pytest.raises(ResetLinkError):
        await a.check_reset(link)
    with pytest.raises(ResetLinkError):
        await a.complete_reset(link, "another new password")
    assert await a.session(token, timeout=TIMEOUT) is None
    with pytest.raises(SignInError):
        await a.sign_in("liam", GOOD)
    await a.sign_in("liam", "a brand new password")
    actions = [(e["action"], e["outcome"]) for e in await opened.audit()]
    assert ("password.reset.request", "failure") in actions
    assert ("password.reset.request", "success") in actions
    assert ("password.reset.complete", "success") in actions


async def test_a_new_reset_link_voids_the_older_ones(opened: Opened) -> None:
    a = opened.accounts
    await a.create_user("noa", Role.ORG_ADMIN, email="noa@h.example", password=GOOD)
    await a.create_user("otto", Role.ORG_ADMIN, email="otto@h.example", password=GOOD)
    links = []
    for login in ("noa", "noa", "otto", "noa"):
        reset = await a.request_reset(login, config=CONFIG)
        assert reset is not None
        links.append(reset.url.rsplit("/", 1)[1])
        opened.clock.advance(60)
    first, second, others, latest = links
    for old in (first, second):
        with pytest.raises(ResetLinkError):
            await a.check_reset(old)
        with pytest.raises(ResetLinkError):
            await a.complete_reset(old, "a brand new password")
    await a.check_reset(others)  # another user's link is not touched
    await a.complete_reset(latest, "a brand new password")
    await a.sign_in("noa", "a brand new password")


async def test_completing_a_reset_voids_every_other_link(opened: Opened) -> None:
    a = opened.accounts
    await a.create_user("pia", Role.ORG_ADMIN, email="pia@h.example", password=GOOD)
    reset = await a.request_reset("pia", config=CONFIG)
    assert reset is not None
    link = reset.url.rsplit("/", 1)[1]
    # A second live link (as a request racing the first could leave) is voided too.
    async with opened.db.transaction("test_link") as txn:
        await txn.conn.execute(
            insert(password_resets).values(
                token_hash=digest("x" * 43),
                user_id=reset.user.id,
                created_at=opened.clock.now(),
                expires_at=opened.clock.now() + timedelta(minutes=30),
            )
        )
    await a.check_reset("x" * 43)
    await a.complete_reset(link, "a brand new password")
    with pytest.raises(ResetLinkError):
        await a.check_reset("x" * 43)


async def test_reset_link_expires(opened: Opened) -> None:
    a = opened.accounts
    await a.create_user("mia", Role.ORG_ADMIN, email="mia@h.example", password=GOOD)
    reset = await a.request_reset("mia", config=CONFIG)
    assert reset is not None
    link = reset.url.rsplit("/", 1)[1]
    opened.clock.advance(30 * 60)
    with pytest.raises(ResetLinkError):
        await a.check_reset(link)
    with pytest.raises(ResetLinkError):
        await a.complete_reset(link, "a brand new password")
    with pytest.raises(ResetLinkError):
        await a.check_reset("unknown")


async def test_no_reset_without_an_address(opened: Opened) -> None:
    await opened.accounts.create_user("ned", Role.ORG_ADMIN, password=GOOD)
    assert await opened.accounts.request_reset("ned", config=CONFIG) is None
    [entry] = [e for e in await opened.audit() if e["action"] == "password.reset.request"]
    assert entry["details"]["reason"] == "no-email"


async def test_cli_passwd_gives_a_one_time_password(opened: Opened) -> None:
    a = opened.accounts
    await a.create_user("olga", Role.ORG_ADMIN, password=GOOD)
    _, token = await a.sign_in("olga", GOOD)
    password = await a.reset_password("olga")
    assert await a.session(token, timeout=TIMEOUT) is None
    session, _ = await a.sign_in("olga", password)
    assert session.user.must_change_password
    with pytest.raises(NotFoundError):
        await a.reset_password("nobody")


async def test_the_platform_opens_console_accounts(db_url: str) -> None:
    from carewire.assembly import Options, assemble

    platform = await assemble(Options(url=db_url))
    try:
        password = await platform.console.ensure_first_admin("carewire.test")
        assert password is not None
        session, _ = await platform.console.sign_in("admin", password)
        assert session.user.role is Role.SYSTEM_ADMIN
    finally:
        await platform.close()
