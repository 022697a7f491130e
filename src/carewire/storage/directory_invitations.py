"""User invitations (:class:`carewire.directory.store.InvitationStore`).

Table ``invitations`` (migration 0005). Invitations are inserted in pages of
one multi-row ``INSERT … RETURNING id`` (a 15,000-row CSV import is a handful
of statements); the Invitations page filters case-insensitively on each
column and pages along the index ``(organisation_id, updated_at)``. Deleted
invitations stay (hidden) so that their links are refused as deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select, update

from carewire.directory.model import (
    Invitation,
    InvitationFilter,
    InvitationId,
    InvitationSortKey,
    InvitationStatus,
    OrganisationId,
)
from carewire.directory.store import NewInvitation, StoredInvitation
from carewire.storage.database import Database
from carewire.storage.directory_users import like_pattern
from carewire.storage.tables_directory import invitations

_I = invitations.c
#: Rows per multi-row INSERT.
PAGE = 1000


_INV_COLUMNS = (
    _I.id,
    _I.organisation_id,
    _I.email,
    _I.first_name,
    _I.last_name,
    _I.department,
    _I.is_admin,
    _I.status,
    _I.expires_at,
    _I.invited_by,
    _I.created_at,
    _I.updated_at,
    _I.login,
    _I.deleted_at,
)
_OPEN = (
    InvitationStatus.PENDING.value,
    InvitationStatus.EMAIL_SENT.value,
    InvitationStatus.FAILURE.value,
    InvitationStatus.USER_CLICKED.value,
)
_SORTS = {
    InvitationSortKey.UPDATED: _I.updated_at,
    InvitationSortKey.EMAIL: _I.email,
    InvitationSortKey.LAST_NAME: func.lower(_I.last_name),
    InvitationSortKey.FIRST_NAME: func.lower(_I.first_name),
    InvitationSortKey.STATUS: _I.status,
}


def _invitation(row: Any) -> Invitation:
    return Invitation(
        id=InvitationId(int(row.id)),
        organisation_id=OrganisationId(int(row.organisation_id)),
        email=row.email,
        first_name=row.first_name,
        last_name=row.last_name,
        department=row.department,
        is_admin=bool(row.is_admin),
        status=InvitationStatus(row.status),
        expires_at=row.expires_at,
        invited_by=row.invited_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        login=row.login,
    )


def _stored(row: Any) -> StoredInvitation:
    return StoredInvitation(invitation=_invitation(row), is_deleted=row.deleted_at is not None)


def _filters(organisation_id: int, search: InvitationFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [
        _I.organisation_id == organisation_id,
        _I.deleted_at.is_(None),
    ]
    for column, text in (
        (_I.email, search.email),
        (func.lower(_I.first_name), search.first_name),
        (func.lower(_I.last_name), search.last_name),
    ):
        if text.strip():
            where.append(column.like(like_pattern(text.strip()), escape="\\"))
    if search.status is not None:
        where.append(_I.status == search.status.value)
    return where


class SqlInvitationStore:
    """:class:`carewire.directory.store.InvitationStore` on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every operation."""
        self._db = db

    async def add_many(self, rows: Sequence[NewInvitation]) -> list[Invitation]:
        """Insert invitations, a page of rows per statement; in order."""
        params = [
            {
                "organisation_id": r.organisation_id,
                "email": r.email,
                "first_name": r.first_name,
                "last_name": r.last_name,
                "department": r.department,
                "is_admin": r.is_admin,
                "status": InvitationStatus.PENDING.value,
                "token_hash": r.token_hash,
                "expires_at": r.expires_at,
                "invited_by": r.invited_by,
                "login": r.login,
                "created_at": r.at,
                "updated_at": r.at,
                "deleted_at": None,
            }
            for r in rows
        ]
        ids: list[int] = []
        async with self._db.transaction("add_invitations") as txn:
            for i in range(0, len(params), PAGE):
                # Rows of one VALUES list get increasing ids in order on both databases
                # (see SqlRecordWriter.insert_many): sorted ids are the rows' ids.
                result = await txn.conn.execute(
                    insert(invitations).returning(_I.id), params[i : i + PAGE]
                )
                ids.extend(sorted(int(x) for x in result.scalars().all()))
        return [
            Invitation(
                id=InvitationId(rid),
                organisation_id=r.organisation_id,
                email=r.email,
                first_name=r.first_name,
                last_name=r.last_name,
                department=r.department,
                is_admin=r.is_admin,
                expires_at=r.expires_at,
                invited_by=r.invited_by,
                created_at=r.at,
                updated_at=r.at,
                login=r.login,
            )
            for rid, r in zip(ids, rows, strict=True)
        ]

    async def get(self, invitation_id: int) -> StoredInvitation | None:
        """One invitation, deleted ones included."""
        async with self._db.reading("get_invitation") as conn:
            query = select(*_INV_COLUMNS).where(_I.id == invitation_id)
            row = (await conn.execute(query)).first()
        return None if row is None else _stored(row)

    async def by_token(self, token_hash: str) -> StoredInvitation | None:
        """The invitation whose current token has this digest."""
        async with self._db.reading("invitation_by_token") as conn:
            query = select(*_INV_COLUMNS).where(_I.token_hash == token_hash)
            row = (await conn.execute(query)).first()
        return None if row is None else _stored(row)

    async def find(
        self, organisation_id: int, search: InvitationFilter, *, offset: int, limit: int
    ) -> tuple[list[Invitation], int]:
        """One page of undeleted invitations and how many match."""
        where = _filters(organisation_id, search)
        key = _SORTS[search.sort]
        order = [key.desc(), _I.id.desc()] if search.is_descending else [key.asc(), _I.id.asc()]
        page = select(*_INV_COLUMNS).where(*where).order_by(*order).offset(offset).limit(limit)
        count = select(func.count()).select_from(invitations).where(*where)
        async with self._db.read("find_invitations") as conn:
            total = int((await conn.execute(count)).scalar_one())
            rows = (await conn.execute(page)).all() if total > offset else []
        return [_invitation(r) for r in rows], total

    async def open_for(self, organisation_id: int, emails: Sequence[str]) -> dict[str, Invitation]:
        """The newest undeleted, unregistered invitation of each address in the organisation."""
        unique = sorted(set(emails))
        found: dict[str, Invitation] = {}
        async with self._db.reading("open_invitations") as conn:
            for i in range(0, len(unique), 500):
                query = (
                    select(*_INV_COLUMNS)
                    .where(
                        _I.organisation_id == organisation_id,
                        _I.email.in_(unique[i : i + 500]),
                        _I.deleted_at.is_(None),
                        _I.status.in_(_OPEN),
                    )
                    .order_by(_I.id)
                )
                for row in await conn.execute(query):
                    found[row.email] = _invitation(row)  # the newest wins
        return found

    async def set_status(
        self,
        ids: Sequence[InvitationId],
        status: InvitationStatus,
        at: datetime,
        *,
        only_from: InvitationStatus | None = None,
    ) -> None:
        """Set the status and Last Updated of undeleted invitations (those in ``only_from``)."""
        unique = sorted(set(ids))
        async with self._db.transaction("set_invitation_status") as txn:
            for i in range(0, len(unique), 500):
                stmt = update(invitations).where(
                    _I.id.in_(unique[i : i + 500]), _I.deleted_at.is_(None)
                )
                if only_from is not None:
                    stmt = stmt.where(_I.status == only_from.value)
                await txn.conn.execute(stmt.values(status=status.value, updated_at=at))

    async def reissue(
        self,
        invitation_id: InvitationId,
        *,
        token_hash: str,
        expires_at: datetime,
        at: datetime,
        invited_by: str,
    ) -> Invitation:
        """A new token and expiry; back to Pending."""
        stmt = (
            update(invitations)
            .where(_I.id == invitation_id)
            .values(
                token_hash=token_hash,
                expires_at=expires_at,
                status=InvitationStatus.PENDING.value,
                updated_at=at,
                invited_by=invited_by,
            )
            .returning(*_INV_COLUMNS)
        )
        async with self._db.transaction("reissue_invitation") as txn:
            return _invitation((await txn.conn.execute(stmt)).one())

    async def delete(self, ids: Sequence[InvitationId], at: datetime) -> list[InvitationId]:
        """Mark deleted (its link is refused from now on); the ids not deleted before."""
        unique = sorted(set(ids))
        done: list[InvitationId] = []
        async with self._db.transaction("delete_invitations") as txn:
            for i in range(0, len(unique), 500):
                stmt = (
                    update(invitations)
                    .where(_I.id.in_(unique[i : i + 500]), _I.deleted_at.is_(None))
                    .values(deleted_at=at)
                    .returning(_I.id)
                )
                done.extend(InvitationId(int(x)) for x in (await txn.conn.execute(stmt)).scalars())
        return sorted(done)

    async def registered(self, invitation_id: InvitationId, login: str, at: datetime) -> None:
        """Mark Registered by ``login`` (its link is refused from now on: used)."""
        stmt = (
            update(invitations)
            .where(_I.id == invitation_id)
            .values(
                status=InvitationStatus.REGISTERED.value,
                login=login,
                updated_at=at,
            )
        )
        async with self._db.transaction("invitation_registered") as txn:
            await txn.conn.execute(stmt)

    async def delete_open_for_email(self, email: str, at: datetime) -> int:
        """Delete every unregistered invitation to ``email`` (all organisations)."""
        stmt = (
            update(invitations)
            .where(_I.email == email, _I.deleted_at.is_(None), _I.status.in_(_OPEN))
            .values(deleted_at=at)
        )
        async with self._db.transaction("delete_invitations_for_email") as txn:
            return int((await txn.conn.execute(stmt)).rowcount)
