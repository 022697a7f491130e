"""XEP-0484 FAST token seeds (:class:`carewire.core.stores.FastTokenStore`, docs/sasl2.md).

One row per account and client (the SASL2 user-agent id). The rows hold
random seeds, never tokens: a token is derived from its seed with the server
secret, which is not in the database (:mod:`carewire.core.fast`).
"""

from __future__ import annotations

from sqlalchemy import bindparam, delete, select

from carewire.core.stores import FastRecord
from carewire.storage import dialects
from carewire.storage.database import Database
from carewire.storage.tables import fast_tokens

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


class SqlFastTokenStore:
    """:class:`carewire.core.stores.FastTokenStore` on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every operation."""
        self._db = db
        self._put = dialects.upsert(db.dialect, fast_tokens, ["owner", "agent_id"])

    async def get(self, owner: str, agent_id: str) -> FastRecord | None:
        """The record of one client, or None."""
        params = {"owner": owner, "agent_id": agent_id}
        # The FAST login's hot path: an inline primary-key lookup on file SQLite.
        row = await self._db.fetch("get_fast_tokens", lambda c: c.execute(_GET, params).first())
        if row is None:
            return None
        values = {name: getattr(row, name) for name in _COLUMNS}
        return FastRecord(owner=row.owner, agent_id=row.agent_id, **values)

    async def put(self, record: FastRecord) -> None:
        """Insert or replace the record of ``(owner, agent_id)``."""
        row = {name: getattr(record, name) for name in ("owner", "agent_id", *_COLUMNS)}
        async with self._db.transaction("put_fast_tokens") as txn:
            await txn.conn.execute(self._put, row)

    async def delete(self, owner: str, agent_id: str) -> bool:
        """Forget one client's tokens; False if there were none."""
        stmt = delete(fast_tokens).where(_F.owner == owner, _F.agent_id == agent_id)
        async with self._db.transaction("delete_fast_tokens") as txn:
            result = await txn.conn.execute(stmt)
        return bool(result.rowcount)

    async def delete_owner(self, owner: str) -> int:
        """Forget every client's tokens of an account; how many clients had some."""
        async with self._db.transaction("delete_account_fast_tokens") as txn:
            result = await txn.conn.execute(delete(fast_tokens).where(_F.owner == owner))
        return int(result.rowcount)
