"""API token digests (:class:`carewire.security.tokens.TokenStore`) in ``api_tokens``."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from carewire.errors import ConflictError
from carewire.security.tokens import Role, TokenInfo
from carewire.storage.database import Database
from carewire.storage.tables import api_tokens

log = logging.getLogger(__name__)

_T = api_tokens.c
_COLUMNS = (
    _T.id,
    _T.name,
    _T.role,
    _T.created_at,
    _T.last_used_at,
    _T.revoked_at,
    _T.organisation_id,
    _T.expires_at,
)
_BY_HASH = select(*_COLUMNS).where(_T.token_hash == bindparam("token_hash"))
_BY_NAME = select(*_COLUMNS).where(_T.name == bindparam("name"))
_ALL = select(*_COLUMNS).order_by(_T.name)
_INSERT = insert(api_tokens)
_TOUCH = (
    update(api_tokens)
    .where(_T.id == bindparam("token_id"))
    .values(last_used_at=bindparam("at", type_=_T.last_used_at.type))
)
_REVOKE = (
    update(api_tokens)
    .where(_T.name == bindparam("token_name"), _T.revoked_at.is_(None))
    .values(revoked_at=bindparam("at", type_=_T.revoked_at.type))
)


def _info(row: Any) -> TokenInfo:
    return TokenInfo(
        id=int(row.id),
        name=row.name,
        role=Role(row.role),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        organisation_id=None if row.organisation_id is None else int(row.organisation_id),
        expires_at=row.expires_at,
    )


class SqlTokenStore:
    """:class:`carewire.security.tokens.TokenStore` on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every operation."""
        self._db = db

    async def add(
        self,
        *,
        name: str,
        token_hash: str,
        role: Role,
        created_at: datetime,
        organisation_id: int | None = None,
        expires_at: datetime | None = None,
    ) -> TokenInfo:
        """Save a new token.

        Raises:
            ConflictError: A token of that name exists (revoked ones included).
        """
        row = {
            "name": name,
            "token_hash": token_hash,
            "role": role.value,
            "created_at": created_at,
            "organisation_id": organisation_id,
            "expires_at": expires_at,
        }
        try:
            async with self._db.transaction("add_api_token") as txn:
                if (await txn.conn.execute(_BY_NAME, {"name": name})).first() is not None:
                    raise ConflictError(f"an API token named {name!r} already exists")
                key = (await txn.conn.execute(_INSERT, row)).inserted_primary_key
                assert key is not None
                token_id = int(key[0])
        except IntegrityError:
            # A concurrent add of the same name won the race (a digest collision is
            # out of reach for 256-bit tokens).
            raise ConflictError(f"an API token named {name!r} already exists") from None
        return TokenInfo(
            id=token_id,
            name=name,
            role=role,
            created_at=created_at,
            organisation_id=organisation_id,
            expires_at=expires_at,
        )

    async def find_by_hash(self, token_hash: str) -> TokenInfo | None:
        """The token whose SHA-256 hex digest is ``token_hash``."""
        async with self._db.read("find_api_token") as conn:
            row = (await conn.execute(_BY_HASH, {"token_hash": token_hash})).first()
        return None if row is None else _info(row)

    async def list(self) -> list[TokenInfo]:
        """Every token, revoked ones included, by name."""
        async with self._db.read("list_api_tokens") as conn:
            return [_info(r) for r in await conn.execute(_ALL)]

    async def revoke(self, name: str, at: datetime) -> TokenInfo | None:
        """Mark the token revoked at ``at`` (kept if it already was); None if unknown."""
        async with self._db.transaction("revoke_api_token") as txn:
            await txn.conn.execute(_REVOKE, {"token_name": name, "at": at})
            row = (await txn.conn.execute(_BY_NAME, {"name": name})).first()
        return None if row is None else _info(row)

    async def touch(self, token_id: int, at: datetime) -> None:
        """Set the token's ``last_used_at``."""
        async with self._db.transaction("touch_api_token") as txn:
            await txn.conn.execute(_TOUCH, {"token_id": token_id, "at": at})
