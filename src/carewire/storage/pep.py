"""PEP nodes and persistent items (:class:`PepStore`, XEP-0163 and XEP-0223).

Item payloads are sealed with the keyring (docs/encryption.md), bound to their
node and item id; node configurations are not (they hold no user content).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from carewire.core.stores import PepItem, PepNode, PepPublished
from carewire.errors import ConflictError, NotFoundError
from carewire.security.envelope import Keyring
from carewire.storage.database import Database
from carewire.storage.tables_pep import pep_items, pep_nodes

log = logging.getLogger(__name__)

_N = pep_nodes.c
_I = pep_items.c
_NODE = select(_N.id, _N.owner, _N.node, _N.config).where(
    _N.owner == bindparam("owner"), _N.node == bindparam("node")
)
_ITEM_COLS = (_I.item_id, _I.payload, _I.publisher, _I.published_at, _I.node_id)


def payload_aad(node_id: int, item_id: str) -> bytes:
    """The associated data a payload is sealed with (moved to another node or id, it
    no longer opens); the node's row id stands for its owner and name."""
    return f"pep_items.payload|{node_id}|{item_id}".encode()


def _node(row: Sequence[Any]) -> PepNode:
    return PepNode(owner=row[1], node=row[2], config=row[3])


def _item(row: Sequence[Any]) -> PepItem:
    return PepItem(item_id=row[0], payload=row[1], publisher=row[2], published_at=row[3])


async def _node_id(conn: AsyncConnection, owner: str, node: str) -> int | None:
    row = (await conn.execute(_NODE, {"owner": owner, "node": node})).first()
    return None if row is None else int(row[0])


async def _trim(conn: AsyncConnection, node_id: int, max_items: int) -> list[str]:
    """Remove all but the ``max_items`` newest items of the node; their ids."""
    rows = await conn.execute(
        select(_I.item_id).where(_I.node_id == node_id).order_by(_I.seq.desc()).offset(max_items)
    )
    gone = [r[0] for r in rows.all()]
    if gone:
        await conn.execute(delete(pep_items).where(_I.node_id == node_id, _I.item_id.in_(gone)))
    return gone


