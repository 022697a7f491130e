"""Rosters, roster versions and pending inbound subscriptions (:class:`RosterStore`).

Every change to an owner's items bumps ``roster_versions.version`` in the
same transaction (RFC 6121 §2.6); the version starts at 0 for a roster that
was never changed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select
from sqlalchemy.exc import IntegrityError

from carewire.core.stores import RosterItem, Subscription
from carewire.errors import NotFoundError
from carewire.storage import dialects
from carewire.storage.database import Database, Transaction
from carewire.storage.tables import pending_subscriptions, roster_items, roster_versions

log = logging.getLogger(__name__)

_I = roster_items.c
_V = roster_versions.c
_P = pending_subscriptions.c
_ITEM_COLUMNS = (_I.contact, _I.name, _I.subscription, _I.is_pending_out, _I.is_approved, _I.groups)

_GET_VERSION = select(_V.version).where(_V.owner == bindparam("owner"))
_GET_ITEMS = select(*_ITEM_COLUMNS).where(_I.owner == bindparam("owner")).order_by(_I.contact)
_GET_ITEM = select(*_ITEM_COLUMNS).where(
    _I.owner == bindparam("owner"), _I.contact == bindparam("contact")
)
_DELETE_ITEM = delete(roster_items).where(
    _I.owner == bindparam("owner"), _I.contact == bindparam("contact")
)
_DELETE_PENDING = delete(pending_subscriptions).where(
    _P.owner == bindparam("owner"), _P.contact == bindparam("contact")
)
_LIST_PENDING = (
    select(_P.contact, _P.stanza)
    .where(_P.owner == bindparam("owner"))
    .order_by(_P.created_at, _P.contact)
)


def _item(row: Sequence[Any]) -> RosterItem:
    return RosterItem(
        contact=row[0],
        name=row[1],
        subscription=Subscription(row[2]),
        is_pending_out=row[3],
        is_approved=row[4],
        groups=tuple(json.loads(row[5])),
    )


class SqlRosterStore:
    """:class:`carewire.core.stores.RosterStore` on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Prepare statements for ``db``'s dialect."""
        self._db = db
        d = db.dialect
        self._upsert_item = dialects.upsert(d, roster_items, ["owner", "contact"])
        self._bump_version = (
            dialects.upsert(
                d, roster_versions, ["owner"], update=(), set_={"version": _V.version + 1}
            )
            .values(owner=bindparam("owner"), version=1)
            .returning(_V.version)
        )
        # A repeated request replaces the stanza but keeps its place in line.
        self._upsert_pending = dialects.upsert(
            d, pending_subscriptions, ["owner", "contact"], update=["stanza"]
        )

    async def get_roster(self, owner: str) -> tuple[int, list[RosterItem]]:
        """(version, items); version is 0 for an empty, never-changed roster."""
        params = {"owner": owner}

        def query(conn: Connection) -> tuple[int, list[RosterItem]]:
            # Version first: a concurrent change then shows up as a newer item
            # under an older version (re-sent later), never the other way round.
            version = conn.execute(_GET_VERSION, params).scalar()
            return version or 0, [_item(row) for row in conn.execute(_GET_ITEMS, params)]

        return await self._db.fetch("get_roster", query)

    async def get_item(self, owner: str, contact: str) -> RosterItem | None:
        """One item or None."""
        async with self._db.read("get_roster_item") as conn:
            row = (await conn.execute(_GET_ITEM, {"owner": owner, "contact": contact})).first()
        return None if row is None else _item(row)

    async def set_item(self, owner: str, item: RosterItem) -> int:
        """Insert or replace the item; returns the new roster version.

        Raises:
            NotFoundError: ``owner`` has no account.
        """
        params = {
            "owner": owner,
            "contact": item.contact,
            "name": item.name,
            "subscription": Subscription(item.subscription).value,
            "is_pending_out": item.is_pending_out,
            "is_approved": item.is_approved,
            "groups": json.dumps(list(item.groups)),
        }
        try:
            async with self._db.transaction("set_roster_item") as txn:
                await txn.conn.execute(self._upsert_item, params)
                return await self._next_version(txn, owner)
        except IntegrityError as exc:
            raise NotFoundError(f"no account {owner!r}") from exc

    async def remove_item(self, owner: str, contact: str) -> int | None:
        """Remove the item; returns the new version, or None if there was none."""
        async with self._db.transaction("remove_roster_item") as txn:
            result = await txn.conn.execute(_DELETE_ITEM, {"owner": owner, "contact": contact})
            if result.rowcount == 0:
                return None
            return await self._next_version(txn, owner)

    async def _next_version(self, txn: Transaction, owner: str) -> int:
        result = await txn.conn.execute(self._bump_version, {"owner": owner})
        return int(result.scalar_one())

    async def add_pending_in(self, owner: str, contact: str, stanza: str) -> None:
        """Remember an inbound subscription request (stanza XML) until answered.

        A repeated request replaces the stored stanza and keeps its position.

        Raises:
            NotFoundError: ``owner`` has no account.
        """
        params = {
            "owner": owner,
            "contact": contact,
            "stanza": stanza,
            "created_at": datetime.now(UTC),
        }
        try:
            async with self._db.transaction("add_pending_subscription") as txn:
                await txn.conn.execute(self._upsert_pending, params)
        except IntegrityError as exc:
            raise NotFoundError(f"no account {owner!r}") from exc

    async def remove_pending_in(self, owner: str, contact: str) -> bool:
        """Forget an inbound request; True if there was one."""
        async with self._db.transaction("remove_pending_subscription") as txn:
            result = await txn.conn.execute(_DELETE_PENDING, {"owner": owner, "contact": contact})
        return result.rowcount > 0

    async def list_pending_in(self, owner: str) -> list[tuple[str, str]]:
        """Pending inbound requests as (contact, stanza XML), oldest first."""
        return await self._db.fetch(
            "list_pending_subscriptions",
            lambda conn: [
                (row[0], row[1]) for row in conn.execute(_LIST_PENDING, {"owner": owner})
            ],
        )
