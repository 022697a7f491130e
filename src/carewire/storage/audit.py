"""The audit trail's tables (``audit_log``, ``audit_mac_epochs``): appends keep one chain.

Appending reads the last hash and inserts in one exclusive transaction: on
PostgreSQL the table is locked, on SQLite the write lock is taken before the
read (``BEGIN IMMEDIATE``), so that writers in different processes (the server
and the CLI) cannot fork the chain. The same read tells whether the latest
epoch marker is this store's key; if not, a marker is written first, in the
same transaction, so that MACs under a new key begin exactly after the entry
it names.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, insert, or_, select, text

from carewire.security.audit import (
    GENESIS,
    AuditEntry,
    AuditEvent,
    Channel,
    MacEpoch,
    Outcome,
    entry_hash,
    epoch_input,
    mac_input,
    storable,
)
from carewire.security.audit_key import AuditKey
from carewire.storage import dialects
from carewire.storage.database import Database, Transaction
from carewire.storage.dialects import POSTGRESQL
from carewire.storage.tables import audit_log, audit_mac_epochs

log = logging.getLogger(__name__)

_A = audit_log.c
_E = audit_mac_epochs.c
#: The last entry's id and hash and the latest marker's key, in one round trip.
_TIP = select(
    select(_A.id).order_by(_A.id.desc()).limit(1).scalar_subquery(),
    select(_A.hash).order_by(_A.id.desc()).limit(1).scalar_subquery(),
    select(_E.key_id).order_by(_E.id.desc()).limit(1).scalar_subquery(),
)
_COLUMNS = (
    _A.id,
    _A.at,
    _A.actor,
    _A.channel,
    _A.action,
    _A.target,
    _A.outcome,
    _A.remote_ip,
    _A.details,
    _A.prev_hash,
    _A.hash,
    _A.mac,
)


def _entry(row: Any) -> AuditEntry:
    """An entry re-hydrated from its row (``details`` parsed back from JSON)."""
    details = json.loads(row.details) if row.details else {}
    return AuditEntry(
        id=int(row.id),
        at=row.at,
        event=AuditEvent(
            actor=row.actor,
            channel=Channel(row.channel),
            action=row.action,
            target=row.target,
            outcome=Outcome(row.outcome),
            remote_ip=row.remote_ip,
            details=details if isinstance(details, dict) else {"value": details},
        ),
        prev_hash=row.prev_hash,
        hash=row.hash,
        mac=row.mac or "",
    )


def _period(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if since is not None:
        where.append(_A.at >= since)
    if until is not None:
        where.append(_A.at < until)
    return where


def _prefix_match(column: Any, value: str, sep: str) -> ColumnElement[bool]:
    """``value`` itself, or anything under it (``cli`` matches ``cli:root``)."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(column == value, column.like(f"{escaped}{sep}%", escape="\\"))


