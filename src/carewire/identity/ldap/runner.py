"""One sync run: read the directory, decide, hold or apply in batches, report (docs/ldap.md).

Theory of operation: a run is recorded (RUNNING) before anything is read.
The directory is read whole (a full run) or since the high-water stamp (an
incremental one); a read that fails ends the run FAILED with the reason and
changes nothing. :func:`~carewire.identity.ldap.engine.decide` turns the
entries into decisions; a full run that would disable more than the
configured share of the linked users ends HELD, its would-be disables in
the report, until an administrator confirms. Otherwise the decisions are
applied in batches, each one transaction (users, USERS records, audit, links
together); a batch the database refuses is retried one user at a time, so
one bad user fails alone. Groups follow, then the report, the stamp (only
now: a run killed before this point is simply decided again by the next)
and the run's end.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from carewire.clock import Clock
from carewire.directory.model import Caller, DirectoryUser, InvalidFieldError, NameTakenError
from carewire.directory.service import DirectoryService
from carewire.directory.synced import SyncBatch, SyncedUpdate
from carewire.errors import CarewireError
from carewire.identity.ldap.client import GroupEntry, LdapConnection, dn_key
from carewire.identity.ldap.engine import (
    Create,
    Decision,
    Disable,
    Entry,
    Failed,
    Known,
    Linked,
    Unchanged,
    Update,
    decide,
    external_id_of,
    is_mass_disable,
    newest_stamp,
)
from carewire.identity.ldap.model import (
    ChangeType,
    LdapSettings,
    ReportLine,
    RunCounts,
)
from carewire.identity.ldap.store import LdapStore, LinkRow

log = logging.getLogger(__name__)

#: Decisions written per transaction.
BATCH = 500


@dataclass(slots=True, kw_only=True)
class Outcome:
    """What a run did (or, held, would do)."""

    lines: list[ReportLine] = field(default_factory=list)
    counts: RunCounts = field(default_factory=RunCounts)
    stamp: str = ""
    is_held: bool = False
    message: str = ""


async def read(conn: LdapConnection, *, since: str) -> tuple[list[Entry], list[GroupEntry]]:
    """Every entry (changed since ``since``) and every group.

    Raises:
        LdapError: The directory could not be read.
    """
    entries: list[Entry] = []
    async for page in conn.people(since=since):
        entries.extend(page)
    return entries, await conn.groups(since=since)


class Run:
    """Decides and applies one run for one organisation."""

    def __init__(
        self,
        *,
        store: LdapStore,
        directory: DirectoryService,
        clock: Clock,
        settings: LdapSettings,
        caller: Caller,
        is_full: bool,
        is_confirmed: bool,
    ) -> None:
        self._store = store
        self._directory = directory
        self._clock = clock
        self._settings = settings
        self._caller = caller
        self._is_full = is_full
        self._is_confirmed = is_confirmed
        self._org = settings.organisation_id

    async def execute(
        self, entries: Sequence[Entry], groups: Sequence[GroupEntry], *, since: str
    ) -> Outcome:
        """Decide and (unless held) apply; the outcome to report."""
        links = await self._store.links(self._org)
        known = await self._known(entries, links)
        decisions = decide(entries, known, self._settings.mapping, is_full=self._is_full)
        if (
            self._is_full
            and not self._is_confirmed
            and is_mass_disable(decisions, known, self._settings.max_disable_percent)
        ):
            return self._held(decisions, known)
        out = Outcome()
        for i in range(0, len(decisions), BATCH):
            out.lines += await self._apply(decisions[i : i + BATCH])
        if groups:  # every group on a full run; those changed since the stamp otherwise
            links = await self._store.links(self._org) if not self._is_full else links
            dns = {link.login: dn_key(link.dn) for link in links}
            dns.update({d.login: dn_key(d.dn) for d in decisions if isinstance(d, Create | Update)})
            out.message = await self._groups(groups, dns)
        out.counts = _counts(out.lines, decisions)
        out.stamp = newest_stamp(
            (_stamp(d) for d in decisions), self._settings.mapping.stamp, since
        )
        return out

    async def _known(self, entries: Sequence[Entry], links: Sequence[LinkRow]) -> Known:
        if not self._is_full:  # only the entries read matter (their links, their users)
            ids = {_id_or_none(e, self._settings) for e in entries}
            links = [link for link in links if link.external_id in ids]
        users = await self._directory.synced.users(self._caller, [link.login for link in links])
        linked = {
            link.external_id: _linked(link, users[link.login])
            for link in links
            if link.login in users
        }
        mapping = self._settings.mapping
        email_attr = mapping.profile["email"].lower()
        login_attr = mapping.login.lower()
        emails = [_lower(e, email_attr) for e in entries]
        logins = [_lower(e, login_attr) for e in entries]
        return Known(
            linked=linked,
            emails=await self._directory.synced.email_owners([e for e in emails if e]),
            taken_logins=frozenset(
                await self._directory.synced.taken_logins([x for x in logins if x])
            ),
            organisation_id=self._org,
        )

    def _held(self, decisions: Sequence[Decision], known: Known) -> Outcome:
        disables = [d for d in decisions if isinstance(d, Disable)]
        active = sum(not link.is_disabled for link in known.linked.values())
        lines = [
            ReportLine(
                change=ChangeType.DISABLED,
                login=d.login,
                staff_id=d.staff_id,
                external_id=d.external_id,
                name=d.name,
                message="would be disabled: waiting for confirmation",
            )
            for d in disables
        ]
        message = (
            f"Held: this run would disable {len(disables)} of {active} synced users, more than "
            f"{self._settings.max_disable_percent} %. Check the filter and the base DN, then "
            "confirm to go on. Nothing was changed."
        )
        return Outcome(lines=lines, is_held=True, message=message)

    async def _apply(self, decisions: Sequence[Decision]) -> list[ReportLine]:
        """Write one batch; a batch the database refuses is retried one decision at a time."""
        try:
            staff = await self._write(decisions)
        except CarewireError as exc:
            if len(decisions) == 1:
                return [_failed_line(decisions[0], exc.message)]
            log.info("a sync batch was refused (%s); retrying one user at a time", exc.code)
            lines: list[ReportLine] = []
            for d in decisions:
                lines += await self._apply([d])
            return lines
        return [line for d in decisions if (line := _line(d, staff)) is not None]

    async def _write(self, decisions: Sequence[Decision]) -> dict[str, int]:
        creates = {d.login: d.profile for d in decisions if isinstance(d, Create)}
        updates = [d for d in decisions if isinstance(d, Update)]
        disables = [d for d in decisions if isinstance(d, Disable)]
        rows = [
            LinkRow(login=d.login, organisation_id=self._org, external_id=d.external_id, dn=d.dn)
            for d in decisions
            if isinstance(d, Create | Update)
        ]
        rows += [
            LinkRow(
                login=d.login,
                organisation_id=self._org,
                external_id=d.external_id,
                dn=d.dn,
                is_disabled_by_sync=True,
            )
            for d in disables
        ]
        if not creates and not updates and not disables:
            return {}
        batch = SyncBatch(
            organisation_id=self._org,
            source="ldap",
            creates=creates,
            updates=[
                SyncedUpdate(login=d.login, profile=d.profile, is_enable=d.is_enable)
                for d in updates
            ],
            disables=[d.login for d in disables],
        )
        now = self._clock.now()

        async def links(_: Mapping[str, int]) -> None:
            await self._store.put_links(rows, now)

        return await self._directory.synced.apply(self._caller, batch, inside=links)

    async def _groups(self, groups: Sequence[GroupEntry], dns: Mapping[str, str]) -> str:
        """Directory groups named after the directory's, with the synced members it lists."""
        by_dn: dict[str, list[str]] = {}
        for login, dn in dns.items():
            by_dn.setdefault(dn, []).append(login)
        synced = set(dns)
        problems: list[str] = []
        for group in groups:
            wanted = {login for member in group.members for login in by_dn.get(member, ())}
            try:
                await self._group(group.name, wanted, synced)
            except (InvalidFieldError, NameTakenError) as exc:
                problems.append(f"group {group.name[:64]!r}: {exc.message}")
        return "; ".join(problems[:20])

    async def _group(self, name: str, wanted: set[str], synced: set[str]) -> None:
        groups = self._directory.groups
        found = await groups.list_for(self._caller, self._org, name_contains=name.strip())
        group = next((g for g in found if g.name.casefold() == name.strip().casefold()), None)
        if group is None:
            if not wanted:
                return
            group = await groups.create(self._caller, self._org, name)
        current = {u.login for u in await groups.members(self._caller, group.id)}
        add = sorted(wanted - current)
        remove = sorted((current & synced) - wanted)
        if add:
            await groups.add_members(self._caller, group.id, add)
        if remove:
            await groups.remove_members(self._caller, group.id, remove)


