"""Directory profiles, PINs and PIN resets (:class:`carewire.directory.store.UserStore`).

Tables ``directory_users``, ``directory_pins``, ``pin_resets`` (migration
0005), read joined with ``accounts`` for the login state. Names are kept a
second time in lower case (``first_key``, ``last_key``) so that Find Users'
case-insensitive search and its sort by name work the same on both
databases and the sort walks the index ``(organisation_id, last_key,
first_key, login)``. Profile fields nobody searches are one JSON column.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from carewire.directory.model import (
    DirectoryUser,
    EmailTakenError,
    OrganisationId,
    Profile,
    StaffType,
    UserFilter,
    UserSortKey,
)
from carewire.directory.store import PinReset, StoredPin
from carewire.storage import dialects
from carewire.storage.database import Database
from carewire.storage.tables import accounts
from carewire.storage.tables_directory import (
    directory_pins,
    directory_sequences,
    directory_users,
    pin_resets,
)

_D = directory_users.c
_A = accounts.c
_P = directory_pins.c
_R = pin_resets.c
#: Built once: the FAST login asks it at every reconnect (a statement built per call is
#: compiled and cache-keyed again each time).
_HAS_PIN = select(_P.login).where(_P.login == bindparam("login"))

#: Profile fields with their own column; the rest go to the JSON column ``profile``.
_COLUMN_FIELDS = frozenset(
    {"first_name", "last_name", "email", "staff_type", "photo", "photo_type"}
)
_JSON_FIELDS = tuple(f.name for f in dataclasses.fields(Profile) if f.name not in _COLUMN_FIELDS)
#: The first StaffID handed out (the sequence's start).
FIRST_STAFF_ID = 100_001
_STAFF_SEQUENCE = "staff_id"

_SELECT_BASE = (
    _D.login,
    _D.organisation_id,
    _D.staff_id,
    _D.email,
    _D.first_name,
    _D.last_name,
    _D.profile,
    _D.staff_type,
    _D.photo_type,
    _D.is_org_admin,
    _D.is_registered,
    _D.created_at,
    _D.updated_at,
    _A.is_locked,
    _A.is_disabled,
    _P.is_temporary,
    _P.login.label("pin_login"),
)
_JOINED = directory_users.join(accounts, _A.login == _D.login).outerjoin(
    directory_pins, _P.login == _D.login
)


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere (lower-cased, wildcards escaped with ``\\``)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def user_select(*, with_photo: bool) -> Select[Any]:
    """Users joined with their account and PIN (the photo only when asked)."""
    photo = _D.photo if with_photo else literal("").label("photo")
    return select(*_SELECT_BASE, photo).select_from(_JOINED)


def user_from_row(row: Any) -> DirectoryUser:
    """A :class:`DirectoryUser` from a row of :func:`user_select`."""
    extra = json.loads(row.profile) if row.profile else {}
    known = {k: v for k, v in extra.items() if k in _JSON_FIELDS}
    profile = Profile(
        first_name=row.first_name,
        last_name=row.last_name,
        email=row.email,
        staff_type=StaffType(row.staff_type),
        photo=row.photo or "",
        photo_type=row.photo_type or "",
        **known,
    )
    return DirectoryUser(
        login=row.login,
        organisation_id=OrganisationId(int(row.organisation_id)),
        staff_id=int(row.staff_id),
        profile=profile,
        can_login=not row.is_disabled,
        is_locked=bool(row.is_locked),
        is_org_admin=bool(row.is_org_admin),
        has_pin=row.pin_login is not None,
        pin_is_temporary=bool(row.is_temporary),
        is_registered=bool(row.is_registered),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _profile_values(user: DirectoryUser) -> dict[str, object]:
    p = user.profile
    return {
        "organisation_id": user.organisation_id,
        "email": p.email,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "first_key": p.first_name.lower(),
        "last_key": p.last_name.lower(),
        "profile": json.dumps({name: getattr(p, name) for name in _JSON_FIELDS}, sort_keys=True),
        "staff_type": p.staff_type.value,
        "photo": p.photo,
        "photo_type": p.photo_type,
        "is_org_admin": user.is_org_admin,
        "is_registered": user.is_registered,
        "updated_at": user.updated_at,
    }


def _order(sort: UserSortKey, is_descending: bool) -> list[ColumnElement[Any]]:
    keys: list[ColumnElement[Any]]
    if sort is UserSortKey.STAFF_TYPE:
        keys = [_D.staff_type, _D.last_key, _D.first_key, _D.login]
    elif sort is UserSortKey.EMAIL:
        keys = [_D.email]
    elif sort is UserSortKey.STAFF_ID:
        keys = [_D.staff_id]
    else:
        keys = [_D.last_key, _D.first_key, _D.login]
    return [k.desc() if is_descending else k.asc() for k in keys]


def _conditions(organisation_id: int, search: UserFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [_D.organisation_id == organisation_id]
    if search.first_name.strip():
        where.append(_D.first_key.like(like_pattern(search.first_name.strip()), escape="\\"))
    if search.last_name.strip():
        where.append(_D.last_key.like(like_pattern(search.last_name.strip()), escape="\\"))
    if search.email.strip():
        where.append(_D.email.like(like_pattern(search.email.strip()), escape="\\"))
    if search.staff_type is not None:
        where.append(_D.staff_type == search.staff_type.value)
    return where


class SqlUserStore:
    """:class:`carewire.directory.store.UserStore` on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every operation."""
        self._db = db
        self._seed_sequence = dialects.insert_ignore(db.dialect, directory_sequences, ["name"])
        self._upsert_pin = dialects.upsert(db.dialect, directory_pins, ["login"])

    async def next_staff_ids(self, count: int) -> list[int]:
        """Reserve ``count`` new StaffIDs (one row update: increasing, never reused)."""
        if count <= 0:
            return []
        bump = (
            update(directory_sequences)
            .where(directory_sequences.c.name == _STAFF_SEQUENCE)
            .values(value=directory_sequences.c.value + count)
            .returning(directory_sequences.c.value)
        )
        async with self._db.transaction("next_staff_ids") as txn:
            await txn.conn.execute(
                self._seed_sequence, {"name": _STAFF_SEQUENCE, "value": FIRST_STAFF_ID - 1}
            )
            last = int((await txn.conn.execute(bump)).scalar_one())
        return list(range(last - count + 1, last + 1))

    async def add(self, user: DirectoryUser) -> None:
        """Insert a profile.

        Raises:
            EmailTakenError: Another profile has the address.
        """
        values = _profile_values(user) | {
            "login": user.login,
            "staff_id": user.staff_id,
            "created_at": user.created_at,
        }
        taken = select(_D.login).where(_D.email == user.profile.email)
        try:
            async with self._db.transaction("add_directory_user") as txn:
                if (await txn.conn.execute(taken)).first() is not None:
                    raise EmailTakenError(f"{user.profile.email} is another user's address")
                await txn.conn.execute(insert(directory_users).values(values))
        except IntegrityError:
            raise EmailTakenError(f"{user.profile.email} is another user's address") from None

    async def add_many(self, users: Sequence[DirectoryUser]) -> None:
        """Insert profiles with one batched statement (directory sync's batches).

        Raises:
            EmailTakenError: An address is taken (nothing is inserted).
        """
        if not users:
            return
        rows = [
            _profile_values(u)
            | {"login": u.login, "staff_id": u.staff_id, "created_at": u.created_at}
            for u in users
        ]
        try:
            async with self._db.transaction("add_directory_users") as txn:
                await txn.conn.execute(insert(directory_users), rows)
        except IntegrityError:
            raise EmailTakenError("an address of the batch is another user's") from None

    async def update(self, user: DirectoryUser) -> None:
        """Write the profile (and the role and registration flags).

        Raises:
            EmailTakenError: Another profile has the address.
        """
        taken = select(_D.login).where(_D.email == user.profile.email, _D.login != user.login)
        stmt = update(directory_users).where(_D.login == user.login).values(_profile_values(user))
        try:
            async with self._db.transaction("update_directory_user") as txn:
                if (await txn.conn.execute(taken)).first() is not None:
                    raise EmailTakenError(f"{user.profile.email} is another user's address")
                await txn.conn.execute(stmt)
        except IntegrityError:
            raise EmailTakenError(f"{user.profile.email} is another user's address") from None

    async def get(self, login: str, *, with_photo: bool = True) -> DirectoryUser | None:
        """One user."""
        query = user_select(with_photo=with_photo).where(_D.login == login)
        async with self._db.reading("get_directory_user") as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else user_from_row(row)

    async def get_by_email(self, email: str) -> DirectoryUser | None:
        """The user with this address."""
        query = user_select(with_photo=True).where(_D.email == email)
        async with self._db.reading("get_directory_user_by_email") as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else user_from_row(row)

    async def by_emails(self, emails: Sequence[str]) -> dict[str, DirectoryUser]:
        """The users having these addresses (asked 500 at a time)."""
        found: dict[str, DirectoryUser] = {}
        unique = sorted(set(emails))
        async with self._db.reading("directory_users_by_email") as conn:
            for i in range(0, len(unique), 500):
                query = user_select(with_photo=False).where(_D.email.in_(unique[i : i + 500]))
                for row in await conn.execute(query):
                    user = user_from_row(row)
                    found[user.profile.email] = user
        return found

    async def by_logins(self, logins: Sequence[str]) -> dict[str, DirectoryUser]:
        """The users of these logins, by login (with photos)."""
        unique = sorted(set(logins))
        found: dict[str, DirectoryUser] = {}
        async with self._db.reading("directory_users_by_logins") as conn:
            for i in range(0, len(unique), 500):
                query = user_select(with_photo=True).where(_D.login.in_(unique[i : i + 500]))
                for row in await conn.execute(query):
                    found[row.login] = user_from_row(row)
        return found

    async def find(
        self,
        organisation_id: int,
        search: UserFilter,
        *,
        sort: UserSortKey,
        is_descending: bool,
        offset: int,
        limit: int,
    ) -> tuple[list[DirectoryUser], int]:
        """One page of matching users (no photos) and how many match."""
        where = _conditions(organisation_id, search)
        page = (
            user_select(with_photo=False)
            .where(*where)
            .order_by(*_order(sort, is_descending))
            .offset(offset)
            .limit(limit)
        )
        count = select(func.count()).select_from(directory_users).where(*where)
        async with self._db.read("find_directory_users") as conn:
            total = int((await conn.execute(count)).scalar_one())
            rows = (await conn.execute(page)).all() if total > offset else []
        return [user_from_row(r) for r in rows], total

    async def admins(self, organisation_id: int) -> list[DirectoryUser]:
        """The organisation's administrators, by name."""
        query = (
            user_select(with_photo=False)
            .where(_D.organisation_id == organisation_id, _D.is_org_admin)
            .order_by(*_order(UserSortKey.NAME, False))
        )
        async with self._db.read("directory_admins") as conn:
            return [user_from_row(r) for r in await conn.execute(query)]

    async def count_admins(self, organisation_id: int) -> int:
        """How many administrators the organisation has."""
        query = (
            select(func.count())
            .select_from(directory_users)
            .where(_D.organisation_id == organisation_id, _D.is_org_admin)
        )
        async with self._db.reading("count_directory_admins") as conn:
            return int((await conn.execute(query)).scalar_one())

    async def taken_logins(self, logins: Sequence[str]) -> set[str]:
        """Which of ``logins`` an account has."""
        unique = sorted(set(logins))
        found: set[str] = set()
        async with self._db.reading("taken_logins") as conn:
            for i in range(0, len(unique), 500):
                query = select(_A.login).where(_A.login.in_(unique[i : i + 500]))
                found.update((await conn.execute(query)).scalars())
        return found

    async def set_disabled(self, login: str, is_disabled: bool) -> bool:
        """Set ``accounts.is_disabled``."""
        stmt = update(accounts).where(_A.login == login).values(is_disabled=is_disabled)
        async with self._db.transaction("set_account_disabled") as txn:
            return (await txn.conn.execute(stmt)).rowcount > 0

    async def unlock(self, login: str) -> bool:
        """Clear the account's lock and failure count."""
        stmt = update(accounts).where(_A.login == login).values(failed_logins=0, is_locked=False)
        async with self._db.transaction("unlock_account") as txn:
            return (await txn.conn.execute(stmt)).rowcount > 0

    async def remove(self, login: str) -> bool:
        """Delete the account; profile, PIN, resets and memberships go with it (cascade)."""
        stmt = delete(accounts).where(_A.login == login)
        async with self._db.transaction("remove_directory_account") as txn:
            return (await txn.conn.execute(stmt)).rowcount > 0

    # -- PINs ---------------------------------------------------------------------------------

    async def get_pin(self, login: str) -> StoredPin | None:
        """The user's PIN hash."""
        query = select(_P.pin_hash, _P.is_temporary, _P.set_at).where(_P.login == login)
        async with self._db.reading("get_pin") as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return StoredPin(
            pin_hash=row.pin_hash, is_temporary=bool(row.is_temporary), set_at=row.set_at
        )

    async def has_pin(self, login: str) -> bool:
        """Whether the user has a PIN (an inline point read: the FAST login's hot path)."""
        params = {"login": login}
        row = await self._db.fetch("has_pin", lambda c: c.execute(_HAS_PIN, params).first())
        return row is not None

    async def set_pin(self, login: str, pin: StoredPin) -> None:
        """Set or replace the user's PIN."""
        values = {
            "login": login,
            "pin_hash": pin.pin_hash,
            "is_temporary": pin.is_temporary,
            "set_at": pin.set_at,
        }
        async with self._db.transaction("set_pin") as txn:
            await txn.conn.execute(self._upsert_pin, values)

    async def add_pin_reset(self, token_hash: str, reset: PinReset) -> None:
        """Save a PIN-reset link."""
        values = {
            "token_hash": token_hash,
            "login": reset.login,
            "created_at": reset.created_at,
            "expires_at": reset.expires_at,
            "used_at": reset.used_at,
        }
        async with self._db.transaction("add_pin_reset") as txn:
            await txn.conn.execute(insert(pin_resets).values(values))

    async def get_pin_reset(self, token_hash: str) -> PinReset | None:
        """A PIN-reset link by digest."""
        query = select(_R.login, _R.created_at, _R.expires_at, _R.used_at).where(
            _R.token_hash == token_hash
        )
        async with self._db.reading("get_pin_reset") as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return PinReset(
            login=row.login,
            created_at=row.created_at,
            expires_at=row.expires_at,
            used_at=row.used_at,
        )

    async def use_pin_reset(self, token_hash: str, at: datetime) -> bool:
        """Mark the link used if it is unused and unexpired (one statement: no double use)."""
        stmt = (
            update(pin_resets)
            .where(_R.token_hash == token_hash, _R.used_at.is_(None), _R.expires_at > at)
            .values(used_at=at)
        )
        async with self._db.transaction("use_pin_reset") as txn:
            return (await txn.conn.execute(stmt)).rowcount > 0
