"""Fixtures for the console tests: accounts on a fresh database, the app, clients and mail.

``accounts`` runs on SQLite and (with ``CAREWIRE_TEST_PG_URL``) PostgreSQL;
``console`` is the web app on SQLite with a fake clock and an outbox. Hashes
use cheap argon2id parameters, except where a test says otherwise.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from argon2 import PasswordHasher
from sqlalchemy import select

from carewire.clock import FakeClock
from carewire.mail import Mailer, OutboxMailer
from carewire.security.audit import AuditTrail
from carewire.security.console_auth import ConsoleAccounts, ConsoleConfig, Role
from carewire.storage import Database, migrate
from carewire.storage.audit import SqlAuditStore
from carewire.storage.console import SqlConsoleStore
from carewire.storage.tables import audit_log
from carewire.web.console import ConsoleServices, create_console
from tests.storage.conftest import db_url

__all__ = ["db_url"]

BASE_URL = "https://test"
#: A password that meets the policy.
GOOD = "correct horse battery"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
CONFIG = ConsoleConfig(
    session_timeout=timedelta(minutes=20),
    reset_link_ttl=timedelta(minutes=30),
    domain="carewire.test",
    base_url="https://console.carewire.test:8443",
)


@dataclass(slots=True, kw_only=True)
class Opened:
    """Console accounts on an open database."""

    db: Database
    accounts: ConsoleAccounts
    clock: FakeClock

    async def audit(self) -> list[dict[str, Any]]:
        """Every audit entry, oldest first (actor, action, target, outcome, remote_ip, details)."""
        query = select(
            audit_log.c.actor,
            audit_log.c.channel,
            audit_log.c.action,
            audit_log.c.target,
            audit_log.c.outcome,
            audit_log.c.remote_ip,
            audit_log.c.details,
        ).order_by(audit_log.c.id)
        async with self.db.read("test_audit") as conn:
            rows = (await conn.execute(query)).all()
        return [{**r._asdict(), "details": json.loads(r.details)} for r in rows]


async def open_accounts(url: str, hasher: PasswordHasher = CHEAP) -> Opened:
    """Migrate ``url`` and open console accounts on it with a fake clock."""
    await migrate.upgrade(url)
    db = await Database.open(url)
    clock = FakeClock()
    audit = AuditTrail(SqlAuditStore(db), clock)
    return Opened(
        db=db,
        accounts=ConsoleAccounts(SqlConsoleStore(db), clock, audit, hasher=hasher),
        clock=clock,
    )


@pytest.fixture
async def opened(db_url: str) -> AsyncIterator[Opened]:
    """Console accounts on a fresh database of each kind."""
    o = await open_accounts(db_url)
    try:
        yield o
    finally:
        await o.db.close()


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


def read_mails(outbox: Path) -> list[EmailMessage]:
    """Every message in ``outbox``, oldest first."""
    mails = []
    for path in sorted(outbox.glob("*.eml")):
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        mails.append(msg)
    return mails


def text_of(msg: EmailMessage) -> str:
    """A message's text with plain newlines (on disk and on the wire lines end in CRLF)."""
    content = msg.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


_LINK = re.compile(r"https://\S+/reset/([A-Za-z0-9_-]+)")


def reset_path(body: str) -> str:
    """``/reset/<token>`` from a reset mail's body."""
    m = _LINK.search(body)
    assert m, body
    return f"/reset/{m.group(1)}"


# -- a real SMTP server ---------------------------------------------------------------


@dataclass(slots=True)
class Inbox:
    """What the test SMTP server received."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    received: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        """Keep the message (aiosmtpd handler hook)."""
        data = envelope.original_content or b""
        msg = message_from_bytes(data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        self.received.set()
        return "250 Message accepted"


class _AnyPortController(Controller):
    """A controller that may listen on port 0 (it learns the real port before its self-test)."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = int(self.server.sockets[0].getsockname()[1])
        super()._trigger_server()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """The test SMTP server's address and what it received."""

    host: str
    port: int
    inbox: Inbox


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An aiosmtpd server on 127.0.0.1 (a free port), collecting messages."""
    inbox = Inbox()
    controller = _AnyPortController(inbox, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", controller.port, inbox)
    finally:
        controller.stop()
