"""The message expiry queue (:class:`ExpiryStore`, docs/retention.md).

One row per tracked message until it expired, indexed on ``expires_at``: the
scheduler asks for the soonest few (an index range scan) and for the next
expiry (an index lookup), never for the whole table. Rows carry no body.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, delete, func, select

from carewire.core.stores import ExpiryEntry
from carewire.storage import dialects
from carewire.storage.database import Database
from carewire.storage.tables import UTCDateTime, message_expiry

_E = message_expiry.c
#: Uuids per ``DELETE … IN (…)`` statement (far below every bind limit).
_CHUNK = 500

_DUE = (
    select(_E.uuid, _E.expires_at, _E.kind, _E.sender, _E.peer, _E.client_id)
    .where(_E.expires_at <= bindparam("now", type_=UTCDateTime()))
    .order_by(_E.expires_at, _E.uuid)
    .limit(bindparam("limit"))
)
_NEXT = select(func.min(_E.expires_at))
_REMOVE = delete(message_expiry).where(_E.uuid.in_(bindparam("uuids", expanding=True)))


class SqlExpiryStore:
    """:class:`carewire.core.stores.ExpiryStore` on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every operation."""
        self._db = db
        self._add = dialects.insert_ignore(db.dialect, message_expiry, ["uuid"])

    async def add_many(self, entries: Sequence[ExpiryEntry]) -> None:
        """Queue messages in the caller's transaction (or a new one); known uuids are kept."""
        if not entries:
            return
        rows = [
            {
                "uuid": e.uuid,
                "expires_at": e.expires_at,
                "kind": e.kind,
                "sender": e.sender,
                "peer": e.peer,
                "client_id": e.client_id,
            }
            for e in entries
        ]
        async with self._db.transaction("queue_message_expiry") as txn:
            await txn.conn.execute(self._add, rows)

    async def due(self, now: datetime, *, limit: int) -> list[ExpiryEntry]:
        """At most ``limit`` entries whose expiry is not after ``now``, soonest first."""
        async with self._db.read("due_message_expiry") as conn:
            rows = await conn.execute(_DUE, {"now": now, "limit": limit})
            return [
                ExpiryEntry(
                    uuid=r.uuid,
                    expires_at=r.expires_at,
                    kind=r.kind,
                    sender=r.sender,
                    peer=r.peer,
                    client_id=r.client_id,
                )
                for r in rows
            ]

    async def next_at(self) -> datetime | None:
        """The earliest expiry queued (an index lookup), or None."""
        async with self._db.read("next_message_expiry") as conn:
            value: datetime | None = (await conn.execute(_NEXT)).scalar_one()
        return value

    async def remove(self, uuids: Sequence[str]) -> None:
        """Forget entries; unknown uuids are ignored."""
        unique = sorted(set(uuids))
        if not unique:
            return
        async with self._db.transaction("remove_message_expiry") as txn:
            for start in range(0, len(unique), _CHUNK):
                await txn.conn.execute(_REMOVE, {"uuids": unique[start : start + _CHUNK]})
