"""Block lists (:class:`BlockingStore`, XEP-0191)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import bindparam, delete, select
from sqlalchemy.exc import IntegrityError

from carewire.errors import NotFoundError
from carewire.storage import dialects
from carewire.storage.database import Database
from carewire.storage.tables import blocklist

log = logging.getLogger(__name__)

_B = blocklist.c
_LIST = select(_B.jid).where(_B.owner == bindparam("owner"))
_REMOVE = delete(blocklist).where(_B.owner == bindparam("owner"), _B.jid == bindparam("jid"))
_CLEAR = delete(blocklist).where(_B.owner == bindparam("owner"))
_OWNERS = select(_B.owner).distinct()


class SqlBlockingStore:
    """:class:`carewire.core.stores.BlockingStore` on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Prepare statements for ``db``'s dialect."""
        self._db = db
        self._add = dialects.insert_ignore(db.dialect, blocklist, ["owner", "jid"])

    async def list(self, owner: str) -> list[str]:
        """Blocked JIDs, sorted (code point order)."""
        async with self._db.read("list_blocked") as conn:
            jids = (await conn.execute(_LIST, {"owner": owner})).scalars().all()
        return sorted(jids)

    async def owners(self) -> set[str]:
        """Logins that block at least one JID."""
        async with self._db.read("blocking_owners") as conn:
            return set((await conn.execute(_OWNERS)).scalars().all())

    async def add(self, owner: str, jids: Sequence[str]) -> None:
        """Block JIDs (idempotent).

        Raises:
            NotFoundError: ``owner`` has no account.
        """
        rows = [{"owner": owner, "jid": jid} for jid in dict.fromkeys(jids)]
        if not rows:
            return
        try:
            async with self._db.transaction("block_jids") as txn:
                await txn.conn.execute(self._add, rows)
        except IntegrityError as exc:
            raise NotFoundError(f"no account {owner!r}") from exc

    async def remove(self, owner: str, jids: Sequence[str]) -> None:
        """Unblock JIDs (idempotent)."""
        rows = [{"owner": owner, "jid": jid} for jid in dict.fromkeys(jids)]
        if not rows:
            return
        async with self._db.transaction("unblock_jids") as txn:
            await txn.conn.execute(_REMOVE, rows)

    async def clear(self, owner: str) -> None:
        """Unblock everything."""
        async with self._db.transaction("clear_blocklist") as txn:
            await txn.conn.execute(_CLEAR, {"owner": owner})
