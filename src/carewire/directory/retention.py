"""The retention purge (seed 001 "Message Retention"; docs/retention.md).

"The purge mechanism preserves the message metadata (such as subject and
recipient list) but removes message content permanently." Each organisation
with a Message retention period has, every night at 02:00 in its time zone,
the bodies of the messages older than that period purged, in every
conversation it started ("the retention period for all messages in the
conversation is determined by the message retention period of the
organization that initiated the conversation"), and the offline copies kept
for its users for longer than that. Organisations without a period (the
default) are never purged; so are conversations whose starter has no
organisation.

The purge works in batches of :attr:`RetentionPurge.batch` messages, each its
own transaction, chosen by time and "still has a body": stopping it anywhere
and running it again finishes the job, and running it twice changes nothing.
Progress goes to the log, and each run (not a dry run) is one audit entry
with its counts per organisation (counts and ids only). Shared files
(XEP-0363) its users uploaded before the cut-off go too, when file sharing
is on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from time import monotonic
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from carewire.clock import Clock
from carewire.directory.model import (
    DEFAULT_TIME_ZONE,
    RETENTION_UNIT_DAYS,
    SYSTEM_CALLER,
    Organisation,
    OrganisationId,
)
from carewire.directory.service import DirectoryService
from carewire.security.audit import AuditEvent, AuditTrail, Channel

log = logging.getLogger(__name__)

#: When the nightly purge runs, in each organisation's time zone (the seed: 2:00 AM).
PURGE_AT = time(2, 0)
#: Messages purged per transaction.
BATCH = 500
#: Conversations a batch's statement names at most (far below every bind limit).
CONVERSATIONS_PER_PASS = 500
#: Least seconds between two batches (a batch also waits as long as the previous one took),
#: so the server's own writes get the database in between.
PAUSE = 0.01


class RetentionStore(Protocol):
    """The statements the purge needs (storage implements them; none reads a body)."""

    async def conversation_starters(self) -> dict[int, str | None]:
        """Each conversation's starter (bare JID), by conversation record id."""

    async def count_bodies(self, conversations: Sequence[int], before: datetime) -> int:
        """Messages of these conversations received before ``before`` with a body."""

    async def purge_bodies(
        self, conversations: Sequence[int], before: datetime, *, limit: int, after: int = 0
    ) -> tuple[int, int]:
        """Purge at most ``limit`` of them with ids above ``after`` in one transaction.

        Returns how many, and the id the next batch starts after.
        """

    async def count_offline(self, owners: Sequence[str], before: datetime) -> int:
        """Offline copies for these logins stored before ``before``."""

    async def purge_offline(self, owners: Sequence[str], before: datetime) -> int:
        """Delete them; how many."""


class FilePurge(Protocol):
    """Shared files to purge with the messages (file sharing's service implements it)."""

    async def count_created_before(self, owners: Sequence[str], before: datetime) -> int:
        """Files these logins uploaded before ``before``."""

    async def purge_created_before(self, owners: Sequence[str], before: datetime) -> int:
        """Delete them (encrypted file and metadata); how many."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PurgeCount:
    """What a purge removes (or would) for one organisation.

    Attributes:
        organisation_id: The organisation.
        organisation: Its name.
        cutoff: Content received before this goes.
        messages: Message bodies (MESSAGES; the archive reads them).
        offline: Offline copies.
        files: Shared files its users uploaded (XEP-0363).
    """

    organisation_id: OrganisationId
    organisation: str
    cutoff: datetime
    messages: int
    offline: int
    files: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class _Scope:
    org: Organisation
    cutoff: datetime
    conversations: list[int]
    owners: list[str]


def retention_period(org: Organisation) -> timedelta | None:
    """An organisation's Message retention period (None: never purge)."""
    s = org.settings
    if s.retention_value is None or s.retention_unit is None:
        return None
    return timedelta(days=s.retention_value * RETENTION_UNIT_DAYS[s.retention_unit])


def zone_of(org: Organisation) -> ZoneInfo:
    """The organisation's time zone (the default, US Eastern, if it is not a known zone)."""
    try:
        return ZoneInfo(org.settings.default_time_zone or DEFAULT_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIME_ZONE)


