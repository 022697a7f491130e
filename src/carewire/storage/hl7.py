"""Control ids of applied HL7 messages (table ``hl7_messages``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from carewire.errors import ConflictError
from carewire.storage.database import Database
from carewire.storage.tables import hl7_messages

_SENDER = 200
_CONTROL_ID = 200


class SqlControlIdStore:
    """:class:`~carewire.adapters.hl7.store.ControlIdStore` on SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def is_seen(self, adapter_id: int, sender: str, control_id: str) -> bool:
        """Whether this sender's message ``control_id`` was applied by this adapter."""
        t = hl7_messages.c
        async with self._db.transaction("hl7_is_seen") as txn:
            row = (
                await txn.conn.execute(
                    select(t.id).where(
                        t.adapter_id == adapter_id,
                        t.sender == sender[:_SENDER],
                        t.control_id == control_id[:_CONTROL_ID],
                    )
                )
            ).first()
        return row is not None

    async def remember(
        self, adapter_id: int, sender: str, control_id: str, *, event: str, at: datetime
    ) -> None:
        """Record an applied message (in the caller's transaction)."""
        try:
            async with self._db.transaction("hl7_remember") as txn:
                await txn.conn.execute(
                    insert(hl7_messages).values(
                        adapter_id=adapter_id,
                        sender=sender[:_SENDER],
                        control_id=control_id[:_CONTROL_ID],
                        event=event[:16],
                        received_at=at,
                    )
                )
        except IntegrityError:
            raise ConflictError("this HL7 message was applied already") from None

    async def remember_many(
        self, adapter_id: int, items: Sequence[tuple[str, str, str]], *, at: datetime
    ) -> None:
        """Record several applied messages (sender, control id, event) in one statement."""
        rows = [
            {
                "adapter_id": adapter_id,
                "sender": sender[:_SENDER],
                "control_id": control_id[:_CONTROL_ID],
                "event": event[:16],
                "received_at": at,
            }
            for sender, control_id, event in items
        ]
        if not rows:
            return
        try:
            async with self._db.transaction("hl7_remember_many") as txn:
                await txn.conn.execute(insert(hl7_messages), rows)
        except IntegrityError:
            raise ConflictError("one of these HL7 messages was applied already") from None

    async def purge(self, before: datetime) -> int:
        """Forget messages received before ``before``."""
        async with self._db.transaction("hl7_purge") as txn:
            result = await txn.conn.execute(
                delete(hl7_messages).where(hl7_messages.c.received_at < before)
            )
        return int(result.rowcount or 0)
