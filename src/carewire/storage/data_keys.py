"""Wrapped data keys (:class:`carewire.security.keyring.DataKeyStore`).

Rows hold keys only as the key-encryption key wrapped them; the KEK itself
never reaches the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update

from carewire.security.keyring import StoredKey
from carewire.storage.database import Database
from carewire.storage.tables import data_keys

_K = data_keys.c
_LIST = select(_K.id, _K.purpose, _K.kek_id, _K.wrapped, _K.created_at, _K.active_from).order_by(
    _K.id
)
_INSERT = insert(data_keys).returning(_K.id)
_REWRAP = (
    update(data_keys)
    .where(_K.id == bindparam("key_id"), _K.kek_id == bindparam("old_kek_id"))
    .values(kek_id=bindparam("new_kek_id"), wrapped=bindparam("new_wrapped"))
)


class SqlDataKeyStore:
    """:class:`carewire.security.keyring.DataKeyStore` on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every operation."""
        self._db = db

    async def list(self) -> list[StoredKey]:
        """Every stored key, oldest first."""
        async with self._db.read("list_data_keys") as conn:
            rows = (await conn.execute(_LIST)).all()
        return [
            StoredKey(
                key_id=int(r[0]),
                purpose=r[1],
                kek_id=r[2],
                wrapped=bytes(r[3]),
                created_at=r[4],
                active_from=r[5],
            )
            for r in rows
        ]

    async def add(
        self, *, purpose: str, kek_id: str, wrapped: bytes, now: datetime, active_from: datetime
    ) -> int:
        """Store one wrapped key; returns its id."""
        params = {
            "purpose": purpose,
            "kek_id": kek_id,
            "wrapped": wrapped,
            "created_at": now,
            "active_from": active_from,
        }
        async with self._db.transaction("add_data_key") as txn:
            return int((await txn.conn.execute(_INSERT, params)).scalar_one())

    async def rewrap(self, changes: Sequence[tuple[StoredKey, str, bytes]]) -> int:
        """Replace wrapped keys, all or none: ``(old row, new kek id, new wrapped key)``.

        A row whose KEK changed meanwhile (another rotation) is left alone.

        Returns:
            How many rows changed.
        """
        if not changes:
            return 0
        changed = 0
        async with self._db.transaction("rewrap_data_keys") as txn:
            for old, kek_id, wrapped in changes:
                result = await txn.conn.execute(
                    _REWRAP,
                    {
                        "key_id": old.key_id,
                        "old_kek_id": old.kek_id,
                        "new_kek_id": kek_id,
                        "new_wrapped": wrapped,
                    },
                )
                changed += int(result.rowcount)
        return changed
