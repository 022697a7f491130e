"""Break-the-glass grants (:class:`carewire.security.phi_access.BreakGlassStore`).

The reason a clinician gives is sealed with the keyring (``break_glass.reason``
bound to the row's login and time): it may well name the patient.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select

from carewire.security.envelope import Keyring
from carewire.security.phi_access import Grant
from carewire.storage.database import Database
from carewire.storage.tables import break_glass

_B = break_glass.c


def _aad(login: str, granted_at: datetime) -> bytes:
    return f"break_glass.reason|{login}|{granted_at.isoformat()}".encode()


class SqlBreakGlassStore:
    """Grants on SQLAlchemy Core, reasons sealed."""

    def __init__(self, db: Database, keyring: Keyring) -> None:
        """Use ``db``; seal reasons with ``keyring``."""
        self._db = db
        self._keyring = keyring

    async def add(self, grant: Grant) -> Grant:
        """Store ``grant``; returns it with its id."""
        sealed = self._keyring.seal_text(grant.reason, aad=_aad(grant.login, grant.granted_at))
        async with self._db.transaction("add_break_glass") as txn:
            result = await txn.conn.execute(
                insert(break_glass)
                .values(
                    login=grant.login,
                    dataset=grant.dataset,
                    record_id=grant.record_id,
                    reason=sealed,
                    remote_ip=grant.remote_ip[:64],
                    granted_at=grant.granted_at,
                    expires_at=grant.expires_at,
                )
                .returning(_B.id)
            )
            new_id = int(result.scalar_one())
        return Grant(
            id=new_id,
            login=grant.login,
            dataset=grant.dataset,
            record_id=grant.record_id,
            reason=grant.reason,
            remote_ip=grant.remote_ip,
            granted_at=grant.granted_at,
            expires_at=grant.expires_at,
        )

    async def active(self, login: str, dataset: str, record_id: int, now: datetime) -> Grant | None:
        """The latest unexpired grant of ``login`` for one record."""
        stmt = (
            select(break_glass)
            .where(
                _B.login == login,
                _B.dataset == dataset,
                _B.record_id == record_id,
                _B.expires_at > now,
            )
            .order_by(_B.id.desc())
            .limit(1)
        )
        async with self._db.read("active_break_glass") as conn:
            row = (await conn.execute(stmt)).mappings().first()
        return None if row is None else self._grant(row)

    async def since(self, start: datetime, limit: int) -> list[Grant]:
        """Grants made at or after ``start``, newest first."""
        stmt = select(break_glass).where(_B.granted_at >= start).order_by(_B.id.desc()).limit(limit)
        async with self._db.read("list_break_glass") as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [self._grant(r) for r in rows]

    def _grant(self, row: object) -> Grant:
        r = dict(row)  # type: ignore[call-overload]
        return Grant(
            id=int(r["id"]),
            login=r["login"],
            dataset=r["dataset"],
            record_id=int(r["record_id"]),
            reason=self._keyring.open_text(r["reason"], aad=_aad(r["login"], r["granted_at"])),
            remote_ip=r["remote_ip"],
            granted_at=r["granted_at"],
            expires_at=r["expires_at"],
        )
