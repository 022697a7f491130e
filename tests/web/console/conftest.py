"""Fixtures for the console tests: the app on SQLite, clients, sign-in and mail.

``console`` is the web app on SQLite with a fake clock and an outbox. Console
accounts come from :mod:`tests.security.console_accounts` (cheap argon2id
parameters) and the SMTP server from :mod:`tests.mailserver`; their names are
re-exported here for the console tests.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from carewire.clock import FakeClock
from carewire.mail import Mailer, OutboxMailer
from carewire.security.audit import AuditTrail
from carewire.security.console_auth import ConsoleAccounts, Role
from carewire.storage.audit import SqlAuditStore
from carewire.web.console import ConsoleServices, create_console
from tests.mailserver import SmtpServer, read_mails, smtp_server, text_of
from tests.security.console_accounts import CHEAP, CONFIG, GOOD, Opened, open_accounts

__all__ = [
    "CHEAP",
    "CONFIG",
    "GOOD",
    "Opened",
    "SmtpServer",
    "open_accounts",
    "read_mails",
    "smtp_server",
    "text_of",
]

BASE_URL = "https://test"


@pytest.fixture
async def sqlite_opened(tmp_path: Path) -> AsyncIterator[Opened]:
    """Console accounts on a fresh SQLite database."""
    o = await open_accounts(f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}")
    try:
        yield o
    finally:
        await o.db.close()


@dataclass(slots=True, kw_only=True)
class Console:
    """The console app on SQLite, with a client and the outbox it mails to."""

    opened: Opened
    client: httpx.AsyncClient
    transport: httpx.ASGITransport
    outbox: Path
    services: ConsoleServices

    @property
    def accounts(self) -> ConsoleAccounts:
        """The accounts behind the app."""
        return self.opened.accounts

    @property
    def clock(self) -> FakeClock:
        """The app's clock."""
        return self.opened.clock

    def new_client(self) -> httpx.AsyncClient:
        """Another browser (no cookies)."""
        return client_for(self.transport)

    async def add_user(
        self, name: str, role: Role = Role.SYSTEM_ADMIN, *, email: str | None = None
    ) -> None:
        """A user with the password :data:`GOOD` (nothing to change)."""
        await self.accounts.create_user(name, role, email=email, password=GOOD)


def client_for(transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
    """A client on ``transport`` at :data:`BASE_URL`."""
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


def services(opened: Opened, mailer: Mailer) -> ConsoleServices:
    """The console's services on ``opened``."""
    audit = AuditTrail(SqlAuditStore(opened.db), opened.clock)
    return ConsoleServices(accounts=opened.accounts, audit=audit, mailer=mailer, config=CONFIG)


@pytest.fixture
async def console(sqlite_opened: Opened, tmp_path: Path) -> AsyncIterator[Console]:
    """The console app, mailing to ``tmp_path/outbox``."""
    outbox = tmp_path / "outbox"
    svc = services(sqlite_opened, OutboxMailer(outbox, sender="carewire@carewire.test"))
    transport = httpx.ASGITransport(app=create_console(svc))
    async with client_for(transport) as client:
        yield Console(
            opened=sqlite_opened, client=client, transport=transport, outbox=outbox, services=svc
        )


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token a page's form carries."""
    m = _CSRF.search(html)
    assert m, "no CSRF field on the page"
    return m.group(1)


async def sign_in(client: httpx.AsyncClient, login: str, password: str = GOOD) -> httpx.Response:
    """Load the sign-in form and post it; returns the POST's response (not followed)."""
    page = await client.get("/signin")
    return await client.post(
        "/signin",
        data={"username": login, "password": password, "csrf_token": csrf_of(page.text)},
    )


_LINK = re.compile(r"https://\S+/reset/([A-Za-z0-9_-]+)")


def reset_path(body: str) -> str:
    """``/reset/<token>`` from a reset mail's body."""
    m = _LINK.search(body)
    assert m, body
    return f"/reset/{m.group(1)}"