def _id_or_none(entry: Entry, settings: LdapSettings) -> str | None:
    try:
        return external_id_of(entry, settings.mapping)
    except Exception:  # an entry without a usable id fails in decide(), not here
        return None


def _lower(entry: Entry, attribute: str) -> str:
    values = entry.attributes.get(attribute, ())
    return values[0].decode("utf-8", "replace").strip().lower() if values else ""


def _linked(link: LinkRow, user: DirectoryUser) -> Linked:
    return Linked(
        login=link.login,
        external_id=link.external_id,
        dn=link.dn,
        staff_id=user.staff_id,
        profile=user.profile,
        is_disabled=not user.can_login,
        is_disabled_by_sync=link.is_disabled_by_sync,
    )


def _stamp(d: Decision) -> str:
    return d.stamp if isinstance(d, Create | Update | Unchanged) else ""


def _line(d: Decision, staff: Mapping[str, int]) -> ReportLine | None:
    if isinstance(d, Create):
        return ReportLine(
            change=ChangeType.CREATED,
            login=d.login,
            staff_id=staff.get(d.login),
            external_id=d.external_id,
            name=d.profile.reference_name,
        )
    if isinstance(d, Update):
        what = "linked by e-mail" if d.is_adopt else "changed: " + ", ".join(d.changed)
        if d.is_enable:
            what += "; back in the directory: login enabled"
        return ReportLine(
            change=ChangeType.UPDATED,
            login=d.login,
            staff_id=d.staff_id or None,
            external_id=d.external_id,
            name=d.profile.reference_name,
            message=what,
        )
    if isinstance(d, Disable):
        return ReportLine(
            change=ChangeType.DISABLED,
            login=d.login,
            staff_id=d.staff_id,
            external_id=d.external_id,
            name=d.name,
            message="no longer in the directory: login disabled, sessions ended",
        )
    if isinstance(d, Failed):
        return _failed_line(d, d.message)
    return None


def _failed_line(d: Decision, message: str) -> ReportLine:
    name = d.name if isinstance(d, Failed | Disable) else ""
    if isinstance(d, Create | Update):
        name = d.profile.reference_name
    return ReportLine(
        change=ChangeType.FAILED,
        login=getattr(d, "login", ""),
        external_id=d.external_id,
        name=name,
        message=message if not isinstance(d, Failed) else f"{d.dn}: {message}",
    )


def _counts(lines: Sequence[ReportLine], decisions: Sequence[Decision]) -> RunCounts:
    by = {change: 0 for change in ChangeType}
    for line in lines:
        by[line.change] += 1
    return RunCounts(
        created=by[ChangeType.CREATED],
        updated=by[ChangeType.UPDATED],
        disabled=by[ChangeType.DISABLED],
        unchanged=sum(isinstance(d, Unchanged) for d in decisions),
        failed=by[ChangeType.FAILED],
    )
