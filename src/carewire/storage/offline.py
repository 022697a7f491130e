"""Offline messages (:class:`OfflineStore`, XEP-0160).

A stored message is committed before :meth:`SqlOfflineStore.store` returns,
so the sender's server may acknowledge it. Stores that arrive while another
is being written share the next commit (group commit): an alert to 200
offline recipients is a few transactions, not 200, and none of them waits
for the other 199 to commit one by one. Expired messages are invisible
to :meth:`~SqlOfflineStore.fetch` and deleted by
:meth:`~SqlOfflineStore.purge_expired`. Stanzas are sealed with the keyring,
bound to their owner (a stanza moved to another owner's rows does not decrypt).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from carewire.core.stores import OfflineMessage
from carewire.errors import NotFoundError, UnavailableError
from carewire.security.envelope import Keyring
from carewire.storage.database import Database
from carewire.storage.tables import UTCDateTime, accounts, offline_messages

log = logging.getLogger(__name__)

_M = offline_messages.c
#: Ids per ``DELETE … IN (…)`` statement (far below every bind limit).
_DELETE_CHUNK = 500

_OWNER_EXISTS = select(accounts.c.login).where(accounts.c.login == bindparam("owner"))
_OWNERS_EXIST = select(accounts.c.login).where(
    accounts.c.login.in_(bindparam("owners", expanding=True))
)
_INSERT = insert(offline_messages).returning(_M.id)
_FETCH = (
    select(_M.id, _M.stanza, _M.stamp, _M.expires_at)
    .where(_M.owner == bindparam("owner"), _M.expires_at > bindparam("now", type_=UTCDateTime()))
    .order_by(_M.stamp, _M.id)
)
_DELETE = delete(offline_messages).where(
    _M.owner == bindparam("owner"), _M.id.in_(bindparam("ids", expanding=True))
)
_COUNT = select(func.count()).select_from(offline_messages).where(_M.owner == bindparam("owner"))
_OWNERS = select(_M.owner).distinct()
_PURGE = delete(offline_messages).where(_M.expires_at <= bindparam("now", type_=UTCDateTime()))


@dataclass(slots=True, kw_only=True)
class _Pending:
    """A message waiting for the next commit, and the future its :meth:`store` awaits."""

    owner: str
    row: dict[str, object]
    done: asyncio.Future[int]
    result: int | None = None

    def fail(self, exc: Exception) -> None:
        """Fail the waiting store (once)."""
        if not self.done.done():
            self.done.set_exception(exc)


def stanza_aad(owner: str) -> bytes:
    """The associated data of an offline stanza: its table, column and owner."""
    return b"offline_messages.stanza|" + owner.encode()


class SqlOfflineStore:
    """:class:`carewire.core.stores.OfflineStore` on SQLAlchemy Core."""

    def __init__(self, db: Database, keyring: Keyring) -> None:
        """Use ``db`` for every operation; seal stanzas with ``keyring``."""
        self._db = db
        self._keyring = keyring
        self._pending: list[_Pending] = []
        self._writing = asyncio.Lock()

    async def store(self, owner: str, stanza: str, *, stamp: datetime, expires_at: datetime) -> int:
        """Persist one message durably; returns its id.

        Raises:
            NotFoundError: ``owner`` has no account.
        """
        sealed = self._keyring.seal_text(stanza, aad=stanza_aad(owner))
        row = {"owner": owner, "stanza": sealed, "stamp": stamp, "expires_at": expires_at}
        pending = _Pending(owner=owner, row=row, done=asyncio.get_running_loop().create_future())
        self._pending.append(pending)
        async with self._writing:
            # Whoever holds the lock writes everything queued so far, its own row included
            # unless an earlier holder already took it.
            if self._pending:
                batch, self._pending = self._pending, []
                await self._write(batch)
        return await pending.done

    async def _write(self, batch: list[_Pending]) -> None:
        """Insert ``batch`` in one transaction; a row whose account is gone fails alone."""
        owners = sorted({p.owner for p in batch})
        try:
            async with self._db.transaction("store_offline_messages") as txn:
                found = await txn.conn.execute(_OWNERS_EXIST, {"owners": owners})
                known = {r[0] for r in found}
                for p in batch:
                    if p.owner not in known:
                        p.fail(NotFoundError(f"no account {p.owner!r}"))
                    else:
                        p.result = int((await txn.conn.execute(_INSERT, p.row)).scalar_one())
        except IntegrityError:  # an account went away meanwhile: each row on its own
            if len(batch) == 1:
                batch[0].fail(NotFoundError(f"no account {batch[0].owner!r}"))
                return
            for p in batch:
                p.result = None
                await self._write([p])
            return
        except Exception as exc:  # each waiting store raises it (its future carries it)
            for p in batch:
                p.fail(exc)
            return
        except BaseException:
            # Cancelled while writing: the others' stores fail with an error of their own.
            for p in batch:
                p.fail(UnavailableError("offline store interrupted"))
            raise
        for p in batch:
            if p.result is not None:
                p.done.set_result(p.result)

    async def fetch(self, owner: str, *, now: datetime) -> list[OfflineMessage]:
        """Unexpired messages for ``owner``, oldest first (not removed)."""
        async with self._db.read("fetch_offline_messages") as conn:
            rows = (await conn.execute(_FETCH, {"owner": owner, "now": now})).all()
        aad = stanza_aad(owner)
        return [
            OfflineMessage(
                id=r[0],
                owner=owner,
                stanza=self._keyring.open_text(r[1], aad=aad),
                stamp=r[2],
                expires_at=r[3],
            )
            for r in rows
        ]

    async def delete(self, owner: str, ids: Sequence[int]) -> None:
        """Remove delivered messages (ids of other owners are left alone)."""
        if not ids:
            return
        unique = sorted(set(ids))
        async with self._db.transaction("delete_offline_messages") as txn:
            for start in range(0, len(unique), _DELETE_CHUNK):
                chunk = unique[start : start + _DELETE_CHUNK]
                await txn.conn.execute(_DELETE, {"owner": owner, "ids": chunk})

    async def count(self, owner: str) -> int:
        """Number of stored messages for ``owner`` (expired but unpurged included)."""
        async with self._db.read("count_offline_messages") as conn:
            return int((await conn.execute(_COUNT, {"owner": owner})).scalar_one())

    async def owners(self) -> set[str]:
        """Logins that have at least one stored message."""
        async with self._db.read("offline_owners") as conn:
            return set((await conn.execute(_OWNERS)).scalars())

    async def purge_expired(self, now: datetime) -> int:
        """Delete messages whose ``expires_at`` is not after ``now``; returns how many."""
        async with self._db.transaction("purge_offline_messages") as txn:
            result = await txn.conn.execute(_PURGE, {"now": now})
        if result.rowcount:
            log.info("purged %d expired offline messages", result.rowcount)
        return int(result.rowcount)
