"""Groups and their members (:class:`carewire.directory.store.GroupStore`).

Tables ``directory_groups`` and ``directory_group_members`` (migration 0005).
Group names are unique per organisation through a lower-cased copy
(``name_key``); members are added with ``INSERT … ON CONFLICT DO NOTHING``
in pages, so adding someone twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from carewire.directory.model import (
    AffiliationId,
    DirectoryUser,
    Group,
    GroupId,
    NameTakenError,
    OrganisationId,
)
from carewire.storage import dialects
from carewire.storage.database import Database
from carewire.storage.directory_users import like_pattern, user_from_row, user_select
from carewire.storage.tables_directory import (
    affiliation_permission_groups,
    directory_group_members,
    directory_groups,
    directory_users,
)

_G = directory_groups.c
_M = directory_group_members.c
_PG = affiliation_permission_groups.c
_D = directory_users.c
#: Memberships per multi-row INSERT.
PAGE = 1000

_MEMBER_COUNT = (
    select(func.count()).where(_M.group_id == _G.id).scalar_subquery().label("member_count")
)
_GROUP_COLUMNS = (
    _G.id,
    _G.organisation_id,
    _G.name,
    _G.slug,
    _G.whole_group_messaging,
    _G.created_at,
    _G.updated_at,
    _MEMBER_COUNT,
)


def _group(row: Any) -> Group:
    return Group(
        id=GroupId(int(row.id)),
        organisation_id=OrganisationId(int(row.organisation_id)),
        name=row.name,
        slug=row.slug,
        whole_group_messaging=bool(row.whole_group_messaging),
        member_count=int(row.member_count),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _taken(name: str) -> NameTakenError:
    return NameTakenError(f"a group named {name!r} exists in this organisation")


class SqlGroupStore:
    """:class:`carewire.directory.store.GroupStore` on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every operation."""
        self._db = db
        self._add_member = dialects.insert_ignore(
            db.dialect, directory_group_members, ["group_id", "login"]
        ).returning(_M.login)

    async def add(self, group: Group) -> Group:
        """Insert a group.

        Raises:
            NameTakenError: The organisation has a group of that name (case-insensitive).
        """
        key = group.name.lower()
        taken = select(_G.id).where(_G.organisation_id == group.organisation_id, _G.name_key == key)
        values = {
            "organisation_id": group.organisation_id,
            "name": group.name,
            "name_key": key,
            "slug": group.slug,
            "whole_group_messaging": group.whole_group_messaging,
            "created_at": group.created_at,
            "updated_at": group.updated_at,
        }
        try:
            async with self._db.transaction("add_group") as txn:
                if (await txn.conn.execute(taken)).first() is not None:
                    raise _taken(group.name)
                result = await txn.conn.execute(insert(directory_groups).values(values))
        except IntegrityError:
            raise _taken(group.name) from None
        key_row = result.inserted_primary_key
        assert key_row is not None
        return Group(
            id=GroupId(int(key_row[0])),
            organisation_id=group.organisation_id,
            name=group.name,
            slug=group.slug,
            whole_group_messaging=group.whole_group_messaging,
            created_at=group.created_at,
            updated_at=group.updated_at,
        )

    async def get(self, group_id: int) -> Group | None:
        """One group with its member count."""
        async with self._db.reading("get_group") as conn:
            row = (await conn.execute(select(*_GROUP_COLUMNS).where(_G.id == group_id))).first()
        return None if row is None else _group(row)

    async def by_names(self, organisation_id: int, names: Iterable[str]) -> dict[str, Group]:
        """The organisation's groups of these names, by lower-case name."""
        keys = sorted({n.lower() for n in names})
        found: dict[str, Group] = {}
        async with self._db.reading("groups_by_name") as conn:
            for i in range(0, len(keys), 500):
                query = select(*_GROUP_COLUMNS).where(
                    _G.organisation_id == organisation_id, _G.name_key.in_(keys[i : i + 500])
                )
                for row in await conn.execute(query):
                    found[row.name.lower()] = _group(row)
        return found

    async def list_for(self, organisation_id: int, name_contains: str = "") -> list[Group]:
        """The organisation's groups, by name."""
        query = select(*_GROUP_COLUMNS).where(_G.organisation_id == organisation_id)
        if name_contains.strip():
            query = query.where(_G.name_key.like(like_pattern(name_contains.strip()), escape="\\"))
        async with self._db.read("list_groups") as conn:
            return [_group(r) for r in await conn.execute(query.order_by(_G.name_key, _G.id))]

    async def taken_slugs(self, slugs: Sequence[str]) -> set[str]:
        """Which of ``slugs`` a group has."""
        async with self._db.reading("taken_slugs") as conn:
            rows = await conn.execute(select(_G.slug).where(_G.slug.in_(sorted(set(slugs)))))
            return set(rows.scalars())

    async def update(self, group: Group) -> Group:
        """Write name and options.

        Raises:
            NameTakenError: The new name is taken.
        """
        key = group.name.lower()
        taken = select(_G.id).where(
            _G.organisation_id == group.organisation_id, _G.name_key == key, _G.id != group.id
        )
        stmt = (
            update(directory_groups)
            .where(_G.id == group.id)
            .values(
                name=group.name,
                name_key=key,
                whole_group_messaging=group.whole_group_messaging,
                updated_at=group.updated_at,
            )
        )
        try:
            async with self._db.transaction("update_group") as txn:
                if (await txn.conn.execute(taken)).first() is not None:
                    raise _taken(group.name)
                await txn.conn.execute(stmt)
        except IntegrityError:
            raise _taken(group.name) from None
        return group

    async def delete(self, group_id: int) -> list[tuple[AffiliationId, OrganisationId]]:
        """Delete the group; the permissions that used it and now have no group left."""
        users = select(_PG.affiliation_id, _PG.organisation_id).where(_PG.group_id == group_id)
        async with self._db.transaction("delete_group") as txn:
            sides = {(int(r[0]), int(r[1])) for r in await txn.conn.execute(users)}
            await txn.conn.execute(delete(directory_groups).where(_G.id == group_id))
            emptied = []
            for aff, org in sorted(sides):
                left = select(func.count()).where(
                    _PG.affiliation_id == aff, _PG.organisation_id == org
                )
                if not (await txn.conn.execute(left)).scalar_one():
                    emptied.append((AffiliationId(aff), OrganisationId(org)))
        return emptied

    async def members(self, group_id: int) -> list[DirectoryUser]:
        """The group's members, by name (no photos)."""
        query = (
            user_select(with_photo=False)
            .where(_D.login.in_(select(_M.login).where(_M.group_id == group_id)))
            .order_by(_D.last_key, _D.first_key, _D.login)
        )
        async with self._db.read("group_members") as conn:
            return [user_from_row(r) for r in await conn.execute(query)]

    async def member_logins(self, group_id: int) -> list[str]:
        """The logins of the group's members."""
        async with self._db.reading("group_member_logins") as conn:
            rows = await conn.execute(select(_M.login).where(_M.group_id == group_id))
            return sorted(rows.scalars())

    async def add_members(self, group_id: int, logins: Sequence[str]) -> list[str]:
        """Insert memberships; the logins actually added."""
        unique = sorted(set(logins))
        if not unique:
            return []
        rows = [{"group_id": group_id, "login": login} for login in unique]
        async with self._db.transaction("add_group_members") as txn:
            added: list[str] = []
            for i in range(0, len(rows), PAGE):
                result = await txn.conn.execute(self._add_member, rows[i : i + PAGE])
                added.extend(result.scalars().all())
        return sorted(added)

    async def remove_members(self, group_id: int, logins: Sequence[str]) -> list[str]:
        """Delete memberships; the logins actually removed."""
        unique = sorted(set(logins))
        removed: list[str] = []
        async with self._db.transaction("remove_group_members") as txn:
            for i in range(0, len(unique), 500):
                stmt = (
                    delete(directory_group_members)
                    .where(_M.group_id == group_id, _M.login.in_(unique[i : i + 500]))
                    .returning(_M.login)
                )
                removed.extend((await txn.conn.execute(stmt)).scalars().all())
        return sorted(removed)

    async def of_user(self, login: str) -> list[Group]:
        """The groups the user is in, by name."""
        query = (
            select(*_GROUP_COLUMNS)
            .where(_G.id.in_(select(_M.group_id).where(_M.login == login)))
            .order_by(_G.name_key, _G.id)
        )
        async with self._db.read("groups_of_user") as conn:
            return [_group(r) for r in await conn.execute(query)]
