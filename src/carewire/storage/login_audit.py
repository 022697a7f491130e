"""The login audit (:class:`LoginAuditStore`): every login success and failure.

Logins need not exist (failed attempts for unknown accounts are audited
too). Values longer than their column are cut to fit rather than losing the
whole batch: an audit write must not fail on hostile input.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, insert, select

from carewire.core.stores import LoginAttempt, LoginOutcome
from carewire.storage.database import Database
from carewire.storage.tables import UTCDateTime, login_audit

log = logging.getLogger(__name__)

_L = login_audit.c
_INSERT = insert(login_audit)
_COLUMNS = (_L.at, _L.login, _L.remote_ip, _L.transport, _L.mechanism, _L.outcome, _L.reason)
_LIMITS = {
    name: length
    for name in ("login", "remote_ip", "transport", "mechanism", "reason")
    if (length := getattr(login_audit.c[name].type, "length", None)) is not None
}


def _query(by_login: bool, since: bool) -> Select[Any]:
    stmt = select(*_COLUMNS)
    if by_login:
        stmt = stmt.where(_L.login == bindparam("login"))
    if since:
        stmt = stmt.where(_L.at >= bindparam("since", type_=UTCDateTime()))
    return stmt.order_by(_L.at.desc(), _L.id.desc()).limit(bindparam("limit"))


#: Prebuilt queries keyed by (filter by login?, filter by time?).
_QUERIES = {(a, b): _query(a, b) for a in (False, True) for b in (False, True)}


def _row(attempt: LoginAttempt) -> dict[str, Any]:
    row: dict[str, Any] = {
        "at": attempt.at,
        "login": attempt.login,
        "remote_ip": attempt.remote_ip,
        "transport": attempt.transport,
        "mechanism": attempt.mechanism,
        "outcome": LoginOutcome(attempt.outcome).value,
        "reason": attempt.reason,
    }
    for name, length in _LIMITS.items():
        if len(row[name]) > length:
            row[name] = row[name][:length]
    return row


class SqlLoginAuditStore:
    """:class:`carewire.core.stores.LoginAuditStore` on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every operation."""
        self._db = db

    async def append_many(self, attempts: Sequence[LoginAttempt]) -> None:
        """Append attempts in one transaction (none: no transaction)."""
        if not attempts:
            return
        rows = [_row(a) for a in attempts]
        async with self._db.transaction("append_login_audit") as txn:
            await txn.conn.execute(_INSERT, rows)

    async def query(
        self, *, login: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[LoginAttempt]:
        """Most recent first; ``since`` is inclusive."""
        stmt = _QUERIES[login is not None, since is not None]
        params = {"login": login, "since": since, "limit": limit}
        async with self._db.read("query_login_audit") as conn:
            return [
                LoginAttempt(
                    at=r[0],
                    login=r[1],
                    remote_ip=r[2],
                    transport=r[3],
                    mechanism=r[4],
                    outcome=LoginOutcome(r[5]),
                    reason=r[6],
                )
                for r in await conn.execute(stmt, params)
            ]
