"""Persistent multi-user chat rooms (:class:`MucStore`, XEP-0045).

A room's configuration (its name and description may name a patient) and
subject are sealed with the keyring, bound to the room.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import bindparam, delete, select

from carewire.core.stores import StoredRoom
from carewire.security.envelope import Keyring
from carewire.storage import dialects
from carewire.storage.database import Database
from carewire.storage.tables import muc_affiliations, muc_rooms

log = logging.getLogger(__name__)

_R = muc_rooms.c
_A = muc_affiliations.c
_ROOMS = select(_R.name, _R.config, _R.subject, _R.subject_by)
_AFFILIATIONS = select(_A.room, _A.jid, _A.affiliation)
_CLEAR_AFFILIATIONS = delete(muc_affiliations).where(_A.room == bindparam("room"))
_DELETE = delete(muc_rooms).where(_R.name == bindparam("name"))


def value_aad(column: str, room: str) -> bytes:
    """The associated data of a room's ``config`` or ``subject``: table, column and room."""
    return f"muc_rooms.{column}|".encode() + room.encode()


class SqlMucStore:
    """:class:`carewire.core.stores.MucStore` on SQLAlchemy Core."""

    def __init__(self, db: Database, keyring: Keyring) -> None:
        """Prepare statements for ``db``'s dialect; seal with ``keyring``."""
        self._db = db
        self._keyring = keyring
        self._upsert = dialects.upsert(db.dialect, muc_rooms, ["name"])
        self._rooms = _ROOMS.order_by(dialects.binary_order(db.dialect, _R.name))

    async def rooms(self) -> list[StoredRoom]:
        """Every stored room with its affiliations, ordered by name (code point order)."""
        async with self._db.read("list_muc_rooms") as conn:
            rows = (await conn.execute(self._rooms)).all()
            links = (await conn.execute(_AFFILIATIONS)).all()
        affiliations: dict[str, dict[str, str]] = {}
        for room, jid, affiliation in links:
            affiliations.setdefault(room, {})[jid] = affiliation
        ring = self._keyring
        return [
            StoredRoom(
                name=name,
                config=ring.open_text(config, aad=value_aad("config", name)),
                subject=ring.open_text(subject, aad=value_aad("subject", name)),
                subject_by=subject_by,
                affiliations=affiliations.get(name, {}),
            )
            for name, config, subject, subject_by in rows
        ]

    async def save(self, room: StoredRoom) -> None:
        """Insert or replace the room and all of its affiliations, in one transaction."""
        params = {
            "name": room.name,
            "config": self._keyring.seal_text(room.config, aad=value_aad("config", room.name)),
            "subject": self._keyring.seal_text(room.subject, aad=value_aad("subject", room.name)),
            "subject_by": room.subject_by,
            "updated_at": datetime.now(UTC),
        }
        rows = [
            {"room": room.name, "jid": jid, "affiliation": affiliation}
            for jid, affiliation in sorted(room.affiliations.items())
        ]
        async with self._db.transaction("save_muc_room") as txn:
            await txn.conn.execute(self._upsert, params)
            await txn.conn.execute(_CLEAR_AFFILIATIONS, {"room": room.name})
            if rows:
                await txn.conn.execute(muc_affiliations.insert(), rows)

    async def delete(self, name: str) -> bool:
        """Forget the room (its affiliations go with it); False if it was not stored."""
        async with self._db.transaction("delete_muc_room") as txn:
            result = await txn.conn.execute(_DELETE, {"name": name})
        return bool(result.rowcount)
