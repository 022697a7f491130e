"""Console accounts on a fresh database, for the tests of ``security.console_auth`` and the console.

Hashes use cheap argon2id parameters (:data:`CHEAP`), except where a test
says otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import select

from carewire.clock import FakeClock
from carewire.security.audit import AuditTrail
from carewire.security.console_auth import ConsoleAccounts, ConsoleConfig
from carewire.storage import Database, migrate
from carewire.storage.audit import SqlAuditStore
from carewire.storage.console import SqlConsoleStore
from carewire.storage.tables import audit_log
from tests.templates import prefill

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
    await migrate.upgrade(await prefill(url))
    db = await Database.open(url)
    clock = FakeClock()
    audit = AuditTrail(SqlAuditStore(db), clock)
    return Opened(
        db=db,
        accounts=ConsoleAccounts(SqlConsoleStore(db), clock, audit, hasher=hasher),
        clock=clock,
    )
