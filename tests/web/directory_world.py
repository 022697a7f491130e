"""A world for the directory API tests: a platform, the API as the server wires it, and tokens.

``world`` opens on SQLite and (with ``CAREWIRE_TEST_PG_URL``) PostgreSQL; its API
is built by ``assembly_services.api_services`` (so the directory and the audit trail are
wired in as ``server.py`` does), its mail is kept in memory, and requests come
from ``CLIENT_IP``. ``system`` sends an admin token of every organisation (a
system administrator), ``auditor`` a read-only one; :meth:`World.client` makes
more, for one organisation. The builders make hospitals, users and groups
through the directory service itself, as the system.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from carewire.assembly import Assembly, Options, assemble
from carewire.assembly_services import api_services
from carewire.clock import FakeClock
from carewire.directory.model import (
    SYSTEM_CALLER,
    AdminInvitee,
    Group,
    NewHospital,
    NewUser,
    OrganisationId,
    Profile,
)
from carewire.mail import MemoryMailer
from carewire.security.audit import AuditEntry
from carewire.security.tokens import Role
from carewire.web.api import create_api
from tests.hashing import CHEAP_HASHER
from tests.storage.conftest import db_url
from tests.templates import prefill

__all__ = ["CLIENT_IP", "PASSWORD", "World", "db_url", "world"]

BASE_URL = "http://test"
CLIENT_IP = "198.51.100.23"
#: A password the console's rule accepts (12 characters or more).
PASSWORD = "correct horse battery"


@dataclass(slots=True, kw_only=True)
class World:
    """The directory API on a platform.

    Attributes:
        platform: The services behind the API.
        app: The API application.
        clock: The platform's clock.
        mailer: Every message the directory sent.
        system: A client with an admin token of every organisation.
        auditor: A client with a read-only token of every organisation.
        stack: Closes the clients.
    """

    platform: Assembly
    app: FastAPI
    clock: FakeClock
    mailer: MemoryMailer
    system: httpx.AsyncClient
    auditor: httpx.AsyncClient
    stack: AsyncExitStack

    async def client(
        self, name: str, *, role: Role = Role.ADMIN, organisation: int | None = None
    ) -> httpx.AsyncClient:
        """A client with a new token ``name`` (for ``organisation`` when given)."""
        _, token = await self.platform.tokens.create(name, role, organisation_id=organisation)
        return await self.stack.enter_async_context(client(self.app, token))

    async def hospital(self, name: str, admin_email: str | None = None) -> int:
        """A hospital made by the system (its administrator invited); its id."""
        slug = re.sub(r"[^a-z]", "", name.lower()) or "h"
        org = await self.platform.directory.organisations.create_hospital(
            SYSTEM_CALLER,
            NewHospital(
                name=name,
                office_number="(555) 010-0000",
                admin=AdminInvitee(
                    email=admin_email or f"admin@{slug}.example", first_name="Ada", last_name="Min"
                ),
            ),
        )
        return int(org.id)

    async def user(
        self,
        organisation: int,
        login: str,
        *,
        first: str = "Jane",
        last: str = "Doe",
        admin: bool = False,
    ) -> str:
        """A registered user made by the system (PIN 2580); their login."""
        user = await self.platform.directory.users.create(
            SYSTEM_CALLER,
            organisation,
            NewUser(
                profile=Profile(first_name=first, last_name=last, email=f"{login}@staff.example"),
                login=login,
                pin="2580",
                password=PASSWORD,
                is_org_admin=admin,
            ),
        )
        return user.login

    async def group(self, organisation: int, name: str, *members: str) -> Group:
        """A group made by the system, with ``members``."""
        groups = self.platform.directory.groups
        group = await groups.create(SYSTEM_CALLER, OrganisationId(organisation), name)
        if members:
            group = await groups.add_members(SYSTEM_CALLER, group.id, members)
        return group

    def link_token(self, to: str, marker: str) -> str:
        """The token of the last mailed link to ``to`` whose URL has ``marker`` before it."""
        for mail in reversed(self.mailer.to(to)):
            found = re.search(re.escape(marker) + r"([A-Za-z0-9_-]+)", mail.body)
            if found:
                return found.group(1)
        raise AssertionError(f"no link with {marker!r} mailed to {to}")

    async def audit(self, action: str) -> list[AuditEntry]:
        """The audit entries of ``action``, most recent first."""
        entries, _ = await self.platform.audit.store.entries(action=action, limit=1000)
        return entries


def client(app: FastAPI, token: str | None) -> httpx.AsyncClient:
    """A client of ``app`` from ``CLIENT_IP`` with ``token``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers)


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[World]:
    """The directory API on a fresh database of each kind."""
    clock = FakeClock()
    mailer = MemoryMailer()
    platform = await assemble(
        Options(url=await prefill(db_url), clock=clock, mailer=mailer, secret_hasher=CHEAP_HASHER)
    )
    try:
        async with AsyncExitStack() as stack:
            _, system_token = await platform.tokens.create("system", Role.ADMIN)
            _, auditor_token = await platform.tokens.create("auditor", Role.READ_ONLY)
            app = create_api(api_services(platform, None))
            yield World(
                platform=platform,
                app=app,
                clock=clock,
                mailer=mailer,
                system=await stack.enter_async_context(client(app, system_token)),
                auditor=await stack.enter_async_context(client(app, auditor_token)),
                stack=stack,
            )
    finally:
        await platform.close()
