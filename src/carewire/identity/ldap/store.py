"""Shapes of directory sync's storage, asked for by the service (:mod:`carewire.storage.ldap_sync`).

The bind secret crosses this boundary in clear only inside the process: the
store seals it with the data keys before it is written and opens it when
read. Every write opens a named transaction on the shared database, so the
link rows written during a batch join the directory's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from carewire.identity.ldap.model import (
    LdapSettings,
    ReportLine,
    RunCounts,
    RunKind,
    RunState,
    SyncRun,
    Trigger,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkRow:
    """A synced user's link to its entry."""

    login: str
    organisation_id: int
    external_id: str
    dn: str
    is_disabled_by_sync: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncState:
    """An integration's status and incremental high-water mark."""

    is_connected: bool | None = None
    error: str = ""
    checked_at: datetime | None = None
    stamp: str = ""
    last_full_at: datetime | None = None


class LdapStore(Protocol):
    """Integrations, links, runs and report lines."""

    async def get(self, organisation_id: int) -> LdapSettings | None:
        """The organisation's settings (without the secret)."""

    async def secret(self, organisation_id: int) -> str | None:
        """The bind secret in clear (None: no integration)."""

    async def put(self, settings: LdapSettings, secret: str | None, at: datetime) -> None:
        """Insert or replace the settings; ``secret`` None keeps the stored one."""

    async def remove(self, organisation_id: int) -> bool:
        """Delete the integration (links and runs stay); whether there was one."""

    async def all(self) -> list[LdapSettings]:
        """Every integration."""

    async def state(self, organisation_id: int) -> SyncState:
        """Status and high-water mark."""

    async def set_status(
        self, organisation_id: int, *, is_connected: bool, error: str, at: datetime
    ) -> None:
        """Record a status check."""

    async def set_stamp(
        self, organisation_id: int, stamp: str, *, full_at: datetime | None
    ) -> None:
        """Record the high-water mark after a run (and when the last full run ended)."""

    async def links(self, organisation_id: int) -> list[LinkRow]:
        """The organisation's links."""

    async def link_of(self, login: str) -> LinkRow | None:
        """The link of one user."""

    async def count_links(self, organisation_id: int) -> int:
        """How many users are linked."""

    async def put_links(self, rows: Sequence[LinkRow], at: datetime) -> None:
        """Insert or replace links (by login)."""

    async def start_run(
        self,
        organisation_id: int,
        *,
        kind: RunKind,
        trigger: Trigger,
        actor: str,
        at: datetime,
    ) -> SyncRun:
        """Record a run that begins (state RUNNING)."""

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

    async def add_lines(self, run_id: int, first_seq: int, lines: Sequence[ReportLine]) -> None:
        """Append report lines numbered from ``first_seq``."""

    async def interrupt_running(self, organisation_id: int, at: datetime) -> int:
        """Mark runs left RUNNING (the process stopped) INTERRUPTED; how many."""

    async def runs(
        self, organisation_id: int, *, offset: int, limit: int
    ) -> tuple[list[SyncRun], int]:
        """Runs, newest first, and how many there are."""

    async def run(self, run_id: int) -> SyncRun | None:
        """One run."""

    async def lines(self, run_id: int, *, offset: int, limit: int) -> tuple[list[ReportLine], int]:
        """A run's report lines in order, and how many there are."""

    async def prune_runs(self, organisation_id: int, keep: int) -> int:
        """Delete all but the newest ``keep`` runs; how many were deleted."""
