"""Console sign-in by LDAP: a synced administrator's console password is their directory password.

Against the real slapd: the right directory password opens a session (a
pending password change is dropped: there is none to change here), a wrong
one counts toward the console's lockout, an unreachable directory says so
and does not count, and everyone else keeps the console's own password.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from carewire.directory.model import UserUpdate
from carewire.errors import ValidationError
from carewire.identity.ldap.console import LdapConsolePasswords
from carewire.identity.ldap.model import Trigger
from carewire.security.audit import Outcome
from carewire.security.console_auth import (
    DirectoryUnavailableError,
    Role,
    SignInError,
)
from carewire.security.console_model import DIRECTORY_UNAVAILABLE
from tests.directory.world import PASSWORD, SYSADMIN
from tests.identity.conftest import LdapWorld, unit
from tests.ldapserver import free_port, password_of

pytestmark = pytest.mark.slow


async def _synced_admin(lw: LdapWorld) -> tuple[str, str, str]:
    """Sync 3 people with LDAP sign-in on; make the first an administrator: (e-mail, uid, DN)."""
    base, uids = unit(lw.slapd, 3)
    await lw.configure(base, is_sign_in_enabled=True)
    run = await lw.ldap.sync(SYSADMIN, lw.org.id, trigger=Trigger.CONSOLE)
    assert run.counts.created == 3, run.message
    user = await lw.world.directory.users.get(SYSADMIN, uids[0])
    await lw.world.directory.users.update(SYSADMIN, uids[0], UserUpdate(is_org_admin=True))
    lw.world.console.external = LdapConsolePasswords(lw.ldap, lw.world.directory)
    return user.profile.email, uids[0], f"uid={uids[0]},{base}"


async def _failures(lw: LdapWorld, email: str) -> int:
    (user,) = [u for u in await lw.world.console.list_users() if u.username == email]
    return user.failed_logins


async def test_the_directory_password_signs_an_administrator_in(lw: LdapWorld) -> None:
    email, uid, _ = await _synced_admin(lw)
    console = lw.world.console
    (before,) = [u for u in await console.list_users() if u.username == email]
    assert before.must_change_password and await console.is_external(before)
    session, token = await console.sign_in(email, password_of(uid), remote_ip="203.0.113.7")
    assert token and session.user.role is Role.ORG_ADMIN
    assert session.user.organisation_id == lw.org.id
    # Made an administrator, the account had a one-time password to change; not any more.
    assert not session.user.must_change_password
    stored = await console.session(token, timeout=timedelta(minutes=20))
    assert stored is not None and not stored.user.must_change_password
    entries, _ = await lw.world.audit.store.entries(action="login", limit=10)
    assert entries[0].event.outcome is Outcome.SUCCESS
    assert entries[0].event.details == {"method": "directory"}
    assert password_of(uid) not in str([e.event for e in entries])
    # Their password is the directory's: it cannot be changed here.
    with pytest.raises(ValidationError, match="directory password"):
        await console.change_password(session, password_of(uid), "a new password 123")


async def test_a_wrong_directory_password_counts_toward_the_lockout(lw: LdapWorld) -> None:
    email, uid, _ = await _synced_admin(lw)
    console = lw.world.console
    for expected in (1, 2):
        with pytest.raises(SignInError) as caught:
            await console.sign_in(email, "not the directory password")
        assert caught.value.reason == "wrong-password"
        assert caught.value.message == "Invalid username or password"
        assert await _failures(lw, email) == expected
    with pytest.raises(SignInError):
        await console.sign_in(email, "")  # an empty password is never an anonymous bind
    assert await _failures(lw, email) == 3
    entries, _ = await lw.world.audit.store.entries(action="login", limit=1)
    assert entries[0].event.details["method"] == "directory"
    assert entries[0].event.details["reason"] == "wrong-password"
    await console.sign_in(email, password_of(uid))  # the right one clears the count
    assert await _failures(lw, email) == 0


async def test_an_unreachable_directory_is_said_and_not_counted(lw: LdapWorld) -> None:
    email, uid, _ = await _synced_admin(lw)
    settings = await lw.ldap.settings(SYSADMIN, lw.org.id)
    assert settings is not None
    await lw.ldap.save(SYSADMIN, replace(settings, url=f"ldap://127.0.0.1:{free_port()}"), None)
    with pytest.raises(DirectoryUnavailableError) as caught:
        await lw.world.console.sign_in(email, password_of(uid))
    assert caught.value.message == DIRECTORY_UNAVAILABLE
    assert await _failures(lw, email) == 0
    entries, _ = await lw.world.audit.store.entries(action="login", limit=1)
    assert entries[0].event.outcome is Outcome.FAILURE
    assert entries[0].event.details["reason"] == "directory-unavailable"


async def test_others_keep_the_console_password(lw: LdapWorld) -> None:
    email, uid, _ = await _synced_admin(lw)
    console = lw.world.console
    await console.create_user("root", Role.SYSTEM_ADMIN, password=PASSWORD)
    session, _ = await console.sign_in("root", PASSWORD)
    assert session.user.username == "root"
    # With LDAP sign-in off, the administrator's console password is the console's own.
    settings = await lw.ldap.settings(SYSADMIN, lw.org.id)
    assert settings is not None
    await lw.ldap.save(SYSADMIN, replace(settings, is_sign_in_enabled=False), None)
    with pytest.raises(SignInError):
        await console.sign_in(email, password_of(uid))
    assert await _failures(lw, email) == 1
    admin = next(u for u in await console.list_users() if u.username == email)
    assert not await console.is_external(admin)


async def test_the_console_account_follows_a_new_address_from_the_directory(
    lw: LdapWorld,
) -> None:
    email, uid, dn = await _synced_admin(lw)
    lw.slapd.modify(f"dn: {dn}\nchangetype: modify\nreplace: mail\nmail: renamed-{email}\n\n")
    run = await lw.ldap.sync(SYSADMIN, lw.org.id, trigger=Trigger.CLI, is_full=True)
    assert run.counts.updated == 1, run.message
    names = {u.username for u in await lw.world.console.list_users()}
    assert f"renamed-{email}" in names and email not in names
    session, _ = await lw.world.console.sign_in(f"renamed-{email}", password_of(uid))
    assert session.user.email == f"renamed-{email}"
