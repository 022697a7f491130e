"""Who is on shift now: the logins of users with an ASSIGNMENTS record in state ``active``.

Theory of operation: the index is memory only, so the message path asks it
without a query. It is loaded at start and kept current from the dataset
service's committed changes: an ASSIGNMENTS write moves its record in or out
of the active set, a USERS write keeps the login of a user id. A user id
whose login is not known yet is looked up (once) before the next answer.
Writes made by another process (the command line) are picked up by the
periodic full reload. Where no assignment is active at all, shifts are not
recorded and nobody counts as off shift.
"""

from __future__ import annotations

import logging

from carewire.datasets.model import ChangeKind, RecordChanged
from carewire.datasets.query import MAX_LIMIT, Filter, FilterOp, Query
from carewire.datasets.service import DatasetService

log = logging.getLogger(__name__)

ASSIGNMENTS = "ASSIGNMENTS"
USERS = "USERS"
ACTIVE = "active"


class ShiftIndex:
    """The users on shift, in memory."""

    def __init__(self, datasets: DatasetService) -> None:
        self.datasets = datasets
        self.active: dict[int, int] = {}  # ASSIGNMENTS id → USERS id
        self.logins: dict[int, str] = {}  # USERS id → login
        self.on_shift: frozenset[str] = frozenset()
        self._is_stale = True

    def is_on_shift(self, login: str) -> bool | None:
        """Whether ``login`` has an active assignment (None: no shifts are recorded)."""
        if not self.active:
            return None
        return login in self.on_shift

    #: The datasets :meth:`on_change` looks at (its subscription).
    DATASETS = (ASSIGNMENTS, USERS)

    def on_change(self, event: RecordChanged) -> None:
        """A committed write (subscriber of the dataset service)."""
        if event.dataset == ASSIGNMENTS:
            new = event.new if event.kind is not ChangeKind.DELETE else None
            user = new.get("usr") if new is not None else None
            if new is not None and new.get("state") == ACTIVE and isinstance(user, int):
                self.active[int(event.record_id)] = user
            else:
                self.active.pop(int(event.record_id), None)
            self._is_stale = True
        elif event.dataset == USERS and event.new is not None:
            login = event.new.get("login")
            if isinstance(login, str):
                self.logins[int(event.record_id)] = login
                self._is_stale = True

    async def fresh(self) -> ShiftIndex:
        """The index with every active user's login known (looked up when needed)."""
        if self._is_stale:
            missing = {u for u in self.active.values() if u not in self.logins}
            if missing:
                await self._load_logins(missing)
            self.on_shift = frozenset(
                self.logins[u] for u in self.active.values() if u in self.logins
            )
            self._is_stale = False
        return self

    async def reload(self) -> None:
        """Read every active assignment again (at start, and periodically)."""
        active: dict[int, int] = {}
        offset = 0
        while True:
            page = await self.datasets.query(
                ASSIGNMENTS,
                Query(
                    filters=(Filter(field="state", op=FilterOp.EQ, value=ACTIVE),),
                    offset=offset,
                    limit=MAX_LIMIT,
                ),
            )
            for rec in page.records:
                user = rec.get("usr")
                if isinstance(user, int):
                    active[int(rec.id)] = user
            offset += len(page.records)
            if len(page.records) < MAX_LIMIT:
                break
        self.active = active
        self._is_stale = True
        await self.fresh()

    async def _load_logins(self, ids: set[int]) -> None:
        wanted = sorted(ids)
        for start in range(0, len(wanted), MAX_LIMIT):
            chunk = wanted[start : start + MAX_LIMIT]
            page = await self.datasets.query(
                USERS,
                Query(filters=(Filter(field="id", op=FilterOp.IN, value=chunk),), limit=MAX_LIMIT),
            )
            for rec in page.records:
                login = rec.get("login")
                if isinstance(login, str):
                    self.logins[int(rec.id)] = login
