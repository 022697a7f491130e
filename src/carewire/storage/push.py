"""Push registrations, enables and attempts (:class:`carewire.push.records.PushStore`).

Device tokens and enable secrets are sealed with the keyring, bound to the
owning account and node (moved to another row, they do not decrypt).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from carewire.errors import NotFoundError
from carewire.push.model import AttemptState, PushPriority, PushService, RegistrationState
from carewire.push.records import (
    Attempt,
    AttemptChange,
    NewAttempt,
    NewRegistration,
    PushEnable,
    Registration,
)
from carewire.security.envelope import Keyring
from carewire.storage import dialects
from carewire.storage.database import Database
from carewire.storage.tables_push import push_attempts, push_enables, push_registrations

log = logging.getLogger(__name__)

_R = push_registrations.c
_E = push_enables.c
_A = push_attempts.c


_UPDATE = (
    update(push_attempts)
    .where(_A.opaque_id == bindparam("key"))
    .values(
        state=bindparam("state"),
        status=bindparam("status"),
        reason=bindparam("reason"),
        provider_id=bindparam("provider_id"),
        tries=bindparam("tries"),
        updated_at=bindparam("updated_at"),
    )
)


def _change(change: AttemptChange) -> dict[str, object]:
    return {
        "state": change.state.value,
        "status": change.status,
        "reason": change.reason[:128],
        "provider_id": change.provider_id[:255],
        "tries": change.tries,
        "updated_at": change.at,
    }


def _aad(kind: str, login: str, node: str) -> bytes:
    return f"push-{kind}\x00{login}\x00{node}".encode()


class SqlPushStore:
    """The push store on SQLAlchemy Core."""

    def __init__(self, db: Database, keyring: Keyring) -> None:
        self._db = db
        self._keyring = keyring
        self._upsert_enable = dialects.upsert(db.dialect, push_enables, ["owner", "jid", "node"])

    def _registration(self, row: Any) -> Registration:
        return Registration(
            id=int(row.id),
            node=row.node,
            login=row.owner,
            device=row.device,
            service=PushService(row.service),
            token=self._keyring.open_text(row.token, aad=_aad("token", row.owner, row.node)),
            topic=row.topic,
            state=RegistrationState(row.state),
            reason=row.reason,
            created_at=row.created_at,
        )

    async def add_registration(self, new: NewRegistration) -> Registration:
        """Store a registration (one per node).

        Raises:
            NotFoundError: ``new.login`` has no account.
        """
        values = {
            "node": new.node,
            "secret_hash": new.secret_hash,
            "owner": new.login,
            "device": new.device,
            "service": new.service.value,
            "token": self._keyring.seal_text(new.token, aad=_aad("token", new.login, new.node)),
            "topic": new.topic,
            "state": RegistrationState.ACTIVE.value,
            "reason": "",
            "created_at": new.at,
            "updated_at": new.at,
        }
        try:
            async with self._db.transaction("push_register") as txn:
                result = await txn.conn.execute(insert(push_registrations).returning(_R.id), values)
                reg_id = int(result.scalar_one())
        except IntegrityError as exc:
            raise NotFoundError(f"no account {new.login!r}") from exc
        return Registration(
            id=reg_id,
            node=new.node,
            login=new.login,
            device=new.device,
            service=new.service,
            token=new.token,
            topic=new.topic,
            state=RegistrationState.ACTIVE,
            reason="",
            created_at=new.at,
        )

    async def registration(self, node: str) -> tuple[Registration, str] | None:
        """The registration of ``node`` and its secret's hash, or None."""
        async with self._db.read("push_registration") as conn:
            row = (await conn.execute(select(push_registrations).where(_R.node == node))).first()
        return None if row is None else (self._registration(row), row.secret_hash)

    async def registrations_of(self, login: str) -> list[Registration]:
        """The account's registrations, oldest first."""
        query = select(push_registrations).where(_R.owner == login).order_by(_R.id)
        async with self._db.read("push_registrations_of") as conn:
            rows = (await conn.execute(query)).all()
        return [self._registration(r) for r in rows]

    async def mark_registration(
        self, reg_id: int, state: RegistrationState, reason: str, at: datetime
    ) -> None:
        """Change a registration's state."""
        values = {"state": state.value, "reason": reason[:128], "updated_at": at}
        async with self._db.transaction("push_mark_registration") as txn:
            await txn.conn.execute(update(push_registrations).where(_R.id == reg_id), values)

    async def delete_registration(self, login: str, node: str) -> bool:
        """Remove one of the account's registrations; False if there was none."""
        stmt = delete(push_registrations).where(_R.owner == login, _R.node == node)
        async with self._db.transaction("push_unregister") as txn:
            return bool((await txn.conn.execute(stmt)).rowcount)

    async def add_enable(self, enable: PushEnable) -> None:
        """Store (or replace) an enable."""
        aad = _aad("secret", enable.login, enable.node)
        values = {
            "owner": enable.login,
            "jid": enable.jid,
            "node": enable.node,
            "resource": enable.resource,
            "secret": self._keyring.seal_text(enable.secret, aad=aad),
            "enabled_at": enable.enabled_at,
        }
        try:
            async with self._db.transaction("push_enable") as txn:
                await txn.conn.execute(self._upsert_enable, values)
        except IntegrityError as exc:
            raise NotFoundError(f"no account {enable.login!r}") from exc

    async def remove_enables(self, login: str, jid: str, node: str | None) -> int:
        """Remove the account's enables at ``jid`` (one node, or all); how many went."""
        stmt = delete(push_enables).where(_E.owner == login, _E.jid == jid)
        if node is not None:
            stmt = stmt.where(_E.node == node)
        async with self._db.transaction("push_disable") as txn:
            return int((await txn.conn.execute(stmt)).rowcount)

    async def enables(self) -> list[PushEnable]:
        """Every enable."""
        async with self._db.read("push_enables") as conn:
            rows = (await conn.execute(select(push_enables).order_by(_E.enabled_at))).all()
        return [
            PushEnable(
                login=r.owner,
                resource=r.resource,
                jid=r.jid,
                node=r.node,
                secret=self._keyring.open_text(r.secret, aad=_aad("secret", r.owner, r.node)),
                enabled_at=r.enabled_at,
            )
            for r in rows
        ]

    async def save_attempts(
        self, new: Sequence[NewAttempt], changes: Sequence[tuple[str, AttemptChange]]
    ) -> None:
        """Insert ``new`` attempts, then apply ``changes`` (by opaque id), in one transaction."""
        rows = [
            {
                "registration_id": a.registration_id
                if a.registration is None
                else a.registration.id,
                "login": a.login,
                "device": a.device,
                "service": a.service if a.registration is None else a.registration.service.value,
                "priority": a.priority.value,
                "opaque_id": a.opaque_id,
                "created_at": a.change.at,
                **_change(a.change),
            }
            for a in new
        ]
        updates = [{"key": key, **_change(change)} for key, change in changes]
        async with self._db.transaction("push_attempts") as txn:
            if rows:
                await txn.conn.execute(insert(push_attempts), rows)
            if updates:
                await txn.conn.execute(_UPDATE, updates)

    async def attempts(
        self, *, login: str | None = None, state: AttemptState | None = None, limit: int = 100
    ) -> Sequence[Attempt]:
        """Recent attempts, newest first."""
        query = select(push_attempts).order_by(_A.id.desc()).limit(limit)
        if login is not None:
            query = query.where(_A.login == login)
        if state is not None:
            query = query.where(_A.state == state.value)
        async with self._db.read("push_attempts") as conn:
            rows = (await conn.execute(query)).all()
        return [
            Attempt(
                id=int(r.id),
                registration_id=r.registration_id,
                login=r.login,
                device=r.device,
                service=r.service,
                state=AttemptState(r.state),
                priority=PushPriority(r.priority),
                opaque_id=r.opaque_id,
                provider_id=r.provider_id,
                status=r.status,
                reason=r.reason,
                tries=int(r.tries),
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in rows
        ]