class SqlAuditStore:
    """The audit trail on SQLite or PostgreSQL, authenticated with ``key``."""

    def __init__(self, db: Database, key: AuditKey | None = None) -> None:
        """Append to ``db`` with ``key`` (a fresh in-memory key unless given: tests only)."""
        self._db = db
        self._key = key or AuditKey.generate()

    @property
    def key(self) -> AuditKey:
        """The key new entries are authenticated with."""
        return self._key

    async def _lock(self, txn: Transaction, at: datetime) -> str:
        """Take the exclusive lock for an append, begin this key's epoch if need be, and
        return the last hash."""
        if self._db.dialect == POSTGRESQL:
            await txn.conn.execute(text("LOCK TABLE audit_log IN EXCLUSIVE MODE"))
        elif not await dialects.sqlite_in_transaction(txn.conn):
            # The driver would only begin at the INSERT, after the read: begin first.
            # (Inside a joined transaction that already wrote, the write lock is held.)
            await txn.conn.exec_driver_sql("BEGIN IMMEDIATE")
        last_id, last_hash, epoch_key = (await txn.conn.execute(_TIP)).one()
        last_hash = last_hash or GENESIS
        if epoch_key != self._key.key_id:
            await self._begin_epoch(txn, int(last_id or 0), last_hash, at)
        return str(last_hash)

    async def _begin_epoch(
        self, txn: Transaction, after_id: int, after_hash: str, at: datetime
    ) -> None:
        at, key_id = at.astimezone(UTC), self._key.key_id
        mac = self._key.mac(epoch_input(key_id, after_id, after_hash, at))
        await txn.conn.execute(
            insert(audit_mac_epochs).values(
                key_id=key_id, after_id=after_id, after_hash=after_hash, at=at, mac=mac
            )
        )
        log.info("audit entries after %d are authenticated with key %s", after_id, key_id)

    async def _insert(
        self, txn: Transaction, prev: str, at: datetime, event: AuditEvent
    ) -> AuditEntry:
        at, event = storable(at, event)
        digest = entry_hash(prev, at, event)
        mac = self._key.mac(mac_input(digest))
        result = await txn.conn.execute(
            insert(audit_log).values(
                at=at,
                actor=event.actor,
                channel=event.channel.value,
                action=event.action,
                target=event.target,
                outcome=event.outcome.value,
                remote_ip=event.remote_ip,
                details=json.dumps(event.details, sort_keys=True, default=str),
                prev_hash=prev,
                hash=digest,
                mac=mac,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return AuditEntry(id=int(key[0]), at=at, event=event, prev_hash=prev, hash=digest, mac=mac)

    async def append(self, at: datetime, event: AuditEvent) -> AuditEntry:
        """Append one entry, chained to the last one (see the module docstring)."""
        async with self._db.transaction("append_audit") as txn:
            return await self._insert(txn, await self._lock(txn, at), at, event)

    async def append_many(self, items: Sequence[tuple[datetime, AuditEvent]]) -> None:
        """Append entries in order, chained, in one transaction (none: no transaction)."""
        if not items:
            return
        async with self._db.transaction("append_audit_many") as txn:
            prev = await self._lock(txn, items[0][0])
            for at, event in items:
                prev = (await self._insert(txn, prev, at, event)).hash

    async def entries(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        actor: str | None = None,
        action: str | None = None,
        outcome: Outcome | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[AuditEntry], int]:
        """One page of matching entries, most recent first, and how many match in all.

        ``since`` is inclusive, ``until`` exclusive; ``actor`` matches itself
        and the actors under it (``cli`` matches ``cli:root``), ``action``
        likewise (``rule`` matches ``rule.create``).
        """
        where = _period(since, until)
        if actor:
            where.append(_prefix_match(_A.actor, actor, ":"))
        if action:
            where.append(_prefix_match(_A.action, action, "."))
        if outcome is not None:
            where.append(_A.outcome == outcome.value)
        page: Select[Any] = (
            select(*_COLUMNS).where(*where).order_by(_A.id.desc()).offset(offset).limit(limit)
        )
        count = select(func.count()).select_from(audit_log).where(*where)
        async with self._db.read("audit_entries") as conn:
            total = (await conn.execute(count)).scalar_one()
            rows = (await conn.execute(page)).all()
        return [_entry(r) for r in rows], int(total)

    async def iterate(
        self, since: datetime | None = None, until: datetime | None = None, batch: int = 1000
    ) -> AsyncIterator[AuditEntry]:
        """Every entry with ``since <= at < until``, in id order, ``batch`` rows per read."""
        where = _period(since, until)
        after = 0
        while True:
            stmt = select(*_COLUMNS).where(_A.id > after, *where).order_by(_A.id).limit(batch)
            async with self._db.read("audit_iterate") as conn:
                rows = (await conn.execute(stmt)).all()
            for row in rows:
                yield _entry(row)
            if len(rows) < batch:
                return
            after = int(rows[-1].id)

    async def epochs(self) -> list[MacEpoch]:
        """Every epoch marker, in order."""
        stmt = select(_E.id, _E.key_id, _E.after_id, _E.after_hash, _E.at, _E.mac).order_by(_E.id)
        async with self._db.read("audit_epochs") as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            MacEpoch(
                id=int(r.id),
                key_id=r.key_id,
                after_id=int(r.after_id),
                after_hash=r.after_hash,
                at=r.at,
                mac=r.mac,
            )
            for r in rows
        ]

    async def latest_epoch_key(self) -> str | None:
        """The key id of the latest epoch marker (None: none yet)."""
        stmt = select(_E.key_id).order_by(_E.id.desc()).limit(1)
        async with self._db.read("audit_latest_epoch") as conn:
            return (await conn.execute(stmt)).scalar_one_or_none()

    async def head(self) -> tuple[int, str, int]:
        """The last entry's id and hash, and how many entries there are."""
        async with self._db.read("audit_head") as conn:
            last_id, last_hash, _ = (await conn.execute(_TIP)).one()
            count = (await conn.execute(select(func.count()).select_from(audit_log))).scalar_one()
        return int(last_id or 0), str(last_hash or GENESIS), int(count)

    async def hashes(self, ids: Sequence[int]) -> dict[int, str]:
        """The hashes of the entries with ``ids`` that exist."""
        found: dict[int, str] = {}
        wanted = sorted(set(ids))
        for i in range(0, len(wanted), 500):
            stmt = select(_A.id, _A.hash).where(_A.id.in_(wanted[i : i + 500]))
            async with self._db.read("audit_hashes") as conn:
                found.update({int(r.id): r.hash for r in await conn.execute(stmt)})
        return found
