"""Federation's trusted domains and stream status (:mod:`carewire.federation.model` stores).

Tables of migration 0022_federation (:mod:`.tables_federation`). Every change
of the policy, the allow-list or the pins increments ``federation_policy.version``
in its own transaction, so a node compares one integer to know whether to reload.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from carewire.core.federation import DomainStatus
from carewire.errors import ConflictError
from carewire.federation.model import (
    POLICY_ROW,
    AllowedDomain,
    PinnedCertificate,
    PolicyRecord,
    ReportedStatus,
    TrustSnapshot,
)
from carewire.storage import dialects
from carewire.storage.database import Database
from carewire.storage.tables_federation import (
    federation_allowed_domains,
    federation_pins,
    federation_policy,
    federation_status,
)

log = logging.getLogger(__name__)

_P = federation_policy.c
_A = federation_allowed_domains.c
_N = federation_pins.c
_S = federation_status.c

_VERSION = select(_P.version).where(_P.id == POLICY_ROW)
_POLICY = select(_P.certificates_only, _P.version, _P.updated_by, _P.updated_at).where(
    _P.id == POLICY_ROW
)
_ALLOWED = select(_A.domain, _A.added_by, _A.added_at).order_by(_A.domain)
_PIN_KEYS = select(_N.domain, _N.sha256, _N.not_after)
_PINS = select(federation_pins).order_by(_N.domain, _N.uploaded_at, _N.sha256)
_STATUS = select(federation_status).order_by(_S.domain, _S.direction, _S.node)


def _pin(row: Any) -> PinnedCertificate:
    return PinnedCertificate(
        domain=row.domain,
        sha256=row.sha256,
        pem=row.pem,
        subject=row.subject,
        not_after=row.not_after,
        uploaded_by=row.uploaded_by,
        uploaded_at=row.uploaded_at,
    )


def _status(row: Any) -> ReportedStatus:
    status = DomainStatus(
        domain=row.domain,
        direction=row.direction,
        node=row.node,
        connected=bool(row.connected),
        auth=row.auth,
        tls_version=row.tls_version,
        fingerprint=row.fingerprint,
        certificate_not_after=row.certificate_not_after,
        since=row.since,
        last_error=row.last_error,
        last_error_at=row.last_error_at,
        queued=int(row.queued),
        stanzas_in=int(row.stanzas_in),
        stanzas_out=int(row.stanzas_out),
    )
    return ReportedStatus(status=status, updated_at=row.updated_at)


async def _bump(
    conn: AsyncConnection, *, by: str, at: datetime, certificates_only: bool | None = None
) -> None:
    """Increment the change counter (creating the policy row if it is missing)."""
    values: dict[str, Any] = {"version": _P.version + 1, "updated_by": by, "updated_at": at}
    if certificates_only is not None:
        values["certificates_only"] = certificates_only
    done = await conn.execute(update(federation_policy).where(_P.id == POLICY_ROW).values(values))
    if done.rowcount == 0:
        await conn.execute(
            insert(federation_policy).values(
                id=POLICY_ROW,
                certificates_only=bool(certificates_only),
                version=1,
                updated_by=by,
                updated_at=at,
            )
        )


class SqlTrustStore:
    """:class:`carewire.federation.model.TrustStore` on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every operation."""
        self._db = db

    async def version(self) -> int:
        """The change counter (0 before any change)."""
        async with self._db.read("federation_version") as conn:
            found = (await conn.execute(_VERSION)).scalar()
        return 0 if found is None else int(found)

    async def snapshot(self) -> TrustSnapshot:
        """Policy, allow-list and pins, read in one transaction (one version)."""
        async with self._db.transaction("federation_snapshot") as txn:
            policy = (await txn.conn.execute(_POLICY)).first()
            allow = (await txn.conn.execute(select(_A.domain))).scalars().all()
            pins: defaultdict[str, dict[str, datetime]] = defaultdict(dict)
            for row in await txn.conn.execute(_PIN_KEYS):
                pins[row.domain][row.sha256] = row.not_after
        return TrustSnapshot(
            version=0 if policy is None else int(policy.version),
            certificates_only=False if policy is None else bool(policy.certificates_only),
            allow=frozenset(allow),
            pins=dict(pins),
        )

    async def policy(self) -> PolicyRecord:
        """The policy with the allow-list's details."""
        async with self._db.read("federation_policy") as conn:
            row = (await conn.execute(_POLICY)).first()
            allow = tuple(
                AllowedDomain(domain=r.domain, added_by=r.added_by, added_at=r.added_at)
                for r in await conn.execute(_ALLOWED)
            )
        if row is None:
            return PolicyRecord(allow=allow)
        return PolicyRecord(
            certificates_only=bool(row.certificates_only),
            allow=allow,
            version=int(row.version),
            updated_by=row.updated_by,
            updated_at=row.updated_at,
        )

    async def set_policy(
        self, *, certificates_only: bool, allow: Sequence[str] | None, by: str, at: datetime
    ) -> None:
        """Set the switch; replace the allow-list unless ``allow`` is None."""
        async with self._db.transaction("federation_set_policy") as txn:
            await _bump(txn.conn, by=by, at=at, certificates_only=certificates_only)
            if allow is None:
                return
            kept = set((await txn.conn.execute(select(_A.domain))).scalars().all())
            wanted = set(allow)
            if kept - wanted:
                await txn.conn.execute(
                    delete(federation_allowed_domains).where(_A.domain.in_(kept - wanted))
                )
            if wanted - kept:
                await txn.conn.execute(
                    insert(federation_allowed_domains),
                    [{"domain": d, "added_by": by, "added_at": at} for d in sorted(wanted - kept)],
                )

    async def add_allowed(self, domain: str, *, by: str, at: datetime) -> bool:
        """Add a partner domain; False when it is on the list already."""
        stmt = dialects.insert_ignore(self._db.dialect, federation_allowed_domains, ["domain"])
        async with self._db.transaction("federation_allow") as txn:
            done = await txn.conn.execute(stmt, {"domain": domain, "added_by": by, "added_at": at})
            if done.rowcount == 0:
                return False
            await _bump(txn.conn, by=by, at=at)
        return True

    async def remove_allowed(
        self, domain: str, *, keep_one: bool, by: str, at: datetime
    ) -> bool | None:
        """Remove a partner domain (None: it is the last one and ``keep_one``)."""
        async with self._db.transaction("federation_disallow") as txn:
            listed = (await txn.conn.execute(select(_A.domain))).scalars().all()
            if domain not in listed:
                return False
            if keep_one and len(listed) == 1:
                return None
            await txn.conn.execute(delete(federation_allowed_domains).where(_A.domain == domain))
            await _bump(txn.conn, by=by, at=at)
        return True

    async def add_pin(self, pin: PinnedCertificate) -> None:
        """Store a pin.

        Raises:
            ConflictError: That certificate is pinned for that domain already.
        """
        try:
            async with self._db.transaction("federation_pin") as txn:
                await txn.conn.execute(
                    insert(federation_pins).values(
                        domain=pin.domain,
                        sha256=pin.sha256,
                        pem=pin.pem,
                        subject=pin.subject[:1024],
                        not_after=pin.not_after,
                        uploaded_by=pin.uploaded_by,
                        uploaded_at=pin.uploaded_at,
                    )
                )
                await _bump(txn.conn, by=pin.uploaded_by, at=pin.uploaded_at)
        except IntegrityError:
            raise ConflictError(
                f"this certificate is already pinned for {pin.domain}", code="certificate-exists"
            ) from None

    async def remove_pin(
        self, domain: str, sha256: str, *, by: str, at: datetime
    ) -> PinnedCertificate | None:
        """Remove a pin; None when there is none for (``domain``, ``sha256``)."""
        where = (_N.domain == domain) & (_N.sha256 == sha256)
        async with self._db.transaction("federation_unpin") as txn:
            row = (await txn.conn.execute(select(federation_pins).where(where))).first()
            if row is None:
                return None
            await txn.conn.execute(delete(federation_pins).where(where))
            await _bump(txn.conn, by=by, at=at)
        return _pin(row)

    async def pins(self, domain: str | None = None) -> list[PinnedCertificate]:
        """The pins of ``domain``, or of every domain."""
        query = _PINS if domain is None else _PINS.where(_N.domain == domain)
        async with self._db.read("federation_pins") as conn:
            return [_pin(row) for row in await conn.execute(query)]


