"""vCard-temp documents (:class:`VCardStore`, XEP-0054)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from carewire.errors import NotFoundError
from carewire.storage import dialects
from carewire.storage.database import Database
from carewire.storage.tables import vcards

log = logging.getLogger(__name__)

_GET = select(vcards.c.xml).where(vcards.c.owner == bindparam("owner"))


class SqlVCardStore:
    """:class:`carewire.core.stores.VCardStore` on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Prepare statements for ``db``'s dialect."""
        self._db = db
        self._upsert = dialects.upsert(db.dialect, vcards, ["owner"])

    async def get(self, owner: str) -> str | None:
        """The stored ``<vCard/>`` XML or None."""
        async with self._db.read("get_vcard") as conn:
            return (await conn.execute(_GET, {"owner": owner})).scalar()

    async def set(self, owner: str, xml: str) -> None:
        """Replace the vCard.

        Raises:
            NotFoundError: ``owner`` has no account.
        """
        params = {"owner": owner, "xml": xml, "updated_at": datetime.now(UTC)}
        try:
            async with self._db.transaction("set_vcard") as txn:
                await txn.conn.execute(self._upsert, params)
        except IntegrityError as exc:
            raise NotFoundError(f"no account {owner!r}") from exc