class RetentionPurge:
    """Purges message content past each organisation's retention period."""

    def __init__(
        self,
        store: RetentionStore,
        directory: DirectoryService,
        audit: AuditTrail,
        clock: Clock,
        *,
        domain: str,
        batch: int = BATCH,
        pause: float = PAUSE,
        files: FilePurge | None = None,
    ) -> None:
        self.store = store
        self.files = files
        self.directory = directory
        self.audit = audit
        self.clock = clock
        self.domain = domain
        self.batch = batch
        self.pause = pause
        self._last_run: dict[OrganisationId, date] = {}

    async def _scopes(self, now: datetime, only: set[int] | None) -> list[_Scope]:
        orgs = [
            o
            for o in await self.directory.organisations.list_visible(SYSTEM_CALLER)
            if retention_period(o) is not None and (only is None or o.id in only)
        ]
        if not orgs:
            return []
        index = self.directory.index
        by_org: dict[int, list[int]] = {o.id: [] for o in orgs}
        for conv, starter in (await self.store.conversation_starters()).items():
            login, at, domain = (starter or "").partition("@")
            org = index.organisation_of(login) if at and domain == self.domain else None
            if org is not None and org in by_org:
                by_org[org].append(conv)
        out = []
        for o in orgs:
            period = retention_period(o)
            assert period is not None
            owners = sorted(index.users_of(o.id))
            out.append(
                _Scope(org=o, cutoff=now - period, conversations=by_org[o.id], owners=owners)
            )
        return out

    async def dry_run(self, *, organisations: set[int] | None = None) -> list[PurgeCount]:
        """What a purge now would remove, per organisation; changes nothing."""
        now = self.clock.now()
        return [
            PurgeCount(
                organisation_id=s.org.id,
                organisation=s.org.name,
                cutoff=s.cutoff,
                messages=await self.store.count_bodies(s.conversations, s.cutoff),
                offline=await self.store.count_offline(s.owners, s.cutoff),
                files=(
                    await self.files.count_created_before(s.owners, s.cutoff)
                    if self.files is not None
                    else 0
                ),
            )
            for s in await self._scopes(now, organisations)
        ]

    async def run(
        self,
        *,
        organisations: set[int] | None = None,
        actor: str = "system",
        channel: Channel = Channel.SYSTEM,
    ) -> list[PurgeCount]:
        """Purge now (all organisations with a retention period, or ``organisations``)."""
        now = self.clock.now()
        counts = [await self._purge(s) for s in await self._scopes(now, organisations)]
        await self.audit.record(
            AuditEvent(
                actor=actor,
                channel=channel,
                action="retention.purge",
                details={
                    "messages": sum(c.messages for c in counts),
                    "offline": sum(c.offline for c in counts),
                    "files": sum(c.files for c in counts),
                    "organisations": [
                        {
                            "id": c.organisation_id,
                            "cutoff": c.cutoff.isoformat(),
                            "messages": c.messages,
                            "offline": c.offline,
                            "files": c.files,
                        }
                        for c in counts
                    ],
                },
            )
        )
        return counts

    async def _purge(self, s: _Scope) -> PurgeCount:
        messages = batches = 0
        for start in range(0, len(s.conversations), CONVERSATIONS_PER_PASS):
            chunk = s.conversations[start : start + CONVERSATIONS_PER_PASS]
            after = 0
            while True:
                started = monotonic()
                done, after = await self.store.purge_bodies(
                    chunk, s.cutoff, limit=self.batch, after=after
                )
                took = monotonic() - started
                messages += done
                batches += 1
                if done:
                    log.info(
                        "retention purge: organisation %d, batch %d, %d message bodies so far",
                        s.org.id,
                        batches,
                        messages,
                    )
                if done < self.batch:
                    break
                # Yield the database to the server's own writes (tracking, offline
                # storage) for at least as long as the batch held it: a purge takes at
                # most about half of the writer's time, however busy the server is.
                await asyncio.sleep(max(self.pause, took))
        offline = await self.store.purge_offline(s.owners, s.cutoff)
        files = 0
        if self.files is not None:
            files = await self.files.purge_created_before(s.owners, s.cutoff)
        log.info(
            "retention purge: organisation %d done: %d message bodies, %d offline copies, %d files",
            s.org.id,
            messages,
            offline,
            files,
        )
        return PurgeCount(
            organisation_id=s.org.id,
            organisation=s.org.name,
            cutoff=s.cutoff,
            messages=messages,
            offline=offline,
            files=files,
        )

    async def run_scheduled(self) -> list[PurgeCount]:
        """The nightly job (called every minute): purge each organisation once a day after 02:00.

        An organisation is due when it is past 02:00 in its time zone and it was
        not purged yet on that local day (by this process: after a restart the
        day's purge runs again, which changes nothing).
        """
        now = self.clock.now()
        due: set[int] = set()
        for org in await self.directory.organisations.list_visible(SYSTEM_CALLER):
            if retention_period(org) is None:
                continue
            local = now.astimezone(zone_of(org))
            if local.time() >= PURGE_AT and self._last_run.get(org.id) != local.date():
                due.add(org.id)
                self._last_run[org.id] = local.date()
        if not due:
            return []
        return await self.run(organisations=due)
