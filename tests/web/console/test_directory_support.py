"""The world of the directory console tests: a platform, the console on it, browsers, builders.

``env`` opens on SQLite and (with ``CAREWIRE_TEST_PG_URL``) PostgreSQL. The
console is built as the server builds it, but with cheap argon2id costs for
console passwords and PINs and a fake clock: the directory service is made
on the platform's database with those (its mail is kept in memory). Builders
make hospitals, users and groups through the directory service as the system;
:meth:`Env.browser` signs a console user in and returns their browser.
This module holds no tests; the ``test_directory_*`` modules import from it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from carewire.assembly import Assembly, Options, assemble
from carewire.clock import FakeClock
from carewire.directory.model import (
    SYSTEM_CALLER,
    AdminInvitee,
    DirectoryConfig,
    DirectoryUser,
    Group,
    NewHospital,
    NewUser,
    Organisation,
    OrganisationId,
    Profile,
)
from carewire.directory.service import DirectoryService
from carewire.identity.ldap.console import LdapConsolePasswords
from carewire.identity.ldap.service import LdapService, SyncConfig
from carewire.mail import MemoryMailer
from carewire.security.audit import AuditEntry
from carewire.security.console_auth import ConsoleAccounts, Role
from carewire.storage.console import SqlConsoleStore
from carewire.storage.directory import build_directory_store
from carewire.storage.ldap_sync import SqlLdapStore
from carewire.web.console import ConsoleServices, create_console
from tests.storage.conftest import db_url
from tests.templates import prefill
from tests.web.console.conftest import CHEAP, CONFIG, GOOD, csrf_of, sign_in

__all__ = ["GOOD", "Env", "csrf_of", "db_url", "env", "form_post", "open_env"]

BASE_URL = "https://test"
CLIENT_IP = "203.0.113.9"
DOMAIN = "carewire.test"
#: A PIN every organisation's policy accepts.
PIN = "2580"


@dataclass(slots=True, kw_only=True)
class Env:
    """The console with the directory, on one database.

    Attributes:
        platform: The platform (accounts, datasets, audit).
        directory: The directory service the console calls.
        console: Console accounts (cheap hashes).
        mailer: Every message the directory sent.
        clock: The clock of the directory and the console.
        ldap: Directory sync from LDAP on that directory (console sign-in by LDAP too).
        transport: The console app's transport (for more browsers).
        stack: Closes the browsers.
    """

    platform: Assembly
    directory: DirectoryService
    console: ConsoleAccounts
    mailer: MemoryMailer
    clock: FakeClock
    ldap: LdapService
    transport: httpx.ASGITransport
    stack: AsyncExitStack

    async def anonymous(self) -> httpx.AsyncClient:
        """A browser nobody signed in with."""
        client = httpx.AsyncClient(transport=self.transport, base_url=BASE_URL)
        return await self.stack.enter_async_context(client)

    async def browser(
        self,
        username: str,
        role: Role = Role.SYSTEM_ADMIN,
        *,
        organisation: int | None = None,
    ) -> httpx.AsyncClient:
        """A signed-in browser of a new console user (``organisation`` scopes an org admin)."""
        await self.console.create_user(
            username, role, password=GOOD, email=None, organisation_id=organisation
        )
        client = await self.anonymous()
        r = await sign_in(client, username)
        assert r.status_code == 303, r.text
        return client

    async def hospital(self, name: str, admin_email: str | None = None) -> Organisation:
        """A hospital made by the system (its administrator invited by mail)."""
        slug = re.sub(r"[^a-z]", "", name.lower()) or "h"
        return await self.directory.organisations.create_hospital(
            SYSTEM_CALLER,
            NewHospital(
                name=name,
                office_number="(555) 010-0000",
                admin=AdminInvitee(
                    email=admin_email or f"admin@{slug}.example", first_name="Ada", last_name="Min"
                ),
            ),
        )

    async def user(
        self,
        organisation: int,
        login: str,
        *,
        first: str = "Jane",
        last: str = "Doe",
        admin: bool = False,
    ) -> DirectoryUser:
        """A registered user made by the system (PIN :data:`PIN`, password :data:`GOOD`)."""
        return await self.directory.users.create(
            SYSTEM_CALLER,
            organisation,
            NewUser(
                profile=Profile(first_name=first, last_name=last, email=f"{login}@staff.example"),
                login=login,
                pin=PIN,
                password=GOOD,
                is_org_admin=admin,
            ),
        )

    async def group(self, organisation: int, name: str, *members: str) -> Group:
        """A group made by the system, with ``members``."""
        groups = self.directory.groups
        group = await groups.create(SYSTEM_CALLER, OrganisationId(organisation), name)
        if members:
            group = await groups.add_members(SYSTEM_CALLER, group.id, members)
        return group

    def link(self, to: str, marker: str) -> str:
        """The path of the last mailed link to ``to`` that contains ``marker`` (``/register/``)."""
        for mail in reversed(self.mailer.to(to)):
            found = re.search(r"https://[^/\s]+(" + re.escape(marker) + r"[^\s]+)", mail.body)
            if found:
                return found.group(1)
        raise AssertionError(f"no link with {marker!r} mailed to {to}")

    async def audit(self, action: str) -> list[AuditEntry]:
        """The audit entries of ``action``, most recent first."""
        entries, _ = await self.platform.audit.store.entries(action=action, limit=1000)
        return entries


async def form_post(
    client: httpx.AsyncClient,
    page: str,
    url: str,
    data: Mapping[str, str | list[str]],
    *,
    files: Mapping[str, tuple[str, bytes, str]] | None = None,
) -> httpx.Response:
    """Load ``page`` for its CSRF token and post ``data`` (and ``files``) to ``url``."""
    loaded = await client.get(page)
    assert loaded.status_code == 200, (page, loaded.status_code, loaded.text[:500])
    body = {**data, "csrf_token": csrf_of(loaded.text)}
    return await client.post(url, data=body, files=files)


async def open_env(url: str, stack: AsyncExitStack) -> Env:
    """The console with the directory on the database at ``url`` (closed by ``stack``)."""
    clock = FakeClock()
    mailer = MemoryMailer()
    platform = await assemble(
        Options(
            url=await prefill(url),
            clock=clock,
            mailer=mailer,
            domain=DOMAIN,
            secret_hasher=CHEAP,
        )
    )
    stack.push_async_callback(platform.close)
    console = ConsoleAccounts(SqlConsoleStore(platform.db), clock, platform.audit, hasher=CHEAP)
    directory = DirectoryService(
        store=build_directory_store(platform.db),
        accounts=platform.core.accounts,
        datasets=platform.datasets,
        console=console,
        audit=platform.audit,
        mailer=mailer,
        clock=clock,
        config=DirectoryConfig(domain=DOMAIN, link_base="https://console.carewire.test:8443"),
        pin_hasher=CHEAP,
    )
    await directory.load()
    stack.push_async_callback(directory.close)
    ldap = LdapService(
        store=SqlLdapStore(platform.db, platform.core.keys.keyring),
        directory=directory,
        audit=platform.audit,
        clock=clock,
        config=SyncConfig(timeout=5.0),
    )
    directory.manage_fields(ldap.managed_fields)
    console.external = LdapConsolePasswords(ldap, directory)
    services = ConsoleServices(
        accounts=console,
        audit=platform.audit,
        mailer=mailer,
        config=CONFIG,
        registry=platform.registry,
        datasets=platform.datasets,
        directory=directory,
        coverage=platform.coverage,
        ldap=ldap,
    )
    transport = httpx.ASGITransport(app=create_console(services), client=(CLIENT_IP, 40000))
    return Env(
        platform=platform,
        directory=directory,
        console=console,
        mailer=mailer,
        clock=clock,
        ldap=ldap,
        transport=transport,
        stack=stack,
    )


@pytest.fixture
async def env(db_url: str) -> AsyncIterator[Env]:
    """The directory console on a fresh database of each kind."""
    async with AsyncExitStack() as stack:
        yield await open_env(db_url, stack)


def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database under ``tmp_path``."""
    return f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}"
