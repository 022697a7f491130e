"""Private XML storage (:class:`PrivateStore`, XEP-0049)."""

from __future__ import annotations

import logging

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from carewire.errors import NotFoundError
from carewire.storage import dialects
from carewire.storage.database import Database
from carewire.storage.tables import private_storage

log = logging.getLogger(__name__)

_S = private_storage.c
_GET = select(_S.xml).where(_S.owner == bindparam("owner"), _S.key == bindparam("key"))
_GET_ALL = select(_S.owner, _S.xml).where(_S.key == bindparam("key"))


class SqlPrivateStore:
    """:class:`carewire.core.stores.PrivateStore` on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Prepare statements for ``db``'s dialect."""
        self._db = db
        self._upsert = dialects.upsert(db.dialect, private_storage, ["owner", "key"])

    async def get(self, owner: str, key: str) -> str | None:
        """The stored element XML or None."""
        async with self._db.read("get_private_xml") as conn:
            return (await conn.execute(_GET, {"owner": owner, "key": key})).scalar()

    async def get_all(self, key: str) -> dict[str, str]:
        """Every owner's element stored under ``key``."""
        async with self._db.read("get_private_xml_of_all") as conn:
            rows = await conn.execute(_GET_ALL, {"key": key})
            return {owner: xml for owner, xml in rows.all()}

    async def set(self, owner: str, key: str, xml: str) -> None:
        """Replace the element stored under ``key`` (``{namespace}localname``).

        Raises:
            NotFoundError: ``owner`` has no account.
        """
        try:
            async with self._db.transaction("set_private_xml") as txn:
                await txn.conn.execute(self._upsert, {"owner": owner, "key": key, "xml": xml})
        except IntegrityError as exc:
            raise NotFoundError(f"no account {owner!r}") from exc
