"""File sharing's metadata (:class:`carewire.uploads.UploadStore`; docs/upload.md).

No content here: the files are encrypted on disk by the upload service, and
the filename and digest columns hold sealed values. The slot claim is one
conditional ``UPDATE`` (``state = 'slot'`` and the slot still open), so of
two PUTs racing for one slot exactly one wins, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update

from carewire.storage.database import Database
from carewire.storage.tables_upload import uploads
from carewire.uploads.model import UploadRecord, UploadState

_U = uploads.c
_COLUMNS = (
    _U.file_id,
    _U.token_hash,
    _U.owner,
    _U.filename,
    _U.content_type,
    _U.size,
    _U.state,
    _U.created_at,
    _U.slot_expires_at,
    _U.expires_at,
    _U.sha256,
)
#: Owners per statement (far below every bind limit).
_CHUNK = 500


def _record(row: Any) -> UploadRecord:
    return UploadRecord(
        file_id=row.file_id,
        token_hash=row.token_hash,
        owner=row.owner,
        filename=row.filename,
        content_type=row.content_type,
        size=int(row.size),
        state=UploadState(row.state),
        created_at=row.created_at,
        slot_expires_at=row.slot_expires_at,
        expires_at=row.expires_at,
        sha256=row.sha256,
    )


def _live(now: datetime, slots_since: datetime) -> Any:
    """Uploads that count against the quota: stored and unexpired, or slots still open."""
    return or_(
        and_(_U.state == UploadState.STORED.value, _U.expires_at > now),
        and_(_U.state != UploadState.STORED.value, _U.slot_expires_at > slots_since),
    )


class SqlUploadStore:
    """The ``uploads`` table on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every operation."""
        self._db = db

    async def add_within_quota(
        self, record: UploadRecord, *, quota: int, now: datetime, slots_since: datetime
    ) -> int:
        """Insert ``record`` if the owner's live uploads plus it fit ``quota``; else their bytes."""
        used = (
            select(func.coalesce(func.sum(_U.size), 0))
            .where(_U.owner == record.owner, _live(now, slots_since))
            .scalar_subquery()
        )
        async with self._db.transaction("add_upload_slot") as txn:
            held = int((await txn.conn.execute(select(used))).scalar_one())
            if held + record.size > quota:
                return max(held, 1)
            await txn.conn.execute(
                insert(uploads).values(
                    file_id=record.file_id,
                    token_hash=record.token_hash,
                    owner=record.owner,
                    filename=record.filename,
                    content_type=record.content_type,
                    size=record.size,
                    state=record.state.value,
                    created_at=record.created_at,
                    slot_expires_at=record.slot_expires_at,
                    expires_at=record.expires_at,
                    sha256=record.sha256,
                )
            )
        return 0

    async def by_token(self, token_hash: str) -> UploadRecord | None:
        """The upload whose URL secret hashes to ``token_hash``."""
        async with self._db.read("upload_by_token") as conn:
            row = (await conn.execute(select(*_COLUMNS).where(_U.token_hash == token_hash))).first()
        return None if row is None else _record(row)

    async def claim(self, token_hash: str, now: datetime) -> bool:
        """``SLOT`` → ``RECEIVING`` if the slot is still open; whether it moved."""
        statement = (
            update(uploads)
            .where(
                _U.token_hash == token_hash,
                _U.state == UploadState.SLOT.value,
                _U.slot_expires_at > now,
            )
            .values(state=UploadState.RECEIVING.value)
        )
        async with self._db.transaction("claim_upload_slot") as txn:
            result = await txn.conn.execute(statement)
        return int(result.rowcount) == 1

    async def release(self, file_id: str) -> None:
        """``RECEIVING`` → ``SLOT`` (a PUT failed; the slot may be tried again)."""
        statement = (
            update(uploads)
            .where(_U.file_id == file_id, _U.state == UploadState.RECEIVING.value)
            .values(state=UploadState.SLOT.value)
        )
        async with self._db.transaction("release_upload_slot") as txn:
            await txn.conn.execute(statement)

    async def mark_stored(self, file_id: str, *, sha256: str) -> bool:
        """``RECEIVING`` → ``STORED`` with the sealed digest; False if the row is gone."""
        statement = (
            update(uploads)
            .where(_U.file_id == file_id, _U.state == UploadState.RECEIVING.value)
            .values(state=UploadState.STORED.value, sha256=sha256)
        )
        async with self._db.transaction("store_upload") as txn:
            result = await txn.conn.execute(statement)
        return int(result.rowcount) == 1

    async def count_created_before(self, owners: Sequence[str], before: datetime) -> int:
        """How many uploads of ``owners`` were created before ``before``."""
        total = 0
        async with self._db.read("count_uploads_created_before") as conn:
            for start in range(0, len(owners), _CHUNK):
                chunk = list(owners[start : start + _CHUNK])
                query = (
                    select(func.count())
                    .select_from(uploads)
                    .where(_U.owner.in_(chunk), _U.created_at < before)
                )
                total += int((await conn.execute(query)).scalar_one())
        return total

    async def expired(
        self, now: datetime, *, slots_before: datetime, limit: int
    ) -> list[UploadRecord]:
        """At most ``limit`` stored uploads expired at ``now`` or slots closed before
        ``slots_before``."""
        query = (
            select(*_COLUMNS)
            .where(
                or_(
                    and_(_U.state == UploadState.STORED.value, _U.expires_at <= now),
                    and_(
                        _U.state != UploadState.STORED.value,
                        _U.slot_expires_at <= slots_before,
                    ),
                )
            )
            .order_by(_U.file_id)
            .limit(limit)
        )
        async with self._db.read("expired_uploads") as conn:
            return [_record(r) for r in await conn.execute(query)]

    async def created_before(
        self, owners: Sequence[str], before: datetime, *, limit: int
    ) -> list[UploadRecord]:
        """At most ``limit`` uploads of ``owners`` created before ``before``."""
        out: list[UploadRecord] = []
        async with self._db.read("uploads_created_before") as conn:
            for start in range(0, len(owners), _CHUNK):
                chunk = list(owners[start : start + _CHUNK])
                query = (
                    select(*_COLUMNS)
                    .where(_U.owner.in_(chunk), _U.created_at < before)
                    .order_by(_U.file_id)
                    .limit(limit - len(out))
                )
                out += [_record(r) for r in await conn.execute(query)]
                if len(out) >= limit:
                    break
        return out

    async def delete(self, file_ids: Sequence[str]) -> int:
        """Delete these rows (one transaction); how many."""
        if not file_ids:
            return 0
        statement = delete(uploads).where(_U.file_id.in_(bindparam("ids", expanding=True)))
        async with self._db.transaction("delete_uploads") as txn:
            result = await txn.conn.execute(statement, {"ids": list(file_ids)})
        return int(result.rowcount)