class SqlStatusStore:
    """:class:`carewire.federation.model.StatusStore` on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every operation."""
        self._db = db
        self._upsert = dialects.upsert(
            db.dialect, federation_status, ["domain", "direction", "node"]
        )

    async def write(self, statuses: Sequence[DomainStatus], at: datetime) -> None:
        """Upsert each report (one statement, one transaction)."""
        if not statuses:
            return
        rows = [
            {
                "domain": s.domain,
                "direction": s.direction,
                "node": s.node,
                "connected": s.connected,
                "auth": s.auth,
                "tls_version": s.tls_version,
                "fingerprint": s.fingerprint,
                "certificate_not_after": s.certificate_not_after,
                "since": s.since,
                "last_error": None if s.last_error is None else s.last_error[:1000],
                "last_error_at": s.last_error_at,
                "queued": s.queued,
                "stanzas_in": s.stanzas_in,
                "stanzas_out": s.stanzas_out,
                "updated_at": at,
            }
            for s in statuses
        ]
        async with self._db.transaction("federation_status_write") as txn:
            await txn.conn.execute(self._upsert, rows)

    async def read(self) -> list[ReportedStatus]:
        """Every row."""
        async with self._db.read("federation_status") as conn:
            return [_status(row) for row in await conn.execute(_STATUS)]

    async def forget(self, domain: str) -> int:
        """Remove every row of ``domain``; how many there were."""
        async with self._db.transaction("federation_status_forget") as txn:
            done = await txn.conn.execute(delete(federation_status).where(_S.domain == domain))
        return int(done.rowcount)
