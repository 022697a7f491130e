"""Directory sync from LDAP and LDAP sign-in, per organisation (docs/ldap.md).

``LdapService`` is built once by the composition root on the directory
service and the database. It holds the operations the console, the REST API
and the CLI call (each scoped by a :class:`~carewire.directory.model.Caller`:
another organisation's integration is "not found", auditors only read), the
status check and the scheduled runs the server's supervised tasks call
(:mod:`carewire.identity.ldap.schedule`), and the password check of synced
users (:class:`~carewire.core.auth.ExternalPasswords`) the XMPP and console
logins use. Every settings change and every run is in the audit trail; the
bind secret never is, nor any password.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, replace

from carewire.clock import Clock
from carewire.core.auth import ExternalVerdict
from carewire.directory.model import SYSTEM_CALLER, Caller, ReadOnlyError
from carewire.directory.service import DirectoryService
from carewire.identity.ldap import client
from carewire.identity.ldap.engine import settled_stamp
from carewire.identity.ldap.model import (
    LdapError,
    LdapSettings,
    LdapStatus,
    NoIntegrationError,
    ReportLine,
    RunCounts,
    RunInProgressError,
    RunKind,
    RunState,
    StampKind,
    SyncRun,
    Trigger,
    check_settings,
)
from carewire.identity.ldap.runner import Run, read
from carewire.identity.ldap.store import LdapStore
from carewire.security.audit import AuditEvent, AuditTrail, Outcome

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncConfig:
    """The ``[directory_sync]`` section, parsed.

    Attributes:
        status_interval: Seconds between status checks (Connected / Not Connected).
        interval: Seconds between scheduled runs.
        full_interval: A scheduled run is full when the last full one is older than this
            (seconds): only full runs see who left the directory.
        timeout: Seconds a connection, bind or search page may take.
        keep_runs: Runs kept per organisation (older ones and their reports are deleted).
    """

    status_interval: float = 10.0
    interval: float = 90 * 60.0
    full_interval: float = 24 * 3600.0
    timeout: float = client.DEFAULT_TIMEOUT
    keep_runs: int = 200


class LdapService:
    """Settings, status, runs and sign-in of the organisations' LDAP integrations."""

    def __init__(
        self,
        *,
        store: LdapStore,
        directory: DirectoryService,
        audit: AuditTrail,
        clock: Clock,
        config: SyncConfig | None = None,
    ) -> None:
        """Build on the directory (whose users it syncs) and the store."""
        self._store = store
        self._directory = directory
        self._audit = audit
        self._clock = clock
        self.config = config or SyncConfig()
        self._locks: dict[int, asyncio.Lock] = {}

    # -- scoping --------------------------------------------------------------------------------

    async def _settings(self, caller: Caller, organisation_id: int) -> LdapSettings:
        settings = await self._store.get(organisation_id) if caller.sees(organisation_id) else None
        if settings is None:
            raise NoIntegrationError(f"organisation {organisation_id} has no LDAP integration")
        return settings

    @staticmethod
    def _check_write(caller: Caller) -> None:
        if not caller.can_write:
            raise ReadOnlyError("this role can only read", code="read-only")

    async def _record(
        self, caller: Caller, action: str, organisation_id: int, **details: object
    ) -> None:
        await self._audit.record(
            AuditEvent(
                actor=caller.actor,
                channel=caller.channel,
                action=f"directory.ldap.{action}",
                target=f"organisation:{organisation_id}",
                outcome=Outcome.FAILURE if details.get("state") == "failed" else Outcome.SUCCESS,
                remote_ip=caller.remote_ip,
                details=details,
            )
        )

    # -- settings ---------------------------------------------------------------------------------

    async def settings(self, caller: Caller, organisation_id: int) -> LdapSettings | None:
        """The organisation's settings (None: not configured); never the secret.

        Raises:
            UnknownOrganisationError: Not the caller's.
        """
        await self._directory.organisations.get(caller, organisation_id)
        return await self._store.get(organisation_id)

    async def save(
        self, caller: Caller, settings: LdapSettings, secret: str | None
    ) -> LdapSettings:
        """Create or change the integration; ``secret`` None (or "") keeps the saved one.

        Raises:
            UnknownOrganisationError: Not the caller's.
            ReadOnlyError: An auditor.
            LdapSettingsError: A setting is not valid.
        """
        org = settings.organisation_id
        await self._directory.organisations.get(caller, org)
        self._check_write(caller)
        before = await self._store.get(org)
        secret = secret or None
        checked = check_settings(
            settings, has_secret=secret is not None or bool(before and before.has_secret)
        )
        await self._store.put(checked, secret, self._clock.now())
        after = await self._store.get(org)
        assert after is not None
        if before is not None and _scope(before) != _scope(after):
            # Other entries, or other values of them: only a full run sees the difference.
            await self._store.set_stamp(org, "", full_at=None)
        await self._record(
            caller,
            "settings.update" if before else "settings.create",
            org,
            changes=_diff(before, after),
            secret_changed=secret is not None,
        )
        return after

    async def remove(self, caller: Caller, organisation_id: int) -> None:
        """Remove the integration; synced users stay (no longer read-only, not disabled).

        Raises:
            NoIntegrationError: None to remove.
            ReadOnlyError: An auditor.
        """
        await self._settings(caller, organisation_id)
        self._check_write(caller)
        await self._store.remove(organisation_id)
        await self._record(caller, "settings.remove", organisation_id)

    # -- status -------------------------------------------------------------------------------

    async def status(self, caller: Caller, organisation_id: int) -> LdapStatus:
        """Connected / Not Connected, the last error, the last and the held run.

        Raises:
            UnknownOrganisationError: Not the caller's.
        """
        if await self.settings(caller, organisation_id) is None:
            return LdapStatus(is_configured=False)
        state = await self._store.state(organisation_id)
        runs, _ = await self._store.runs(organisation_id, offset=0, limit=1)
        last = runs[0] if runs else None
        return LdapStatus(
            is_configured=True,
            is_connected=bool(state.is_connected),
            checked_at=state.checked_at,
            error=state.error,
            last_run=last,
            held_run=last if last is not None and last.state is RunState.HELD else None,
            linked_users=await self._store.count_links(organisation_id),
        )

    async def check(self, organisation_id: int) -> bool:
        """Bind and read the base entry; record Connected or Not Connected with the error."""
        settings = await self._store.get(organisation_id)
        secret = await self._store.secret(organisation_id)
        if settings is None or secret is None:
            return False
        error = ""
        try:
            async with client.connect(settings, secret, timeout=self.config.timeout) as conn:
                await conn.base_entry()
        except LdapError as exc:
            error = exc.message
        await self._store.set_status(
            organisation_id, is_connected=not error, error=error, at=self._clock.now()
        )
        return not error

    # -- runs ------------------------------------------------------------------------------------

    async def runs(
        self, caller: Caller, organisation_id: int, *, offset: int = 0, limit: int = 20
    ) -> tuple[list[SyncRun], int]:
        """Import Results: runs, newest first, and how many there are."""
        await self._directory.organisations.get(caller, organisation_id)
        return await self._store.runs(organisation_id, offset=offset, limit=min(limit, 500))

    async def report(
        self, caller: Caller, run_id: int, *, offset: int = 0, limit: int = 100
    ) -> tuple[SyncRun, list[ReportLine], int]:
        """One run with a page of its per-user report.

        Raises:
            NoIntegrationError: No such run for the caller.
        """
        run = await self._store.run(run_id)
        if run is None or not caller.sees(run.organisation_id):
            raise NoIntegrationError(f"no sync run {run_id}")
        lines, total = await self._store.lines(run_id, offset=offset, limit=min(limit, 1000))
        return run, lines, total

    async def sync(
        self,
        caller: Caller,
        organisation_id: int,
        *,
        trigger: Trigger,
        is_confirmed: bool = False,
        is_full: bool | None = None,
    ) -> SyncRun:
        """Sync Users Now (or a scheduled run); the run as it ended.

        A full run is made when asked, when confirming a held run, when the
        server keeps no change stamp, or when the last full run is older than
        ``full_interval``; otherwise an incremental one.

        Raises:
            NoIntegrationError: Not configured (or not the caller's).
            ReadOnlyError: An auditor.
            RunInProgressError: A run of this organisation is going on.
        """
        settings = await self._settings(caller, organisation_id)
        self._check_write(caller)
        lock = self._locks.setdefault(organisation_id, asyncio.Lock())
        if lock.locked():
            raise RunInProgressError("a sync of this organisation is going on; try again later")
        async with lock:
            return await self._sync(caller, settings, trigger, is_confirmed, is_full)

    async def _sync(
        self,
        caller: Caller,
        settings: LdapSettings,
        trigger: Trigger,
        is_confirmed: bool,
        is_full: bool | None,
    ) -> SyncRun:
        org = settings.organisation_id
        now = self._clock.now()
        await self._store.interrupt_running(org, now)
        state = await self._store.state(org)
        if is_full is None:
            is_full = (
                is_confirmed
                or not state.stamp
                or settings.mapping.stamp is StampKind.NONE
                or state.last_full_at is None
                or (now - state.last_full_at).total_seconds() >= self.config.full_interval
            )
        kind = RunKind.FULL if is_full else RunKind.INCREMENTAL
        run = await self._store.start_run(
            org, kind=kind, trigger=trigger, actor=caller.actor, at=now
        )
        try:
            return await self._execute(caller, settings, run, state.stamp, is_confirmed)
        except Exception as exc:  # supervisor: the run is recorded as failed, then re-raised
            await self._finish(caller, run, RunState.FAILED, RunCounts(), f"internal error: {exc}")
            raise

    async def _execute(
        self, caller: Caller, settings: LdapSettings, run: SyncRun, stamp: str, is_confirmed: bool
    ) -> SyncRun:
        org = settings.organisation_id
        is_full = run.kind is RunKind.FULL
        secret = await self._store.secret(org) or ""
        since = "" if is_full else stamp
        try:
            async with client.connect(
                settings, secret, attributes=_raw(settings), timeout=self.config.timeout
            ) as conn:
                entries, groups = await read(conn, since=since)
        except LdapError as exc:
            await self._store.set_status(
                org, is_connected=False, error=exc.message, at=self._clock.now()
            )
            return await self._finish(caller, run, RunState.FAILED, RunCounts(), exc.message)
        await self._store.set_status(org, is_connected=True, error="", at=self._clock.now())
        job = Run(
            store=self._store,
            directory=self._directory,
            clock=self._clock,
            settings=settings,
            caller=caller,
            is_full=is_full,
            is_confirmed=is_confirmed,
        )
        out = await job.execute(entries, groups, since=since)
        await self._store.add_lines(run.id, 0, out.lines)
        if out.is_held:
            return await self._finish(caller, run, RunState.HELD, out.counts, out.message)
        end = self._clock.now()
        settled = settled_stamp(out.stamp or stamp, settings.mapping.stamp, run.started_at)
        await self._store.set_stamp(org, settled, full_at=end if is_full else None)
        await self._store.prune_runs(org, self.config.keep_runs)
        return await self._finish(caller, run, RunState.DONE, out.counts, out.message)

    async def _finish(
        self, caller: Caller, run: SyncRun, state: RunState, counts: RunCounts, message: str
    ) -> SyncRun:
        end = self._clock.now()
        await self._store.finish_run(run.id, state=state, counts=counts, message=message, at=end)
        await self._record(
            caller,
            "sync",
            run.organisation_id,
            run=run.id,
            kind=run.kind.value,
            trigger=run.trigger.value,
            state=state.value,
            message=message[:500],
            **asdict(counts),
        )
        log.info(
            "LDAP sync of organisation %s: %s %s (%s)",
            run.organisation_id,
            run.kind.value,
            state.value,
            counts,
        )
        return replace(run, state=state, counts=counts, message=message, ended_at=end)

    async def scheduled(self) -> None:
        """Run every enabled integration's scheduled sync (one after another)."""
        for settings in await self._store.all():
            if not settings.is_sync_enabled:
                continue
            try:
                await self.sync(SYSTEM_CALLER, settings.organisation_id, trigger=Trigger.SCHEDULE)
            except RunInProgressError:
                continue

    async def check_all(self) -> None:
        """Refresh every integration's status."""
        for settings in await self._store.all():
            await self.check(settings.organisation_id)

    # -- sign-in ----------------------------------------------------------------------------

    async def managed_fields(self, login: str) -> frozenset[str]:
        """The profile fields of ``login`` its organisation's sync fills (read-only)."""
        link = await self._store.link_of(login)
        if link is None:
            return frozenset()
        settings = await self._store.get(link.organisation_id)
        return settings.mapping.synced_fields() if settings is not None else frozenset()

    async def is_external(self, login: str) -> bool:
        """Whether ``login`` signs in with its directory password (LDAP sign-in is on)."""
        link = await self._store.link_of(login)
        if link is None:
            return False
        settings = await self._store.get(link.organisation_id)
        return settings is not None and settings.is_sign_in_enabled

    async def check_password(self, login: str, password: str) -> ExternalVerdict:
        """A simple bind as the user's DN over TLS (the password goes nowhere else)."""
        link = await self._store.link_of(login)
        settings = None if link is None else await self._store.get(link.organisation_id)
        if link is None or settings is None or not settings.is_sign_in_enabled:
            return ExternalVerdict.WRONG
        try:
            ok = await client.check_password(
                settings, link.dn, password, timeout=self.config.timeout
            )
        except LdapError as exc:
            log.warning(
                "LDAP sign-in unavailable for organisation %s: %s",
                link.organisation_id,
                exc.message,
            )
            return ExternalVerdict.UNAVAILABLE
        return ExternalVerdict.OK if ok else ExternalVerdict.WRONG


def _raw(settings: LdapSettings) -> list[str]:
    """Attributes read as bytes: every attribute a user or group search asks for."""
    return [
        *settings.mapping.attributes(),
        settings.group_name_attribute,
        settings.group_member_attribute,
    ]


def _scope(settings: LdapSettings) -> tuple[object, ...]:
    """What selects the entries and their values: a change asks for a full run."""
    return (
        settings.url,
        settings.base_dn,
        settings.user_filter,
        settings.mapping,
        settings.group_base_dn,
        settings.group_filter,
    )


def _diff(before: LdapSettings | None, after: LdapSettings) -> dict[str, object]:
    """What changed, for the audit trail (the secret is never in it: only ``has_secret``)."""
    new = asdict(after)
    old = asdict(before) if before is not None else {}
    new.pop("updated_at"), old.pop("updated_at", None)
    changed = sorted(k for k in new if old.get(k) != new[k])
    return {"before": {k: old.get(k) for k in changed}, "after": {k: new[k] for k in changed}}
