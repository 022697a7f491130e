"""Accounts, SCRAM credentials and failed-login state (:class:`AccountStore`).

``get_credential``, ``record_failure`` and ``reset_failures`` sit on the
login path: each is one prebuilt statement, and ``reset_failures`` reads
before it writes so that a successful login normally writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Integer,
    bindparam,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    update,
)

from carewire.core.stores import Account, NewAccount, ScramCredential
from carewire.errors import ConflictError, NotFoundError
from carewire.storage import dialects
from carewire.storage.database import Database
from carewire.storage.tables import UTCDateTime, accounts, credentials

log = logging.getLogger(__name__)

_A = accounts.c
_C = credentials.c
_COLUMNS = (
    _A.login,
    _A.first_name,
    _A.last_name,
    _A.created_at,
    _A.failed_logins,
    _A.last_failed_at,
    _A.is_locked,
    _A.is_disabled,
)

_GET = select(*_COLUMNS).where(_A.login == bindparam("login"))
_EXISTS = select(_A.login).where(_A.login == bindparam("login"))
_EXISTING = select(_A.login).where(_A.login.in_(bindparam("logins", expanding=True)))
_LOCK_ROW = _EXISTS.with_for_update()
_COUNT = select(func.count()).select_from(accounts)
_DELETE = delete(accounts).where(_A.login == bindparam("login"))
_INSERT_CREDENTIAL = insert(credentials)
_DELETE_CREDENTIALS = delete(credentials).where(_C.login == bindparam("login"))
_GET_FOR_LOGIN = (
    select(*_COLUMNS, _C.salt, _C.iterations, _C.stored_key, _C.server_key)
    .select_from(
        accounts.outerjoin(
            credentials, (_C.login == _A.login) & (_C.mechanism == bindparam("mechanism"))
        )
    )
    .where(_A.login == bindparam("login"))
)
_GET_CREDENTIAL = select(_C.salt, _C.iterations, _C.stored_key, _C.server_key).where(
    _C.login == bindparam("login"), _C.mechanism == bindparam("mechanism")
)
_RECORD_FAILURE = (
    update(accounts)
    .where(_A.login == bindparam("k_login"))
    .values(
        failed_logins=_A.failed_logins + 1,
        last_failed_at=bindparam("k_at", type_=UTCDateTime()),
        is_locked=or_(_A.is_locked, _A.failed_logins + 1 >= bindparam("k_lock", type_=Integer)),
    )
    .returning(*_COLUMNS)
)
_FAILED_LOGINS = select(_A.failed_logins).where(_A.login == bindparam("login"))
_RESET_FAILURES = (
    update(accounts)
    .where(_A.login == bindparam("k_login"), _A.failed_logins != 0)
    .values(failed_logins=0)
)
_SET_DISABLED = (
    update(accounts)
    .where(_A.login == bindparam("k_login"))
    .values(is_disabled=bindparam("k_disabled"))
)
_DISABLED = select(_A.login).where(
    _A.login.in_(bindparam("logins", expanding=True)), _A.is_disabled
)
_UNLOCK = (
    update(accounts)
    .where(_A.login == bindparam("k_login"))
    .values(failed_logins=0, is_locked=false())
)


def _account(row: Sequence[Any]) -> Account:
    return Account(
        login=row[0],
        first_name=row[1],
        last_name=row[2],
        created_at=row[3],
        failed_logins=row[4],
        last_failed_at=row[5],
        is_locked=row[6],
        is_disabled=row[7],
    )


def _account_row(new: NewAccount, now: datetime) -> dict[str, Any]:
    return {
        "login": new.login,
        "first_name": new.first_name,
        "last_name": new.last_name,
        "created_at": now,
        "failed_logins": 0,
        "last_failed_at": None,
        "is_locked": False,
        "is_disabled": False,
    }


def _credential_rows(login: str, creds: Sequence[ScramCredential]) -> list[dict[str, Any]]:
    # One row per mechanism; a repeated mechanism keeps the last keys given.
    by_mechanism = {c.mechanism: c for c in creds}
    return [
        {
            "login": login,
            "mechanism": c.mechanism,
            "salt": c.salt,
            "iterations": c.iterations,
            "stored_key": c.stored_key,
            "server_key": c.server_key,
        }
        for c in by_mechanism.values()
    ]


class SqlAccountStore:
    """:class:`carewire.core.stores.AccountStore` on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Prepare statements for ``db``'s dialect."""
        self._db = db
        self._insert = dialects.insert_ignore(db.dialect, accounts, ["login"]).returning(_A.login)
        self._list_order = dialects.binary_order(db.dialect, _A.login)

    async def create(self, account: NewAccount) -> Account:
        """Create an account; raises ``ConflictError`` if the login exists."""
        created, skipped = await self._insert_many([account], "create_account")
        if skipped:
            raise ConflictError(f"account {account.login!r} exists")
        return created[0]

    async def create_many(self, accounts: Iterable[NewAccount]) -> tuple[int, list[str]]:
        """Create many accounts in one transaction.

        Logins that exist already (or repeat within ``accounts``) are skipped.

        Returns:
            (number created, skipped logins in input order).
        """
        created, skipped = await self._insert_many(list(accounts), "create_accounts")
        log.info("created %d accounts, skipped %d existing", len(created), len(skipped))
        return len(created), skipped

    async def _insert_many(
        self, new: Sequence[NewAccount], name: str
    ) -> tuple[list[Account], list[str]]:
        now = datetime.now(UTC)
        unique: dict[str, NewAccount] = {}
        for acc in new:
            unique.setdefault(acc.login, acc)
        if not unique:
            return [], []
        rows = [_account_row(a, now) for a in unique.values()]
        async with self._db.transaction(name) as txn:
            result = await txn.conn.execute(self._insert, rows)
            inserted = set(result.scalars().all())
            cred_rows = [
                row
                for login in inserted
                for row in _credential_rows(login, unique[login].credentials)
            ]
            if cred_rows:
                await txn.conn.execute(_INSERT_CREDENTIAL, cred_rows)
        created = [
            Account(login=a.login, first_name=a.first_name, last_name=a.last_name, created_at=now)
            for a in unique.values()
            if a.login in inserted
        ]
        seen: set[str] = set()
        skipped: list[str] = []
        for acc in new:  # input order; repeats within the input are skipped too
            if acc.login in seen or acc.login not in inserted:
                skipped.append(acc.login)
            seen.add(acc.login)
        return created, skipped

    async def get(self, login: str) -> Account | None:
        """The account, or None."""
        async with self._db.read("get_account") as conn:
            row = (await conn.execute(_GET, {"login": login})).first()
        return None if row is None else _account(row)

    async def exists(self, login: str) -> bool:
        """Whether the account exists."""
        async with self._db.read("account_exists") as conn:
            return (await conn.execute(_EXISTS, {"login": login})).first() is not None

    async def existing(self, logins: Sequence[str]) -> set[str]:
        """Which of ``logins`` exist (asked in chunks, so any number may be passed)."""
        found: set[str] = set()
        unique = sorted(set(logins))
        async with self._db.read("existing_accounts") as conn:
            for i in range(0, len(unique), 500):
                rows = await conn.execute(_EXISTING, {"logins": unique[i : i + 500]})
                found.update(rows.scalars())
        return found

    async def list(self, *, offset: int = 0, limit: int | None = None) -> list[Account]:
        """Accounts ordered by login (code point order)."""
        stmt = select(*_COLUMNS).order_by(self._list_order).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        async with self._db.read("list_accounts") as conn:
            return [_account(row) for row in await conn.execute(stmt)]

    async def count(self) -> int:
        """Number of accounts."""
        async with self._db.read("count_accounts") as conn:
            return int((await conn.execute(_COUNT)).scalar_one())

    async def remove(self, login: str) -> bool:
        """Delete the account and everything it owns; False if it did not exist."""
        async with self._db.transaction("remove_account") as txn:
            result = await txn.conn.execute(_DELETE, {"login": login})
        return result.rowcount > 0

    async def get_credential(self, login: str, mechanism: str) -> ScramCredential | None:
        """The stored SCRAM keys for ``mechanism``, or None."""
        params = {"login": login, "mechanism": mechanism}
        async with self._db.read("get_credential") as conn:
            row = (await conn.execute(_GET_CREDENTIAL, params)).first()
        if row is None:
            return None
        return ScramCredential(
            mechanism=mechanism,
            salt=bytes(row[0]),
            iterations=row[1],
            stored_key=bytes(row[2]),
            server_key=bytes(row[3]),
        )

    async def get_for_login(
        self, login: str, mechanism: str
    ) -> tuple[Account | None, ScramCredential | None]:
        """The account and its keys for ``mechanism`` in one query (the login path)."""
        params = {"login": login, "mechanism": mechanism}
        row = await self._db.fetch(
            "get_for_login", lambda conn: conn.execute(_GET_FOR_LOGIN, params).first()
        )
        if row is None:
            return None, None
        n = len(_COLUMNS)
        if row[n] is None:
            return _account(row), None
        cred = ScramCredential(
            mechanism=mechanism,
            salt=bytes(row[n]),
            iterations=row[n + 1],
            stored_key=bytes(row[n + 2]),
            server_key=bytes(row[n + 3]),
        )
        return _account(row), cred

    async def set_credentials(self, login: str, credentials: Sequence[ScramCredential]) -> None:
        """Replace all SCRAM credentials; raises ``NotFoundError`` for unknown logins."""
        rows = _credential_rows(login, credentials)
        async with self._db.transaction("set_credentials") as txn:
            # The write comes first so that SQLite's transaction (and write
            # lock) starts before the check; PostgreSQL locks the row.
            await txn.conn.execute(_DELETE_CREDENTIALS, {"login": login})
            if (await txn.conn.execute(_LOCK_ROW, {"login": login})).first() is None:
                raise NotFoundError(f"no account {login!r}")
            if rows:
                await txn.conn.execute(_INSERT_CREDENTIAL, rows)

    async def record_failure(self, login: str, at: datetime, *, lock_after: int) -> Account:
        """Count one failed login; locks the account when the count reaches ``lock_after``.

        Raises:
            NotFoundError: No such account.
        """
        params = {"k_login": login, "k_at": at, "k_lock": lock_after}
        async with self._db.transaction("record_login_failure") as txn:
            row = (await txn.conn.execute(_RECORD_FAILURE, params)).first()
        if row is None:
            raise NotFoundError(f"no account {login!r}")
        return _account(row)

    async def reset_failures(self, login: str) -> None:
        """Clear the failed-login counter after a success (no write if already zero).

        The lock, if any, stays: only :meth:`unlock` removes it.
        """
        async with self._db.read("get_failed_logins") as conn:
            failed = (await conn.execute(_FAILED_LOGINS, {"login": login})).scalar()
        if not failed:
            return
        async with self._db.transaction("reset_login_failures") as txn:
            await txn.conn.execute(_RESET_FAILURES, {"k_login": login})

    async def set_disabled(self, login: str, is_disabled: bool) -> bool:
        """Disable or enable login ("Can Login"); False if the account does not exist."""
        params = {"k_login": login, "k_disabled": is_disabled}
        async with self._db.transaction("set_account_disabled") as txn:
            result = await txn.conn.execute(_SET_DISABLED, params)
        return result.rowcount > 0

    async def disabled(self, logins: Sequence[str]) -> set[str]:
        """Which of ``logins`` are disabled (asked in chunks, so any number may be passed)."""
        found: set[str] = set()
        unique = sorted(set(logins))
        async with self._db.read("disabled_accounts") as conn:
            for i in range(0, len(unique), 500):
                rows = await conn.execute(_DISABLED, {"logins": unique[i : i + 500]})
                found.update(rows.scalars())
        return found

    async def unlock(self, login: str) -> bool:
        """Unlock and clear the counter; False if the account does not exist."""
        async with self._db.transaction("unlock_account") as txn:
            result = await txn.conn.execute(_UNLOCK, {"k_login": login})
        return result.rowcount > 0
