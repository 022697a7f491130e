"""XEP-0484 FAST token seeds (:class:`carewire.core.stores.FastTokenStore`, docs/sasl2.md).

One row per account and client (the SASL2 user-agent id). The rows hold
random seeds, never tokens: a token is derived from its seed with the server
secret, which is not in the database (:mod:`carewire.core.fast`). The seeds
are also encrypted at rest with the data keys (docs/encryption.md), bound to
their column, account and client: the server secret sits in the data
directory, so a copy of the data directory with its database must not be
enough to rebuild tokens; the key-encryption key, kept outside it, is needed too.

Writes share transactions (group commit): a FAST login that promotes or
rotates a token waits until its row is committed — the client is about to
rely on the token it is sent — but the logins writing at the same moment are
committed together, in one transaction, by whichever of them holds the write
lock. Deletes take the same lock and drop the queued rows they supersede, so
the order of puts and deletes is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import bindparam, delete, select

from carewire.core.stores import FastRecord
from carewire.security.envelope import EncryptionError, Keyring
from carewire.storage import dialects
from carewire.storage.database import Database
from carewire.storage.tables import fast_tokens

log = logging.getLogger(__name__)

_F = fast_tokens.c
_GET = select(fast_tokens).where(
    _F.owner == bindparam("owner"), _F.agent_id == bindparam("agent_id")
)
_COLUMNS = (
    "mechanism",
    "current_seed",
    "current_expires_at",
    "current_count",
    "new_seed",
    "new_expires_at",
    "retired_seed",
    "updated_at",
)
_SEEDS = ("current_seed", "new_seed", "retired_seed")
#: A seed in clear (written while encryption at rest was off) is exactly this long.
SEED_BYTES = 32


def seed_aad(column: str, owner: str, agent_id: str) -> bytes:
    """The associated data of a sealed seed: its table, column, account and client."""
    return f"fast_tokens.{column}|{owner}|{agent_id}".encode()


class SqlFastTokenStore:
    """:class:`carewire.core.stores.FastTokenStore` on SQLAlchemy Core."""

    def __init__(self, db: Database, keyring: Keyring) -> None:
        """Use ``db`` for every operation and ``keyring`` to seal and open the seeds."""
        self._db = db
        self._keyring = keyring
        self._put = dialects.upsert(db.dialect, fast_tokens, ["owner", "agent_id"])
        self._lock = asyncio.Lock()  # one write at a time: the group commit
        self._pending: dict[tuple[str, str], dict[str, object]] = {}  # the latest row per client
        self._waiters: list[asyncio.Future[None]] = []  # the puts of the rows queued

    async def get(self, owner: str, agent_id: str) -> FastRecord | None:
        """The record of one client, or None."""
        params = {"owner": owner, "agent_id": agent_id}
        # The FAST login's hot path: an inline primary-key lookup on file SQLite.
        row = await self._db.fetch("get_fast_tokens", lambda c: c.execute(_GET, params).first())
        if row is None:
            return None
        values = {name: getattr(row, name) for name in _COLUMNS}
        try:
            for name in _SEEDS:
                values[name] = self._open(values[name], seed_aad(name, owner, agent_id))
        except EncryptionError as err:
            # Altered, moved between rows, or sealed under a key no longer loaded: the
            # client's tokens are unusable and it signs in with its password again.
            log.warning("FAST tokens of one client do not decrypt (%s): ignored", err.code)
            return None
        return FastRecord(owner=row.owner, agent_id=row.agent_id, **values)

    async def put(self, record: FastRecord) -> None:
        """Insert or replace the record of ``(owner, agent_id)``; returns once it is committed.

        Concurrent puts share one transaction (see the module docstring); if
        it fails, every put in it raises the error.
        """
        row = {name: getattr(record, name) for name in ("owner", "agent_id", *_COLUMNS)}
        for name in _SEEDS:
            seed = row[name]
            if seed is not None:
                aad = seed_aad(name, record.owner, record.agent_id)
                row[name] = self._keyring.seal(seed, aad=aad)
        if self._db.in_transaction():
            # Part of the caller's transaction (and its lock): written there, not batched.
            self._pending.pop((record.owner, record.agent_id), None)
            async with self._db.transaction("put_fast_tokens") as txn:
                await txn.conn.execute(self._put, row)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[(record.owner, record.agent_id)] = row
        self._waiters.append(done)
        try:
            async with self._lock:
                if not done.done():
                    await self._flush_locked()
            await done
        except BaseException:
            done.cancel()  # no-op once it has its outcome; else nobody is waiting for it
            raise

    async def _flush_locked(self) -> None:
        """Commit every queued row in one transaction and tell their puts (lock held)."""
        batch, waiters = self._pending, self._waiters
        self._pending, self._waiters = {}, []
        try:
            if batch:
                async with self._db.transaction("put_fast_tokens") as txn:
                    await txn.conn.execute(self._put, list(batch.values()))
        except Exception as exc:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        except BaseException:
            # Cancelled while writing: the rows go back in the queue for the next holder.
            self._pending = batch | self._pending
            self._waiters = waiters + self._waiters
            raise
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def delete(self, owner: str, agent_id: str) -> bool:
        """Forget one client's tokens; False if there were none."""
        stmt = delete(fast_tokens).where(_F.owner == owner, _F.agent_id == agent_id)
        async with self._write_lock():
            queued = self._pending.pop((owner, agent_id), None) is not None
            async with self._db.transaction("delete_fast_tokens") as txn:
                result = await txn.conn.execute(stmt)
        return bool(result.rowcount) or queued

    async def delete_owner(self, owner: str) -> int:
        """Forget every client's tokens of an account; how many clients had some."""
        async with self._write_lock():
            queued = [key for key in self._pending if key[0] == owner]
            for key in queued:
                del self._pending[key]
            async with self._db.transaction("delete_account_fast_tokens") as txn:
                result = await txn.conn.execute(delete(fast_tokens).where(_F.owner == owner))
        return max(int(result.rowcount), len(queued))

    def _write_lock(self) -> contextlib.AbstractAsyncContextManager[object]:
        """The group commit's lock — none inside the caller's transaction.

        That transaction holds the database's write lock, which a batch being
        committed by another task waits for: taking ours as well would deadlock.
        """
        return contextlib.nullcontext() if self._db.in_transaction() else self._lock

    def _open(self, blob: bytes | None, aad: bytes) -> bytes | None:
        """A stored seed in clear; one written in clear (encryption off) as it is."""
        if blob is None or len(blob) == SEED_BYTES:
            return blob
        return self._keyring.decrypt(bytes(blob), aad=aad)
