"""Messages held for busy users (:class:`HeldStore`, interruption control).

A held message is committed before :meth:`SqlHeldStore.hold` returns, so a
message the server took is never lost to a restart while it waits. Stanzas
are sealed with the keyring, bound to their owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from carewire.core.stores import HeldMessage
from carewire.errors import NotFoundError
from carewire.security.envelope import Keyring
from carewire.storage.database import Database
from carewire.storage.tables import accounts, held_messages

_M = held_messages.c
_DELETE_CHUNK = 500

_OWNER_EXISTS = select(accounts.c.login).where(accounts.c.login == bindparam("owner"))
_INSERT = insert(held_messages).returning(_M.id)
_FETCH = (
    select(_M.id, _M.stanza, _M.stamp, _M.reason)
    .where(_M.owner == bindparam("owner"))
    .order_by(_M.stamp, _M.id)
)
_DELETE = delete(held_messages).where(
    _M.owner == bindparam("owner"), _M.id.in_(bindparam("ids", expanding=True))
)
_OWNERS = select(_M.owner, func.count()).group_by(_M.owner)


def stanza_aad(owner: str) -> bytes:
    """The associated data of a held stanza: its table, column and owner."""
    return b"held_messages.stanza|" + owner.encode()


class SqlHeldStore:
    """:class:`carewire.core.stores.HeldStore` on SQLAlchemy Core."""

    def __init__(self, db: Database, keyring: Keyring) -> None:
        """Use ``db`` for every operation; seal stanzas with ``keyring``."""
        self._db = db
        self._keyring = keyring

    async def hold(self, owner: str, stanza: str, *, stamp: datetime, reason: str) -> int:
        """Persist one held message durably; returns its id.

        Raises:
            NotFoundError: ``owner`` has no account.
        """
        sealed = self._keyring.seal_text(stanza, aad=stanza_aad(owner))
        params = {"owner": owner, "stanza": sealed, "stamp": stamp, "reason": reason}
        try:
            async with self._db.transaction("hold_message") as txn:
                found = await txn.conn.execute(_OWNER_EXISTS, {"owner": owner})
                if found.first() is None:
                    raise NotFoundError(f"no account {owner!r}")
                return int((await txn.conn.execute(_INSERT, params)).scalar_one())
        except IntegrityError as exc:  # the account went away meanwhile
            raise NotFoundError(f"no account {owner!r}") from exc

    async def fetch(self, owner: str) -> list[HeldMessage]:
        """The messages held for ``owner``, oldest first (not removed)."""
        async with self._db.read("fetch_held_messages") as conn:
            rows = (await conn.execute(_FETCH, {"owner": owner})).all()
        aad = stanza_aad(owner)
        return [
            HeldMessage(
                id=r[0],
                owner=owner,
                stanza=self._keyring.open_text(r[1], aad=aad),
                stamp=r[2],
                reason=r[3],
            )
            for r in rows
        ]

    async def delete(self, owner: str, ids: Sequence[int]) -> None:
        """Remove released messages (ids of other owners are left alone)."""
        unique = sorted(set(ids))
        if not unique:
            return
        async with self._db.transaction("delete_held_messages") as txn:
            for start in range(0, len(unique), _DELETE_CHUNK):
                chunk = unique[start : start + _DELETE_CHUNK]
                await txn.conn.execute(_DELETE, {"owner": owner, "ids": chunk})

    async def owners(self) -> dict[str, int]:
        """Logins with held messages, and how many each."""
        async with self._db.read("held_owners") as conn:
            return {str(r[0]): int(r[1]) for r in await conn.execute(_OWNERS)}
