"""SCIM provisioning's tokens, links and searches (:class:`carewire.identity.scim.store.ScimStore`).

Tables ``scim_tokens``, ``scim_users`` and ``scim_groups`` (migration 0021_scim).
A search is one query over ``directory_users`` joined with ``accounts`` (the
login state) and ``scim_users`` (``userName``, ``externalId``), its condition
compiled from :mod:`carewire.identity.scim.query`: every comparison is
two-valued (an unassigned ``externalId`` compares false, and true under
``ne``), so ``not (…)`` means what it means in memory.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    bindparam,
    cast,
    exists,
    false,
    func,
    insert,
    not_,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError

from carewire.errors import ConflictError
from carewire.identity.scim.model import GroupLink, ScimToken, UserLink
from carewire.identity.scim.query import (
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Has,
    Negate,
    UserField,
    UserSearch,
    UserSort,
)
from carewire.identity.scim.store import GroupRef, MemberRef, StoredGroup, StoredUser
from carewire.storage import dialects
from carewire.storage.database import Database
from carewire.storage.directory_users import like_pattern, user_from_row, user_select
from carewire.storage.tables import accounts
from carewire.storage.tables_directory import (
    directory_group_members,
    directory_groups,
    directory_users,
)
from carewire.storage.tables_scim import scim_groups, scim_tokens, scim_users

log = logging.getLogger(__name__)

_T = scim_tokens.c
_S = scim_users.c
_D = directory_users.c
_A = accounts.c
_G = directory_groups.c
_M = directory_group_members.c
_SG = scim_groups.c

_TOKEN_COLUMNS = (
    _T.id,
    _T.organisation_id,
    _T.name,
    _T.invite_users,
    _T.created_by,
    _T.created_at,
    _T.last_used_at,
    _T.revoked_at,
)
_LINK_COLUMNS = (
    _S.login.label("link_login"),
    _S.user_name,
    _S.external_id,
    _S.extra,
    _S.updated_at.label("link_updated_at"),
)
#: A user's ``userName`` as compared: the link's (case-folded), else the login.
_user_name: ColumnElement[str] = func.coalesce(_S.user_name_key, _D.login)

_COLUMN: dict[UserField, ColumnElement[Any]] = {
    UserField.LOGIN: _D.login,
    UserField.USER_NAME: _user_name,
    UserField.EXTERNAL_ID: _S.external_id,
    UserField.GIVEN_NAME: _D.first_key,
    UserField.FAMILY_NAME: _D.last_key,
    UserField.EMAIL: _D.email,
    UserField.USER_TYPE: func.lower(_D.staff_type),
    UserField.CREATED: _D.created_at,
    UserField.MODIFIED: _D.updated_at,
    UserField.EMPLOYEE_NUMBER: _D.staff_id,
}
_SORT: dict[UserSort, ColumnElement[Any]] = {
    UserSort.LOGIN: _D.login,
    UserSort.USER_NAME: _user_name,
    UserSort.GIVEN_NAME: _D.first_key,
    UserSort.FAMILY_NAME: _D.last_key,
    UserSort.EMAIL: _D.email,
    UserSort.CREATED: _D.created_at,
    UserSort.MODIFIED: _D.updated_at,
    UserSort.EMPLOYEE_NUMBER: _D.staff_id,
}


def _token(row: Any) -> ScimToken:
    return ScimToken(
        id=int(row.id),
        organisation_id=int(row.organisation_id),
        name=row.name,
        invite_users=bool(row.invite_users),
        created_by=row.created_by,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _link(row: Any) -> UserLink | None:
    if row.link_login is None:
        return None
    return UserLink(
        login=row.link_login,
        organisation_id=int(row.organisation_id),
        user_name=row.user_name,
        external_id=row.external_id,
        extra=json.loads(row.extra) if row.extra else {},
        updated_at=row.link_updated_at,
    )


# -- conditions ---------------------------------------------------------------------------


def compile_condition(condition: Condition) -> ColumnElement[bool]:
    """The SQL of a condition over the joined users (two-valued everywhere)."""
    if isinstance(condition, AllOf):
        return and_(true(), *(compile_condition(t) for t in condition.terms))
    if isinstance(condition, AnyOf):
        return or_(false(), *(compile_condition(t) for t in condition.terms))
    if isinstance(condition, Negate):
        return not_(compile_condition(condition.term))
    if isinstance(condition, Has):
        return _present(condition.field)
    return _compare(condition)


def _present(field: UserField) -> ColumnElement[bool]:
    if field is UserField.GROUP:
        return exists().where(_M.login == _D.login)
    if field is UserField.ACTIVE:
        return true()
    column = _COLUMN[field]
    if field is UserField.EXTERNAL_ID:
        return and_(column.is_not(None), column != "")
    if field in (UserField.GIVEN_NAME, UserField.FAMILY_NAME):
        return column != ""
    return true()


def _compare(condition: Compare) -> ColumnElement[bool]:
    field, op, value = condition.field, condition.op, condition.value
    if field is UserField.GROUP:
        if op == "ne":  # multi-valued: no group is the value
            return not_(exists().where(_M.login == _D.login, _M.group_id == _int(value)))
        return exists().where(_M.login == _D.login, _group_match(op, str(value)))
    if field is UserField.ACTIVE:
        active = _A.is_disabled.is_(False)
        return active if (op == "eq") == bool(value) else not_(active)
    column = _COLUMN[field]
    if op == "ne":
        differs = column != value
        return or_(column.is_(None), differs) if field is UserField.EXTERNAL_ID else differs
    test = _apply(column, op, value)
    return and_(column.is_not(None), test) if field is UserField.EXTERNAL_ID else test


def _apply(column: ColumnElement[Any], op: str, value: object) -> ColumnElement[bool]:
    if op in ("co", "sw", "ew"):
        text = str(value)
        pattern = like_pattern(text) if op == "co" else _edge_pattern(text, op)
        return column.like(pattern, escape="\\")
    return {
        "eq": column == value,
        "gt": column > value,
        "ge": column >= value,
        "lt": column < value,
        "le": column <= value,
    }[op]


def _edge_pattern(text: str, op: str) -> str:
    """A LIKE pattern for starts-with or ends-with ``text`` (wildcards escaped)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%" if op == "sw" else f"%{escaped}"


