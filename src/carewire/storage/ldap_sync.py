"""Directory sync's storage (:class:`carewire.identity.ldap.store.LdapStore`, docs/ldap.md).

The settings are one JSON document per organisation beside the columns the
scheduler and the sign-in path filter on. The bind secret is sealed with the
data keys, bound to its organisation (``ldap_integrations.bind_secret|<id>``),
so a secret copied to another organisation's row does not open.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from carewire.identity.ldap.model import (
    AttributeMap,
    ChangeType,
    LdapSettings,
    ReportLine,
    RunCounts,
    RunKind,
    RunState,
    StampKind,
    SyncRun,
    Trigger,
)
from carewire.identity.ldap.store import LinkRow, SyncState
from carewire.security.envelope import Keyring
from carewire.storage import dialects
from carewire.storage.database import Database
from carewire.storage.tables_ldap import ldap_integrations, ldap_run_lines, ldap_runs, ldap_users

_I = ldap_integrations.c
_U = ldap_users.c
_R = ldap_runs.c
_L = ldap_run_lines.c
_COUNTS = ("created", "updated", "disabled", "unchanged", "failed")


def secret_aad(organisation_id: int) -> bytes:
    """The associated data of a sealed bind secret."""
    return f"ldap_integrations.bind_secret|{organisation_id}".encode()


def _document(settings: LdapSettings) -> str:
    doc = asdict(settings)
    for key in ("organisation_id", "has_secret", "updated_at"):
        doc.pop(key)
    doc["mapping"]["stamp"] = settings.mapping.stamp.value
    return json.dumps(doc, sort_keys=True)


def _settings(row: Any) -> LdapSettings:
    doc = json.loads(row.settings)
    mapping = doc.pop("mapping")
    return LdapSettings(
        organisation_id=int(row.organisation_id),
        mapping=AttributeMap(
            external_id=mapping["external_id"],
            login=mapping["login"],
            stamp=StampKind(mapping["stamp"]),
            profile=dict(mapping["profile"]),
        ),
        has_secret=bool(row.bind_secret),
        updated_at=row.updated_at,
        **doc,
    )


def _run(row: Any) -> SyncRun:
    return SyncRun(
        id=int(row.id),
        organisation_id=int(row.organisation_id),
        kind=RunKind(row.kind),
        trigger=Trigger(row.trigger),
        state=RunState(row.state),
        actor=row.actor,
        started_at=row.started_at,
        ended_at=row.ended_at,
        counts=RunCounts(**{name: int(getattr(row, name)) for name in _COUNTS}),
        message=row.message,
    )


def _link(row: Any) -> LinkRow:
    return LinkRow(
        login=row.login,
        organisation_id=int(row.organisation_id),
        external_id=row.external_id,
        dn=row.dn,
        is_disabled_by_sync=bool(row.is_disabled_by_sync),
    )


class SqlLdapStore:
    """:class:`~carewire.identity.ldap.store.LdapStore` on SQLAlchemy Core."""

    def __init__(self, db: Database, keyring: Keyring) -> None:
        """Use ``db`` for every operation and ``keyring`` to seal the bind secrets."""
        self._db = db
        self._keyring = keyring
        self._put_link = dialects.upsert(
            db.dialect,
            ldap_users,
            ["login"],
            ["organisation_id", "external_id", "dn", "is_disabled_by_sync", "synced_at"],
        )

    @property
    def db(self) -> Database:
        """The database (its transactions join the directory's)."""
        return self._db

    # -- settings and status ------------------------------------------------------------------

    async def get(self, organisation_id: int) -> LdapSettings | None:
        """The organisation's settings (without the secret)."""
        query = select(ldap_integrations).where(_I.organisation_id == organisation_id)
        async with self._db.reading("get_ldap_integration") as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _settings(row)

    async def secret(self, organisation_id: int) -> str | None:
        """The bind secret in clear."""
        query = select(_I.bind_secret).where(_I.organisation_id == organisation_id)
        async with self._db.reading("get_ldap_secret") as conn:
            sealed = (await conn.execute(query)).scalar_one_or_none()
        if sealed is None:
            return None
        return self._keyring.open_text(sealed, aad=secret_aad(organisation_id))

    async def put(self, settings: LdapSettings, secret: str | None, at: datetime) -> None:
        """Insert or replace the settings; ``secret`` None keeps the stored one."""
        org = settings.organisation_id
        values: dict[str, object] = {
            "settings": _document(settings),
            "is_sync_enabled": settings.is_sync_enabled,
            "is_sign_in_enabled": settings.is_sign_in_enabled,
            "updated_at": at,
        }
        if secret is not None:
            values["bind_secret"] = self._keyring.seal_text(secret, aad=secret_aad(org))
        async with self._db.transaction("put_ldap_integration") as txn:
            found = await txn.conn.execute(
                update(ldap_integrations).where(_I.organisation_id == org).values(values)
            )
            if not found.rowcount:
                values.setdefault("bind_secret", "")
                await txn.conn.execute(
                    insert(ldap_integrations).values(organisation_id=org, created_at=at, **values)
                )

    async def remove(self, organisation_id: int) -> bool:
        """Delete the integration (links and runs stay)."""
        stmt = delete(ldap_integrations).where(_I.organisation_id == organisation_id)
        async with self._db.transaction("remove_ldap_integration") as txn:
            return bool((await txn.conn.execute(stmt)).rowcount)

    async def all(self) -> list[LdapSettings]:
        """Every integration."""
        query = select(ldap_integrations).order_by(_I.organisation_id)
        async with self._db.reading("all_ldap_integrations") as conn:
            return [_settings(row) for row in await conn.execute(query)]

    async def state(self, organisation_id: int) -> SyncState:
        """Status and high-water mark."""
        query = select(
            _I.is_connected, _I.status_error, _I.status_checked_at, _I.stamp, _I.last_full_at
        ).where(_I.organisation_id == organisation_id)
        async with self._db.reading("get_ldap_state") as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return SyncState()
        return SyncState(
            is_connected=row.is_connected,
            error=row.status_error,
            checked_at=row.status_checked_at,
            stamp=row.stamp,
            last_full_at=row.last_full_at,
        )

    async def set_status(
        self, organisation_id: int, *, is_connected: bool, error: str, at: datetime
    ) -> None:
        """Record a status check."""
        stmt = (
            update(ldap_integrations)
            .where(_I.organisation_id == organisation_id)
            .values(is_connected=is_connected, status_error=error[:2000], status_checked_at=at)
        )
        async with self._db.transaction("set_ldap_status") as txn:
            await txn.conn.execute(stmt)

    async def set_stamp(
        self, organisation_id: int, stamp: str, *, full_at: datetime | None
    ) -> None:
        """Record the high-water mark (and the end of the last full run)."""
        values: dict[str, object] = {"stamp": stamp}
        if full_at is not None:
            values["last_full_at"] = full_at
        stmt = update(ldap_integrations).where(_I.organisation_id == organisation_id).values(values)
        async with self._db.transaction("set_ldap_stamp") as txn:
            await txn.conn.execute(stmt)

    # -- links ----------------------------------------------------------------------------

    async def links(self, organisation_id: int) -> list[LinkRow]:
        """The organisation's links."""
        query = select(ldap_users).where(_U.organisation_id == organisation_id)
        async with self._db.reading("ldap_links") as conn:
            return [_link(row) for row in await conn.execute(query)]

    async def link_of(self, login: str) -> LinkRow | None:
        """The link of one user."""
        query = select(ldap_users).where(_U.login == login)
        row = await self._db.fetch("ldap_link_of", lambda c: c.execute(query).first())
        return None if row is None else _link(row)

    async def count_links(self, organisation_id: int) -> int:
        """How many users are linked."""
        query = select(func.count()).where(_U.organisation_id == organisation_id)
        async with self._db.reading("count_ldap_links") as conn:
            return int((await conn.execute(query)).scalar_one())

    async def put_links(self, rows: Sequence[LinkRow], at: datetime) -> None:
        """Insert or replace links (by login)."""
        if not rows:
            return
        params = [asdict(row) | {"synced_at": at} for row in rows]
        async with self._db.transaction("put_ldap_links") as txn:
            await txn.conn.execute(self._put_link, params)

    # -- runs -----------------------------------------------------------------------------

    async def start_run(
        self,
        organisation_id: int,
        *,
        kind: RunKind,
        trigger: Trigger,
        actor: str,
        at: datetime,
    ) -> SyncRun:
        """Record a run that begins."""
        values = {
            "organisation_id": organisation_id,
            "kind": kind.value,
            "trigger": trigger.value,
            "state": RunState.RUNNING.value,
            "actor": actor[:320],
            "started_at": at,
        }
        async with self._db.transaction("start_ldap_run") as txn:
            result = await txn.conn.execute(insert(ldap_runs).values(values).returning(_R.id))
            run_id = int(result.scalar_one())
        return SyncRun(
            id=run_id,
            organisation_id=organisation_id,
            kind=kind,
            trigger=trigger,
            state=RunState.RUNNING,
            actor=actor,
            started_at=at,
        )

    async def finish_run(
        self,
        run_id: int,
        *,
        state: RunState,
        counts: RunCounts,
        message: str,
        at: datetime,
    ) -> None:
        """Record how a run ended."""
        stmt = (
            update(ldap_runs)
            .where(_R.id == run_id)
            .values(state=state.value, ended_at=at, message=message[:4000], **asdict(counts))
        )
        async with self._db.transaction("finish_ldap_run") as txn:
            await txn.conn.execute(stmt)

    async def add_lines(self, run_id: int, first_seq: int, lines: Sequence[ReportLine]) -> None:
        """Append report lines."""
        if not lines:
            return
        rows = [
            {
                "run_id": run_id,
                "seq": first_seq + i,
                "change": line.change.value,
                "login": line.login[:1023],
                "staff_id": line.staff_id,
                "external_id": line.external_id[:255],
                "name": line.name[:200],
                "message": line.message[:2000],
            }
            for i, line in enumerate(lines)
        ]
        async with self._db.transaction("add_ldap_run_lines") as txn:
            await txn.conn.execute(insert(ldap_run_lines), rows)

    async def interrupt_running(self, organisation_id: int, at: datetime) -> int:
        """Mark runs left RUNNING as INTERRUPTED."""
        stmt = (
            update(ldap_runs)
            .where(_R.organisation_id == organisation_id, _R.state == RunState.RUNNING.value)
            .values(
                state=RunState.INTERRUPTED.value,
                ended_at=at,
                message="interrupted; the next run finishes the job",
            )
        )
        async with self._db.transaction("interrupt_ldap_runs") as txn:
            return int((await txn.conn.execute(stmt)).rowcount)

    async def runs(
        self, organisation_id: int, *, offset: int, limit: int
    ) -> tuple[list[SyncRun], int]:
        """Runs, newest first, and how many there are."""
        where = _R.organisation_id == organisation_id
        query = select(ldap_runs).where(where).order_by(_R.id.desc()).offset(offset).limit(limit)
        async with self._db.reading("ldap_runs") as conn:
            rows = [_run(row) for row in await conn.execute(query)]
            total = (await conn.execute(select(func.count()).where(where))).scalar_one()
        return rows, int(total)

    async def run(self, run_id: int) -> SyncRun | None:
        """One run."""
        async with self._db.reading("ldap_run") as conn:
            row = (await conn.execute(select(ldap_runs).where(_R.id == run_id))).first()
        return None if row is None else _run(row)

    async def lines(self, run_id: int, *, offset: int, limit: int) -> tuple[list[ReportLine], int]:
        """A run's report lines in order, and how many there are."""
        where = _L.run_id == run_id
        query = select(ldap_run_lines).where(where).order_by(_L.seq).offset(offset).limit(limit)
        async with self._db.reading("ldap_run_lines") as conn:
            rows = list(await conn.execute(query))
            total = (await conn.execute(select(func.count()).where(where))).scalar_one()
        lines = [
            ReportLine(
                change=ChangeType(r.change),
                login=r.login,
                staff_id=r.staff_id,
                external_id=r.external_id,
                name=r.name,
                message=r.message,
            )
            for r in rows
        ]
        return lines, int(total)

    async def prune_runs(self, organisation_id: int, keep: int) -> int:
        """Delete all but the newest ``keep`` runs (their lines go with them)."""
        newest = (
            select(_R.id)
            .where(_R.organisation_id == organisation_id)
            .order_by(_R.id.desc())
            .limit(keep)
        )
        async with self._db.reading("ldap_runs_kept") as conn:
            kept = list((await conn.execute(newest)).scalars())
        if len(kept) < keep:
            return 0
        cutoff = min(kept)
        where = (_R.organisation_id == organisation_id) & (_R.id < cutoff)
        old = select(_R.id).where(where)
        async with self._db.transaction("prune_ldap_runs") as txn:
            await txn.conn.execute(delete(ldap_run_lines).where(_L.run_id.in_(old)))
            return int((await txn.conn.execute(delete(ldap_runs).where(where))).rowcount)
