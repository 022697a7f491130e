"""A directory service on a real database, with a fake clock, mail kept in memory and cheap hashes.

Shared by the directory's tests: :func:`open_world` builds exactly what the
assembly builds for the directory (accounts, the dataset service, console
accounts, the audit trail) without the rules engine and adapters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from carewire.clock import FakeClock
from carewire.core.accounts import AccountService
from carewire.datasets.registry import Registry
from carewire.datasets.service import DatasetService
from carewire.directory.model import (
    SYSTEM_CALLER,
    AdminInvitee,
    Caller,
    CallerRole,
    DirectoryConfig,
    DirectoryEvent,
    DirectoryUser,
    NewHospital,
    NewPractice,
    Organisation,
    OrganisationId,
    RegistrationForm,
)
from carewire.directory.service import DirectoryService
from carewire.mail import MemoryMailer, SentMail
from carewire.security.audit import AuditTrail, Channel
from carewire.security.console_auth import ConsoleAccounts
from carewire.security.envelope import ephemeral_keyring
from carewire.storage import Database, build_stores, migrate
from carewire.storage.audit import SqlAuditStore
from carewire.storage.console import SqlConsoleStore
from carewire.storage.datasets import SqlDatasetStore
from carewire.storage.directory import build_directory_store
from tests.hashing import CHEAP_HASHER
from tests.templates import prefill

CHEAP = CHEAP_HASHER
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
SYSADMIN = SYSTEM_CALLER
AUDITOR = Caller(actor="console:auditor", role=CallerRole.AUDITOR, channel=Channel.CONSOLE)
CONFIG = DirectoryConfig(domain="example.test", link_base="https://example.test:8443")


@dataclass(slots=True, kw_only=True)
class World:
    """The directory and what tests look at."""

    db: Database
    clock: FakeClock
    mailer: MemoryMailer
    accounts: AccountService
    datasets: DatasetService
    console: ConsoleAccounts
    audit: AuditTrail
    directory: DirectoryService
    events: list[DirectoryEvent]

    def admin_of(self, org: Organisation | int) -> Caller:
        """An administrator of ``org`` (as the console makes them)."""
        oid = org.id if isinstance(org, Organisation) else org
        return Caller(
            actor=f"console:admin{oid}@example.org",
            role=CallerRole.ORG_ADMIN,
            organisation_id=OrganisationId(oid),
            channel=Channel.CONSOLE,
        )

    def auditor_of(self, org: Organisation) -> Caller:
        """An auditor of ``org``."""
        return Caller(actor="console:aud", role=CallerRole.AUDITOR, organisation_id=org.id)

    def last_mail(self, to: str) -> SentMail:
        """The last message sent to ``to``."""
        mails = self.mailer.to(to)
        assert mails, f"no mail to {to}"
        return mails[-1]

    def link_token(self, to: str, path: str = "/register/") -> str:
        """The token of the last link to ``path`` mailed to ``to``."""
        body = self.last_mail(to).body
        found = re.search(re.escape(path) + r"([A-Za-z0-9_-]+)", body)
        assert found, body
        return found.group(1)

    async def hospital(self, name: str = "Abelard Medical Center", admin: str = "") -> Organisation:
        """A hospital (its administrator invited at ``admin``, default ``admin@<slug>.org``)."""
        email = admin or f"admin@{re.sub('[^a-z]', '', name.lower())}.org"
        return await self.directory.organisations.create_hospital(
            SYSADMIN,
            NewHospital(
                name=name,
                office_number="(408) 882-5830",
                admin=AdminInvitee(email=email, first_name="Ada", last_name="Admin"),
            ),
        )

    async def practice(self, hospital: Organisation, name: str) -> Organisation:
        """A practice of ``hospital``."""
        made = await self.directory.organisations.create_practice(
            SYSADMIN,
            NewPractice(
                hospital_id=hospital.id,
                name=name,
                office_number="555-669-2750",
                admin=AdminInvitee(
                    email=f"admin@{re.sub('[^a-z]', '', name.lower())}.org",
                    first_name="Pat",
                    last_name="Practice",
                ),
            ),
        )
        return made.practice

    async def register(
        self, email: str, *, login: str = "", pin: str = "2580", **changes: str
    ) -> DirectoryUser:
        """Register through the last invitation mailed to ``email``."""
        token = self.link_token(email)
        info = await self.directory.registration.info(token)
        form = RegistrationForm(
            login=login or info.login,
            first_name=changes.get("first_name", info.first_name or "Jane"),
            last_name=changes.get("last_name", info.last_name or "Doe"),
            cell_number="(555) 669-2750",
            password=PASSWORD,
            password_confirm=PASSWORD,
            pin=pin,
            pin_confirm=pin,
        )
        return await self.directory.registration.register(token, form)

    async def user(self, org: Organisation, email: str, **changes: str) -> DirectoryUser:
        """A registered user of ``org`` (invited, then registered)."""
        from carewire.directory.model import InviteRequest

        await self.directory.invitations.invite(SYSADMIN, org.id, InviteRequest(emails=email))
        return await self.register(email, **changes)


async def open_world(url: str) -> World:
    """A migrated database at ``url`` and the directory on it."""
    await prefill(url)
    await migrate.upgrade(await prefill(url))
    db = await Database.open(url)
    clock = FakeClock(START)
    stores = build_stores(db, ephemeral_keyring())
    accounts = AccountService(stores)
    record_store = SqlDatasetStore(db)
    registry = Registry(record_store)
    await registry.load()
    datasets = DatasetService(registry, record_store, clock)
    audit = AuditTrail(SqlAuditStore(db), clock)
    console = ConsoleAccounts(SqlConsoleStore(db), clock, audit, hasher=CHEAP)
    mailer = MemoryMailer()
    directory = DirectoryService(
        store=build_directory_store(db),
        accounts=accounts,
        datasets=datasets,
        console=console,
        audit=audit,
        mailer=mailer,
        clock=clock,
        config=CONFIG,
        pin_hasher=CHEAP,
    )
    await directory.load()
    events: list[DirectoryEvent] = []

    async def listen(event: DirectoryEvent) -> None:
        events.append(event)

    directory.subscribe(listen)
    return World(
        db=db,
        clock=clock,
        mailer=mailer,
        accounts=accounts,
        datasets=datasets,
        console=console,
        audit=audit,
        directory=directory,
        events=events,
    )