def _int(value: object) -> int:
    text = str(value)
    return int(text) if text.isdigit() else -1


def _group_match(op: str, value: str) -> ColumnElement[bool]:
    """A membership's group id (a number) against a ``groups.value`` string."""
    if op in ("eq", "ne"):
        return _M.group_id == _int(value)
    as_text = cast(_M.group_id, String(20))
    return _apply(as_text, op, value)


# -- the store ----------------------------------------------------------------------------


class SqlScimStore:
    """:class:`carewire.identity.scim.store.ScimStore` on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every operation."""
        self._db = db
        self._upsert_link = dialects.upsert(db.dialect, scim_users, ["login"])
        self._upsert_group = dialects.upsert(db.dialect, scim_groups, ["group_id"])

    # -- tokens ---------------------------------------------------------------------------

    async def add_token(
        self,
        *,
        organisation_id: int,
        name: str,
        token_hash: str,
        invite_users: bool,
        created_by: str,
        created_at: datetime,
    ) -> ScimToken:
        """Save a new token.

        Raises:
            ConflictError: The organisation has a token of that name.
        """
        values = {
            "organisation_id": organisation_id,
            "name": name,
            "token_hash": token_hash,
            "invite_users": invite_users,
            "created_by": created_by,
            "created_at": created_at,
        }
        try:
            async with self._db.transaction("add_scim_token") as txn:
                row = (
                    await txn.conn.execute(insert(scim_tokens).values(values).returning(_T.id))
                ).one()
        except IntegrityError:
            raise ConflictError(
                f"the organisation has a SCIM token named {name!r}", code="token-exists"
            ) from None
        return ScimToken(
            id=int(row.id),
            organisation_id=organisation_id,
            name=name,
            invite_users=invite_users,
            created_by=created_by,
            created_at=created_at,
        )

    async def token_by_hash(self, token_hash: str) -> ScimToken | None:
        """The token with this digest."""
        query = select(*_TOKEN_COLUMNS).where(_T.token_hash == token_hash)
        async with self._db.reading("scim_token_by_hash") as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _token(row)

    async def tokens(self, organisation_id: int | None) -> list[ScimToken]:
        """The organisation's tokens (all when None)."""
        query = select(*_TOKEN_COLUMNS).order_by(_T.organisation_id, _T.name)
        if organisation_id is not None:
            query = query.where(_T.organisation_id == organisation_id)
        async with self._db.read("scim_tokens") as conn:
            return [_token(r) for r in await conn.execute(query)]

    async def revoke_token(self, organisation_id: int, name: str, at: datetime) -> ScimToken | None:
        """Revoke the token (kept revoked at its first time)."""
        where = (_T.organisation_id == organisation_id, _T.name == name)
        stmt = update(scim_tokens).where(*where, _T.revoked_at.is_(None)).values(revoked_at=at)
        async with self._db.transaction("revoke_scim_token") as txn:
            await txn.conn.execute(stmt)
            row = (await txn.conn.execute(select(*_TOKEN_COLUMNS).where(*where))).first()
        return None if row is None else _token(row)

    async def touch_token(self, token_id: int, at: datetime) -> None:
        """Note the token's use."""
        stmt = (
            update(scim_tokens)
            .where(_T.id == bindparam("token_id"))
            .values(last_used_at=bindparam("at", type_=_T.last_used_at.type))
        )
        async with self._db.transaction("touch_scim_token") as txn:
            await txn.conn.execute(stmt, {"token_id": token_id, "at": at})

    # -- users ----------------------------------------------------------------------------

    def _users(self) -> Any:
        joined = user_select(with_photo=False).add_columns(*_LINK_COLUMNS)
        return joined.outerjoin(scim_users, _S.login == _D.login)

    async def search_users(self, search: UserSearch) -> tuple[list[StoredUser], int]:
        """One page of matching users, with their links and groups, and how many match."""
        where: list[ColumnElement[bool]] = [_D.organisation_id == search.organisation_id]
        if search.condition is not None:
            where.append(compile_condition(search.condition))
        key = _SORT[search.sort]
        order = [key.desc() if search.is_descending else key.asc(), _D.login.asc()]
        page = self._users().where(*where).order_by(*order).offset(search.offset)
        page = page.limit(search.limit)
        count = (
            select(func.count())
            .select_from(
                directory_users.join(accounts, _A.login == _D.login).outerjoin(
                    scim_users, _S.login == _D.login
                )
            )
            .where(*where)
        )
        async with self._db.read("scim_search_users") as conn:
            total = int((await conn.execute(count)).scalar_one())
            rows = (
                (await conn.execute(page)).all() if total > search.offset and search.limit else []
            )
            groups = await self._groups_of(conn, [r.login for r in rows])
        return [self._stored(r, groups) for r in rows], total

    @staticmethod
    def _stored(row: Any, groups: dict[str, list[GroupRef]]) -> StoredUser:
        return StoredUser(
            user=user_from_row(row), link=_link(row), groups=tuple(groups.get(row.login, ()))
        )

    @staticmethod
    async def _groups_of(conn: Any, logins: Sequence[str]) -> dict[str, list[GroupRef]]:
        found: dict[str, list[GroupRef]] = defaultdict(list)
        for i in range(0, len(logins), 500):
            query = (
                select(_M.login, _G.id, _G.name)
                .select_from(directory_group_members.join(directory_groups, _G.id == _M.group_id))
                .where(_M.login.in_(logins[i : i + 500]))
                .order_by(_M.login, _G.id)
            )
            for row in await conn.execute(query):
                found[row.login].append(GroupRef(id=int(row.id), name=row.name))
        return found

    async def user(self, organisation_id: int, login: str) -> StoredUser | None:
        """The organisation's user ``login`` (its link, its groups)."""
        query = self._users().where(_D.organisation_id == organisation_id, _D.login == login)
        async with self._db.reading("scim_user") as conn:
            row = (await conn.execute(query)).first()
            groups = await self._groups_of(conn, [login]) if row is not None else {}
        return None if row is None else self._stored(row, groups)

    async def login_of_user_name(self, organisation_id: int, user_name_key: str) -> str | None:
        """The user whose ``userName`` is ``user_name_key`` (links first, then bare logins)."""
        query = (
            select(_D.login)
            .select_from(directory_users.outerjoin(scim_users, _S.login == _D.login))
            .where(_D.organisation_id == organisation_id, _user_name == user_name_key)
        )
        async with self._db.reading("scim_login_of_user_name") as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else str(row.login)

    async def put_user_link(self, link: UserLink) -> None:
        """Create or replace the link.

        Raises:
            ConflictError: Another user of the organisation has the ``userName``.
        """
        values = {
            "login": link.login,
            "organisation_id": link.organisation_id,
            "user_name": link.user_name,
            "user_name_key": link.user_name.casefold(),
            "external_id": link.external_id,
            "extra": json.dumps(dict(link.extra), sort_keys=True, separators=(",", ":")),
            "updated_at": link.updated_at,
        }
        try:
            async with self._db.transaction("put_scim_user_link") as txn:
                await txn.conn.execute(self._upsert_link, values)
        except IntegrityError:
            raise ConflictError(
                "another user of the organisation has this userName", code="user-name-taken"
            ) from None

    # -- groups ---------------------------------------------------------------------------

    async def groups(
        self, organisation_id: int, ids: Sequence[int] | None = None
    ) -> list[StoredGroup]:
        """The organisation's groups (``ids`` only, when given), with members, by id."""
        query = (
            select(_G.id, _G.name, _G.created_at, _G.updated_at, _SG.external_id)
            .select_from(directory_groups.outerjoin(scim_groups, _SG.group_id == _G.id))
            .where(_G.organisation_id == organisation_id)
            .order_by(_G.id)
        )
        members = (
            select(_M.group_id, _M.login, _D.first_name, _D.last_name)
            .select_from(
                directory_group_members.join(directory_groups, _G.id == _M.group_id).join(
                    directory_users, _D.login == _M.login
                )
            )
            .where(_G.organisation_id == organisation_id)
            .order_by(_M.group_id, _M.login)
        )
        if ids is not None:
            query = query.where(_G.id.in_(list(ids)))
            members = members.where(_M.group_id.in_(list(ids)))
        found: dict[int, list[MemberRef]] = defaultdict(list)
        async with self._db.reading("scim_groups") as conn:
            rows = (await conn.execute(query)).all()
            for m in await conn.execute(members):
                display = f"{m.first_name} {m.last_name}".strip()
                found[int(m.group_id)].append(MemberRef(login=m.login, display=display))
        return [
            StoredGroup(
                id=int(r.id),
                organisation_id=organisation_id,
                name=r.name,
                external_id=r.external_id,
                created_at=r.created_at,
                updated_at=r.updated_at,
                members=tuple(found.get(int(r.id), ())),
            )
            for r in rows
        ]

    async def put_group_link(self, link: GroupLink) -> None:
        """Create or replace the group's link."""
        values = {
            "group_id": link.group_id,
            "external_id": link.external_id,
            "updated_at": link.updated_at,
        }
        async with self._db.transaction("put_scim_group_link") as txn:
            await txn.conn.execute(self._upsert_group, values)
