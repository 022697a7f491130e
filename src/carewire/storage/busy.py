"""Busy periods and release requests (:class:`BusyStore`, interruption control).

A timed Do Not Disturb and an unanswered Urgent or Critical alert are kept
here so that a restart does not forget that a clinician must not be
interrupted; an administrator's request to release held messages now, made
by the command line in another process, waits here for the running server.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, select
from sqlalchemy.exc import IntegrityError

from carewire.core.stores import BusyKind, BusyPeriod
from carewire.errors import NotFoundError
from carewire.storage import dialects
from carewire.storage.database import Database
from carewire.storage.tables import busy_periods

_B = busy_periods.c
_ENDING_KINDS = (BusyKind.DND.value, BusyKind.ALERT.value)
_COLUMNS = (_B.login, _B.kind, _B.until, _B.ref, _B.note)


def _period(row: Row[*tuple[Any, ...]]) -> BusyPeriod:
    return BusyPeriod(
        login=str(row.login),
        kind=BusyKind(row.kind),
        until=row.until,
        ref=str(row.ref),
        note=row.note,
    )


class SqlBusyStore:
    """:class:`carewire.core.stores.BusyStore` on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every operation."""
        self._db = db
        self._upsert = dialects.upsert(
            db.dialect, busy_periods, ["login", "kind", "ref"], update=["until", "note"]
        )

    async def put(self, periods: Sequence[BusyPeriod]) -> None:
        """Add or replace ``periods`` in one transaction.

        Raises:
            NotFoundError: A login has no account (nothing is written).
        """
        if not periods:
            return
        rows = [
            {"login": p.login, "kind": p.kind.value, "ref": p.ref, "until": p.until, "note": p.note}
            for p in periods
        ]
        try:
            async with self._db.transaction("put_busy_periods") as txn:
                await txn.conn.execute(self._upsert, rows)
        except IntegrityError as exc:
            raise NotFoundError("a busy period names a login without an account") from exc

    async def remove(self, *, kind: BusyKind, ref: str = "", login: str | None = None) -> None:
        """Remove the rows of ``kind`` and ``ref`` (of ``login`` only, unless None)."""
        stmt = delete(busy_periods).where(_B.kind == kind.value, _B.ref == ref)
        if login is not None:
            stmt = stmt.where(_B.login == login)
        async with self._db.transaction("remove_busy_periods") as txn:
            await txn.conn.execute(stmt)

    async def remove_ended(self, now: datetime) -> int:
        """Remove the Do Not Disturb and alert periods that ended by ``now``."""
        stmt = delete(busy_periods).where(_B.kind.in_(_ENDING_KINDS), _B.until <= now)
        async with self._db.transaction("remove_ended_busy_periods") as txn:
            return int((await txn.conn.execute(stmt)).rowcount or 0)

    async def of(self, login: str) -> list[BusyPeriod]:
        """The rows of ``login``, soonest end first."""
        stmt = select(*_COLUMNS).where(_B.login == login).order_by(_B.until, _B.id)
        async with self._db.read("busy_periods_of") as conn:
            return [_period(r) for r in await conn.execute(stmt)]

    async def all(self) -> list[BusyPeriod]:
        """Every row, by login."""
        async with self._db.read("all_busy_periods") as conn:
            rows = await conn.execute(select(*_COLUMNS).order_by(_B.login, _B.id))
            return [_period(r) for r in rows]

    async def take(self, kind: BusyKind) -> list[BusyPeriod]:
        """Remove and return the rows of ``kind``, oldest first."""
        async with self._db.transaction("take_busy_periods") as txn:
            found = await txn.conn.execute(
                select(_B.id, *_COLUMNS).where(_B.kind == kind.value).order_by(_B.id)
            )
            rows = list(found)
            if rows:
                await txn.conn.execute(delete(busy_periods).where(_B.id.in_([r[0] for r in rows])))
            return [_period(r) for r in rows]
