"""The fencing tokens of cluster-wide singleton jobs (table ``cluster_fence``).

A leader presents its lease's token before each run of a singleton job
(:mod:`carewire.cluster.lease_gate`). The database keeps, per group, the
highest token presented: an equal or higher one advances it, a lower one is
refused. Because PostgreSQL decides, a node that still believes it leads
after another node took the lease over (it was paused, its Redis link broke)
cannot run a job once the new leader has run one.
"""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from carewire.storage.database import Database
from carewire.storage.tables_cluster import cluster_fence

_F = cluster_fence.c


class SqlFenceStore:
    """``cluster_fence`` on the shared database: the :class:`FenceStore` of the lease gate."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def advance(self, name: str, token: int) -> bool:
        """Move ``name``'s token up to ``token``; False if a higher one was presented before."""
        for _ in range(2):  # a concurrent first insert makes the second round an update
            try:
                async with self._db.transaction("advance_cluster_fence") as txn:
                    moved = await txn.conn.execute(
                        update(cluster_fence)
                        .where(_F.name == name, _F.token <= token)
                        .values(token=token)
                    )
                    if moved.rowcount:
                        return True
                    held = (
                        await txn.conn.execute(select(_F.token).where(_F.name == name))
                    ).scalar()
                    if held is not None:
                        return False
                    await txn.conn.execute(insert(cluster_fence).values(name=name, token=token))
                    return True
            except IntegrityError:
                continue
        return False

    async def current(self, name: str) -> int | None:
        """The highest token presented for ``name`` (None before its first leader)."""
        async with self._db.read("cluster_fence") as conn:
            value = (await conn.execute(select(_F.token).where(_F.name == name))).scalar()
        return None if value is None else int(value)
