"""Console users, sessions and reset links (:class:`carewire.security.console_auth.ConsoleStore`).

Tables ``console_users``, ``console_sessions`` and ``password_resets``
(migration 0003). Tokens arrive here as SHA-256 digests only. Completing a
password reset is one transaction: the link is marked used only if it is
still unused and unexpired (so two concurrent submissions cannot both
succeed), the password is replaced and every session of the user is deleted.
A lock stays: the policy says only an administrator unlocks an account.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, false, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from carewire.errors import ConflictError
from carewire.security.console_auth import ConsoleSession, ConsoleUser, Role
from carewire.security.console_model import ResetLink
from carewire.storage.database import Database
from carewire.storage.tables import console_sessions, console_users, password_resets

_U = console_users.c
_S = console_sessions.c
_R = password_resets.c
_USER_COLUMNS = (
    _U.id,
    _U.username,
    _U.email,
    _U.role,
    _U.failed_logins,
    _U.last_failed_at,
    _U.is_locked,
    _U.must_change_password,
    _U.created_at,
    _U.password_changed_at,
    _U.organisation_id,
)


def _user(row: Any) -> ConsoleUser:
    return ConsoleUser(
        id=int(row.id),
        username=row.username,
        email=row.email,
        role=Role(row.role),
        failed_logins=int(row.failed_logins),
        last_failed_at=row.last_failed_at,
        is_locked=bool(row.is_locked),
        must_change_password=bool(row.must_change_password),
        created_at=row.created_at,
        password_changed_at=row.password_changed_at,
        organisation_id=None if row.organisation_id is None else int(row.organisation_id),
    )


class SqlConsoleStore:
    """:class:`carewire.security.console_auth.ConsoleStore` on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every operation."""
        self._db = db

    # -- users -------------------------------------------------------------------

    async def add_user(
        self,
        *,
        username: str,
        email: str | None,
        password_hash: str,
        role: Role,
        must_change_password: bool,
        at: datetime,
        organisation_id: int | None = None,
    ) -> ConsoleUser:
        """Save a new user.

        Raises:
            ConflictError: The username or e-mail is taken.
        """
        taken = select(_U.id).where(or_(_U.username == username, _U.email == (email or username)))
        values = {
            "username": username,
            "email": email,
            "password_hash": password_hash,
            "role": role.value,
            "must_change_password": must_change_password,
            "created_at": at,
            "password_changed_at": at,
            "organisation_id": organisation_id,
        }
        try:
            async with self._db.transaction("add_console_user") as txn:
                if (await txn.conn.execute(taken)).first() is not None:
                    raise ConflictError("that username or e-mail address is already in use")
                row = (
                    await txn.conn.execute(
                        insert(console_users).values(values).returning(*_USER_COLUMNS)
                    )
                ).one()
        except IntegrityError:  # a concurrent add won the race
            raise ConflictError("that username or e-mail address is already in use") from None
        return _user(row)

    async def remove_user(self, username: str) -> bool:
        """Delete a user with its sessions and reset links (cascade); whether it existed."""
        stmt = delete(console_users).where(_U.username == username)
        async with self._db.transaction("remove_console_user") as txn:
            return (await txn.conn.execute(stmt)).rowcount > 0

    async def rename_user(self, username: str, *, new_username: str, email: str | None) -> bool:
        """Change a user's username and e-mail; whether it existed.

        Raises:
            ConflictError: The new username or e-mail is taken by someone else.
        """
        taken = select(_U.id).where(
            _U.username != username,
            or_(_U.username == new_username, _U.email == (email or new_username)),
        )
        stmt = (
            update(console_users)
            .where(_U.username == username)
            .values(username=new_username, email=email)
        )
        async with self._db.transaction("rename_console_user") as txn:
            if (await txn.conn.execute(taken)).first() is not None:
                raise ConflictError("that username or e-mail address is already in use")
            return (await txn.conn.execute(stmt)).rowcount > 0

    async def count_users(self) -> int:
        """How many console users exist."""
        async with self._db.read("count_console_users") as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(console_users))).one()[0]
            )

    async def list_users(self) -> list[ConsoleUser]:
        """Every user, by username."""
        async with self._db.read("list_console_users") as conn:
            rows = await conn.execute(select(*_USER_COLUMNS).order_by(_U.username))
            return [_user(r) for r in rows]

    async def find(self, login: str) -> tuple[ConsoleUser, str] | None:
        """The user whose username or e-mail is ``login``, and the password hash."""
        query = (
            select(*_USER_COLUMNS, _U.password_hash)
            .where(or_(_U.username == login, _U.email == login))
            .order_by(_U.username != login)  # a username beats someone else's e-mail
            .limit(1)
        )
        async with self._db.reading("find_console_user") as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else (_user(row), str(row.password_hash))

    async def record_failure(self, user_id: int, at: datetime, *, lock_after: int) -> ConsoleUser:
        """Count one failed sign-in; lock the account at ``lock_after`` failures."""
        stmt = (
            update(console_users)
            .where(_U.id == user_id)
            .values(
                failed_logins=_U.failed_logins + 1,
                last_failed_at=at,
                is_locked=or_(_U.is_locked, _U.failed_logins + 1 >= lock_after),
            )
            .returning(*_USER_COLUMNS)
        )
        async with self._db.transaction("record_console_failure") as txn:
            return _user((await txn.conn.execute(stmt)).one())

    async def reset_failures(self, user_id: int) -> None:
        """Clear the failure counter (the lock, if any, stays)."""
        stmt = update(console_users).where(_U.id == user_id).values(failed_logins=0)
        async with self._db.transaction("reset_console_failures") as txn:
            await txn.conn.execute(stmt)

    async def set_password(
        self, user_id: int, password_hash: str, *, at: datetime, must_change: bool
    ) -> None:
        """Replace the password hash."""
        stmt = (
            update(console_users)
            .where(_U.id == user_id)
            .values(
                password_hash=password_hash,
                password_changed_at=at,
                must_change_password=must_change,
            )
        )
        async with self._db.transaction("set_console_password") as txn:
            await txn.conn.execute(stmt)

    async def unlock(self, username: str) -> ConsoleUser | None:
        """Unlock and clear the failures; None if no such user."""
        stmt = (
            update(console_users)
            .where(_U.username == username)
            .values(failed_logins=0, is_locked=false())
            .returning(*_USER_COLUMNS)
        )
        async with self._db.transaction("unlock_console_user") as txn:
            row = (await txn.conn.execute(stmt)).first()
        return None if row is None else _user(row)

    # -- sessions ----------------------------------------------------------------

    async def add_session(
        self, *, token_hash: str, user_id: int, csrf_token: str, at: datetime, remote_ip: str
    ) -> None:
        """Save a new session."""
        values = {
            "token_hash": token_hash,
            "user_id": user_id,
            "csrf_token": csrf_token,
            "created_at": at,
            "last_seen_at": at,
            "remote_ip": remote_ip,
        }
        async with self._db.transaction("add_console_session") as txn:
            await txn.conn.execute(insert(console_sessions).values(values))

    async def get_session(self, token_hash: str) -> ConsoleSession | None:
        """The session and its user."""
        query = (
            select(
                *_USER_COLUMNS,
                _S.token_hash,
                _S.csrf_token,
                _S.created_at.label("session_created_at"),
                _S.last_seen_at,
                _S.remote_ip,
            )
            .select_from(console_sessions.join(console_users, _S.user_id == _U.id))
            .where(_S.token_hash == token_hash)
        )
        async with self._db.read("get_console_session") as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return ConsoleSession(
            token_hash=row.token_hash,
            user=_user(row),
            csrf_token=row.csrf_token,
            created_at=row.session_created_at,
            last_seen_at=row.last_seen_at,
            remote_ip=row.remote_ip,
        )

    async def touch_session(self, token_hash: str, at: datetime) -> None:
        """Set the session's ``last_seen_at``."""
        stmt = update(console_sessions).where(_S.token_hash == token_hash).values(last_seen_at=at)
        async with self._db.transaction("touch_console_session") as txn:
            await txn.conn.execute(stmt)

    async def delete_session(self, token_hash: str) -> bool:
        """End one session; whether it existed."""
        stmt = delete(console_sessions).where(_S.token_hash == token_hash)
        async with self._db.transaction("delete_console_session") as txn:
            return (await txn.conn.execute(stmt)).rowcount > 0

    async def delete_sessions(self, user_id: int, *, keep: str | None = None) -> int:
        """End the user's sessions (but ``keep``); how many."""
        stmt = delete(console_sessions).where(_S.user_id == user_id)
        if keep is not None:
            stmt = stmt.where(_S.token_hash != keep)
        async with self._db.transaction("delete_console_sessions") as txn:
            return int((await txn.conn.execute(stmt)).rowcount)

    # -- password resets ---------------------------------------------------------

    async def add_reset(
        self, *, token_hash: str, user_id: int, at: datetime, expires_at: datetime
    ) -> None:
        """Save a reset link."""
        values = {
            "token_hash": token_hash,
            "user_id": user_id,
            "created_at": at,
            "expires_at": expires_at,
        }
        async with self._db.transaction("add_password_reset") as txn:
            # A new link supersedes the user's older ones: only the latest mail works.
            await txn.conn.execute(
                update(password_resets)
                .where(_R.user_id == user_id, _R.used_at.is_(None))
                .values(used_at=at)
            )
            await txn.conn.execute(insert(password_resets).values(values))

    async def get_reset(self, token_hash: str) -> ResetLink | None:
        """A reset link by digest."""
        query = select(_R.user_id, _R.created_at, _R.expires_at, _R.used_at).where(
            _R.token_hash == token_hash
        )
        async with self._db.read("get_password_reset") as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return ResetLink(
            user_id=int(row.user_id),
            created_at=row.created_at,
            expires_at=row.expires_at,
            used_at=row.used_at,
        )

    async def complete_reset(
        self, token_hash: str, *, password_hash: str, at: datetime
    ) -> ConsoleUser | None:
        """In one transaction: use a valid link, set the password, end every session.

        Returns None (and changes nothing) when the link is unknown, used or expired.
        """
        use = (
            update(password_resets)
            .where(
                _R.token_hash == token_hash,
                _R.used_at.is_(None),
                _R.expires_at > at,
            )
            .values(used_at=at)
            .returning(_R.user_id)
        )
        async with self._db.transaction("complete_password_reset") as txn:
            row = (await txn.conn.execute(use)).first()
            if row is None:
                return None
            user_id = int(row.user_id)
            changed = (
                update(console_users)
                .where(_U.id == user_id)
                .values(
                    password_hash=password_hash,
                    password_changed_at=at,
                    must_change_password=false(),
                )
                .returning(*_USER_COLUMNS)
            )
            user = _user((await txn.conn.execute(changed)).one())
            await txn.conn.execute(delete(console_sessions).where(_S.user_id == user_id))
            # Any other link of the user's is void now too.
            await txn.conn.execute(
                update(password_resets)
                .where(_R.user_id == user_id, _R.used_at.is_(None))
                .values(used_at=at)
            )
        return user
