"""Persistent storage on SQLite or PostgreSQL (SQLAlchemy Core, asyncio).

Implements the store protocols of :mod:`carewire.core.stores` (and those of the
data platform). The composition root (:mod:`carewire.assembly`) migrates,
opens one :class:`Database` and builds every store on it (:func:`build_stores`
for the kernel's).

Modules: :mod:`.database` (engines, named transactions), :mod:`.dialects`
(every SQLite/PostgreSQL difference), :mod:`.tables` (schema),
:mod:`.migrate` (Alembic), and one module per store.
"""

from __future__ import annotations

from carewire.core.stores import Stores
from carewire.security.envelope import Keyring
from carewire.storage.accounts import SqlAccountStore
from carewire.storage.blocking import SqlBlockingStore
from carewire.storage.busy import SqlBusyStore
from carewire.storage.database import Database, Transaction
from carewire.storage.expiry import SqlExpiryStore
from carewire.storage.fast import SqlFastTokenStore
from carewire.storage.held import SqlHeldStore
from carewire.storage.login_audit import SqlLoginAuditStore
from carewire.storage.muc import SqlMucStore
from carewire.storage.offline import SqlOfflineStore
from carewire.storage.pep import SqlPepStore
from carewire.storage.private import SqlPrivateStore
from carewire.storage.roster import SqlRosterStore
from carewire.storage.vcards import SqlVCardStore

__all__ = ["Database", "Transaction", "build_stores"]


def build_stores(db: Database, keyring: Keyring) -> Stores:
    """Every store, backed by ``db``; message content sealed with ``keyring``."""
    return Stores(
        accounts=SqlAccountStore(db),
        roster=SqlRosterStore(db),
        offline=SqlOfflineStore(db, keyring),
        held=SqlHeldStore(db, keyring),
        busy=SqlBusyStore(db),
        vcards=SqlVCardStore(db),
        private=SqlPrivateStore(db),
        blocking=SqlBlockingStore(db),
        login_audit=SqlLoginAuditStore(db),
        muc=SqlMucStore(db, keyring),
        expiry=SqlExpiryStore(db),
        pep=SqlPepStore(db, keyring),
        fast=SqlFastTokenStore(db, keyring),
    )