class SqlPepStore:
    """:class:`carewire.core.stores.PepStore` on SQLAlchemy Core."""

    def __init__(self, db: Database, keyring: Keyring) -> None:
        """Use ``db``; seal payloads with ``keyring``."""
        self._db = db
        self._keyring = keyring

    def _open(self, row: Sequence[Any]) -> PepItem:
        item = _item(row)
        aad = payload_aad(int(row[4]), item.item_id)
        return replace(item, payload=self._keyring.open_text(item.payload, aad=aad))

    async def get_node(self, owner: str, node: str) -> PepNode | None:
        """The node or None."""
        async with self._db.read("get_pep_node") as conn:
            row = (await conn.execute(_NODE, {"owner": owner, "node": node})).first()
        return None if row is None else _node(row)

    async def list_nodes(self, owner: str) -> list[PepNode]:
        """Every node of ``owner``, by name."""
        query = select(_N.id, _N.owner, _N.node, _N.config).where(_N.owner == owner)
        async with self._db.read("list_pep_nodes") as conn:
            rows = await conn.execute(query.order_by(_N.node))
        return [_node(r) for r in rows.all()]

    async def nodes_named(self, node: str) -> list[PepNode]:
        """Every account's node called ``node``."""
        query = select(_N.id, _N.owner, _N.node, _N.config).where(_N.node == node)
        async with self._db.read("pep_nodes_named") as conn:
            rows = await conn.execute(query.order_by(_N.owner))
        return [_node(r) for r in rows.all()]

    async def create_node(self, owner: str, node: str, config: str) -> None:
        """Create a node.

        Raises:
            ConflictError: The node exists.
            NotFoundError: ``owner`` has no account.
        """
        async with self._db.transaction("create_pep_node") as txn:
            if await _node_id(txn.conn, owner, node) is not None:
                raise ConflictError(f"node {node!r} exists")
            try:
                await txn.conn.execute(
                    insert(pep_nodes).values(
                        owner=owner, node=node, config=config, created_at=datetime.now(UTC)
                    )
                )
            except IntegrityError as exc:
                raise NotFoundError(f"no account {owner!r}") from exc

    async def set_config(self, owner: str, node: str, config: str, *, max_items: int) -> list[str]:
        """Replace the configuration and trim the items to ``max_items``.

        Raises:
            NotFoundError: No such node.
        """
        async with self._db.transaction("configure_pep_node") as txn:
            node_id = await _node_id(txn.conn, owner, node)
            if node_id is None:
                raise NotFoundError(f"no node {node!r}")
            await txn.conn.execute(update(pep_nodes).where(_N.id == node_id).values(config=config))
            return await _trim(txn.conn, node_id, max_items)

    async def delete_node(self, owner: str, node: str) -> bool:
        """Delete the node with its items; False if there was none."""
        async with self._db.transaction("delete_pep_node") as txn:
            node_id = await _node_id(txn.conn, owner, node)
            if node_id is None:
                return False
            await txn.conn.execute(delete(pep_items).where(_I.node_id == node_id))
            await txn.conn.execute(delete(pep_nodes).where(_N.id == node_id))
            return True

    async def publish(
        self, owner: str, node: str, item: PepItem, *, config: str, max_items: int
    ) -> PepPublished:
        """Store ``item`` as the node's newest, creating the node with ``config`` if needed.

        Raises:
            NotFoundError: ``owner`` has no account.
        """
        # A conflict is a missing account, or another publish that created the node (or
        # the item) first: the second attempt finds them.
        for attempt in (1, 2):
            try:
                async with self._db.transaction("publish_pep_item") as txn:
                    return await self._publish(txn.conn, owner, node, item, config, max_items)
            except IntegrityError as exc:
                if attempt == 2:
                    raise NotFoundError(f"no account {owner!r}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _publish(
        self,
        conn: AsyncConnection,
        owner: str,
        node: str,
        item: PepItem,
        config: str,
        max_items: int,
    ) -> PepPublished:
        row = (await conn.execute(_NODE, {"owner": owner, "node": node})).first()
        created = row is None
        if row is None:
            result = await conn.execute(
                insert(pep_nodes).values(
                    owner=owner, node=node, config=config, created_at=item.published_at
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            node_id = int(key[0])
        else:
            node_id, config = int(row[0]), row[3]
        top = await conn.execute(select(func.max(_I.seq)).where(_I.node_id == node_id))
        seq = (top.scalar() or 0) + 1
        await conn.execute(
            delete(pep_items).where(_I.node_id == node_id, _I.item_id == item.item_id)
        )
        await conn.execute(
            insert(pep_items).values(
                node_id=node_id,
                item_id=item.item_id,
                seq=seq,
                payload=self._keyring.seal_text(
                    item.payload, aad=payload_aad(node_id, item.item_id)
                ),
                publisher=item.publisher,
                published_at=item.published_at,
            )
        )
        evicted = await _trim(conn, node_id, max_items)
        return PepPublished(config=config, created=created, evicted=tuple(evicted))

    async def items(
        self, owner: str, node: str, *, ids: Sequence[str] | None = None, limit: int | None = None
    ) -> list[PepItem]:
        """Items newest first, only ``ids`` if given, at most ``limit``."""
        query = (
            select(*_ITEM_COLS)
            .select_from(pep_items.join(pep_nodes, _N.id == _I.node_id))
            .where(_N.owner == owner, _N.node == node)
            .order_by(_I.seq.desc())
        )
        if ids is not None:
            query = query.where(_I.item_id.in_(list(ids)))
        if limit is not None:
            query = query.limit(limit)
        async with self._db.read("get_pep_items") as conn:
            rows = await conn.execute(query)
        return [self._open(r) for r in rows.all()]

    async def retract(self, owner: str, node: str, item_id: str) -> bool:
        """Remove one item; False if there was none."""
        async with self._db.transaction("retract_pep_item") as txn:
            node_id = await _node_id(txn.conn, owner, node)
            if node_id is None:
                return False
            result = await txn.conn.execute(
                delete(pep_items).where(_I.node_id == node_id, _I.item_id == item_id)
            )
            return bool(result.rowcount)

    async def purge(self, owner: str, node: str) -> None:
        """Remove every item of the node."""
        async with self._db.transaction("purge_pep_node") as txn:
            node_id = await _node_id(txn.conn, owner, node)
            if node_id is not None:
                await txn.conn.execute(delete(pep_items).where(_I.node_id == node_id))

    async def last_items(
        self, owners: Sequence[str], nodes: Sequence[str]
    ) -> list[tuple[PepNode, PepItem]]:
        """The newest item of each of ``nodes`` of each of ``owners`` (one query)."""
        if not owners or not nodes:
            return []
        wanted = and_(_N.owner.in_(list(owners)), _N.node.in_(list(nodes)))
        newest = (
            select(_I.node_id, func.max(_I.seq).label("seq"))
            .select_from(pep_items.join(pep_nodes, _N.id == _I.node_id))
            .where(wanted)
            .group_by(_I.node_id)
            .subquery("newest")
        )
        query = (
            select(_N.id, _N.owner, _N.node, _N.config, *_ITEM_COLS)
            .select_from(
                pep_nodes.join(newest, newest.c.node_id == _N.id).join(
                    pep_items, and_(_I.node_id == _N.id, _I.seq == newest.c.seq)
                )
            )
            .order_by(_N.owner, _N.node)
        )
        async with self._db.read("last_pep_items") as conn:
            rows = await conn.execute(query)
        return [(_node(r[:4]), self._open(r[4:])) for r in rows.all()]
