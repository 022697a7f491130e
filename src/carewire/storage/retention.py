"""The retention purge's statements (:class:`carewire.directory.retention.RetentionStore`).

Bodies are purged in place: ``MESSAGES.message`` and ``MESSAGES.elements``
become NULL, every other column (who, to whom, when, state, the deliveries)
stays. Each batch is a ``SELECT id … ORDER BY id LIMIT n`` and an ``UPDATE`` of those ids in its
own transaction, selected by conversation, time and "still has a body" and
walking the ids upwards from the previous batch (keyset), so a purge reads
each row once and one interrupted anywhere resumes by running again. Nothing here reads a
body. The dataset tables are named by :mod:`.dataset_tables`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Text,
    bindparam,
    column,
    delete,
    func,
    or_,
    select,
    table,
    update,
)

from carewire.storage.database import Database
from carewire.storage.dataset_tables import ref_column, table_name
from carewire.storage.tables import UTCDateTime, offline_messages

_MESSAGES = table(
    table_name("MESSAGES"),
    column("id", BigInteger()),
    column(ref_column("conversation"), BigInteger()),
    column(ref_column("from"), BigInteger()),
    column("received_at", UTCDateTime()),
    column("message", Text()),
    column("elements", Text()),
)
_HISTORY = table(
    table_name("CONVERSATION_HISTORY"),
    column("id", BigInteger()),
    column(ref_column("conversation"), BigInteger()),
    column(ref_column("member"), BigInteger()),
)
_IDENTITIES = table(table_name("IDENTITIES"), column("id", BigInteger()), column("name", Text()))
_M, _H, _I, _O = _MESSAGES.c, _HISTORY.c, _IDENTITIES.c, offline_messages.c
_CONV = ref_column("conversation")

#: Conversations (or owners) per statement (far below every bind limit).
CHUNK = 500


def _has_body(conversations: Sequence[int], before: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        _M[_CONV].in_(conversations),
        _M.received_at < before,
        or_(_M.message.is_not(None), _M.elements.is_not(None)),
    )


class SqlRetentionStore:
    """Counts and purges message bodies and offline copies older than a cut-off."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every operation."""
        self._db = db

    async def conversation_starters(self) -> dict[int, str | None]:
        """Each conversation's starter: the bare JID on its first CONVERSATION_HISTORY row.

        A room's conversation is opened with a history row that names nobody
        (the room made it); its starter is the sender of its first message.
        """
        first = select(func.min(_H.id)).group_by(_H[_CONV]).scalar_subquery()
        query = (
            select(_H[_CONV], _I.name)
            .select_from(_HISTORY.outerjoin(_IDENTITIES, _I.id == _H[ref_column("member")]))
            .where(_H.id.in_(first))
        )
        async with self._db.read("retention_conversation_starters") as conn:
            starters = {int(r[0]): r[1] for r in await conn.execute(query) if r[0] is not None}
            unnamed = sorted(conv for conv, name in starters.items() if name is None)
            for start in range(0, len(unnamed), CHUNK):
                chunk = unnamed[start : start + CHUNK]
                firsts = (
                    select(func.min(_M.id)).where(_M[_CONV].in_(chunk)).group_by(_M[_CONV])
                ).scalar_subquery()
                senders = (
                    select(_M[_CONV], _I.name)
                    .select_from(_MESSAGES.join(_IDENTITIES, _I.id == _M[ref_column("from")]))
                    .where(_M.id.in_(firsts))
                )
                starters.update({int(r[0]): r[1] for r in await conn.execute(senders)})
        return starters

    async def count_bodies(self, conversations: Sequence[int], before: datetime) -> int:
        """Messages of these conversations received before ``before`` that still have a body."""
        total = 0
        async with self._db.read("retention_count_bodies") as conn:
            for start in range(0, len(conversations), CHUNK):
                chunk = list(conversations[start : start + CHUNK])
                query = select(func.count()).select_from(_MESSAGES).where(*_has_body(chunk, before))
                total += int((await conn.execute(query)).scalar_one())
        return total

    async def purge_bodies(
        self, conversations: Sequence[int], before: datetime, *, limit: int, after: int = 0
    ) -> tuple[int, int]:
        """Purge the bodies of at most ``limit`` such messages with ids above ``after``.

        One transaction. Returns how many were purged and the highest id
        purged (``after`` when none): the next batch starts there, so each
        batch reads only rows no earlier batch has seen (the purge stays linear
        in the table's size; a body-less row is never read twice).
        """
        if not conversations:
            return 0, after
        ids = (
            select(_M.id)
            .where(_M.id > after, *_has_body(conversations, before))
            .order_by(_M.id)
            .limit(limit)
        )
        async with self._db.transaction("retention_purge_bodies") as txn:
            chosen = [int(r[0]) for r in await txn.conn.execute(ids)]
            if not chosen:
                return 0, after
            statement = (
                update(_MESSAGES)
                .where(_M.id.in_(bindparam("ids", expanding=True)))
                .values(message=None, elements=None)
            )
            await txn.conn.execute(statement, {"ids": chosen})
        return len(chosen), chosen[-1]

    async def count_offline(self, owners: Sequence[str], before: datetime) -> int:
        """Offline copies for these owners stored before ``before``."""
        total = 0
        async with self._db.read("retention_count_offline") as conn:
            for start in range(0, len(owners), CHUNK):
                chunk = list(owners[start : start + CHUNK])
                query = (
                    select(func.count())
                    .select_from(offline_messages)
                    .where(_O.owner.in_(chunk), _O.stamp < before)
                )
                total += int((await conn.execute(query)).scalar_one())
        return total

    async def purge_offline(self, owners: Sequence[str], before: datetime) -> int:
        """Delete those offline copies, a transaction per chunk of owners; how many."""
        total = 0
        for start in range(0, len(owners), CHUNK):
            chunk = list(owners[start : start + CHUNK])
            statement = delete(offline_messages).where(
                _O.owner.in_(bindparam("owners", expanding=True)), _O.stamp < before
            )
            async with self._db.transaction("retention_purge_offline") as txn:
                result = await txn.conn.execute(statement, {"owners": chunk})
            total += int(result.rowcount)
        return total
