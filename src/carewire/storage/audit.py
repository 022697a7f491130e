"""The audit trail's table (``audit_log``): append with the chain kept in one transaction."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import insert, select, text

from carewire.security.audit import GENESIS, AuditEntry, AuditEvent, entry_hash
from carewire.storage.database import Database
from carewire.storage.dialects import POSTGRESQL
from carewire.storage.tables import audit_log


class SqlAuditStore:
    """The audit trail on SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def append(self, at: datetime, event: AuditEvent) -> AuditEntry:
        """Append one entry, chained to the last one.

        Reading the last hash and inserting happen in one transaction; on
        PostgreSQL the table is locked for it, so that concurrent writers
        (the server and the CLI) cannot fork the chain. SQLite has one
        writer at a time anyway.
        """
        async with self._db.transaction("append_audit") as txn:
            if self._db.dialect == POSTGRESQL:
                await txn.conn.execute(text("LOCK TABLE audit_log IN EXCLUSIVE MODE"))
            last = (
                await txn.conn.execute(
                    select(audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)
                )
            ).scalar_one_or_none()
            prev = last or GENESIS
            digest = entry_hash(prev, at, event)
            result = await txn.conn.execute(
                insert(audit_log).values(
                    at=at,
                    actor=event.actor[:200],
                    channel=event.channel.value,
                    action=event.action[:100],
                    target=event.target[:300],
                    outcome=event.outcome.value,
                    remote_ip=event.remote_ip[:64],
                    details=json.dumps(event.details, sort_keys=True, default=str),
                    prev_hash=prev,
                    hash=digest,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
        return AuditEntry(id=int(key[0]), at=at, event=event, prev_hash=prev, hash=digest)
