"""Persistent storage on SQLite or PostgreSQL (SQLAlchemy Core, asyncio).

Implements the store protocols of :mod:`carewire.core.stores`. Typical use::

    await migrate.upgrade(url)            # at init/start; open_stores never migrates
    db, stores = await open_stores(url)
    ...
    await db.close()

Modules: :mod:`.database` (engines, named transactions), :mod:`.dialects`
(every SQLite/PostgreSQL difference), :mod:`.tables` (schema),
:mod:`.migrate` (Alembic), and one module per store.
"""

from __future__ import annotations

from carewire.core.stores import Stores
from carewire.storage.accounts import SqlAccountStore
from carewire.storage.blocking import SqlBlockingStore
from carewire.storage.database import Database, Transaction
from carewire.storage.login_audit import SqlLoginAuditStore
from carewire.storage.muc import SqlMucStore
from carewire.storage.offline import SqlOfflineStore
from carewire.storage.private import SqlPrivateStore
from carewire.storage.roster import SqlRosterStore
from carewire.storage.vcards import SqlVCardStore

__all__ = ["Database", "Transaction", "build_stores", "open_stores"]


def build_stores(db: Database) -> Stores:
    """Every store, backed by ``db``."""
    return Stores(
        accounts=SqlAccountStore(db),
        roster=SqlRosterStore(db),
        offline=SqlOfflineStore(db),
        vcards=SqlVCardStore(db),
        private=SqlPrivateStore(db),
        blocking=SqlBlockingStore(db),
        login_audit=SqlLoginAuditStore(db),
        muc=SqlMucStore(db),
    )


async def open_stores(url: str) -> tuple[Database, Stores]:
    """Open the database at ``url`` and build every store on it.

    The schema must be current (see :func:`carewire.storage.migrate.upgrade`).

    Args:
        url: ``sqlite:///path`` or ``postgresql://…`` (see :meth:`Database.open`).

    Returns:
        (the database, to close at shutdown; the stores).
    """
    db = await Database.open(url)
    return db, build_stores(db)
