"""The assignment manager at run time: catch-up, the minute tick, patient moves, the queue.

Theory of operation (docs/assignments.md):

- It listens to every committed write (``DatasetService.subscribe``): a new
  ASSIGNMENTS record without a state is queued for ``next``; a PATIENTS record
  whose status or bed changed, and a new patient-based assignment, mark the
  patient to be followed.
- Each second (:meth:`AssignmentManager.step`) it follows the marked patients
  (their assignments end when the patient is no longer admitted, or move to
  the location of the new bed), then applies at most the per-second share of
  the queue in one transaction. Writes go through the dataset service, so
  rules see them.
- Each minute (:meth:`AssignmentManager.tick`) it finds the assignments due a
  state change, unless changes are still queued: then it audits that it
  pauses, and audits again when the queue has cleared and it resumes (running
  the paused query at once).
- At start (:meth:`AssignmentManager.catch_up`) it does what it missed while
  it was down: states for assignments without one, and every patient-based
  ``next``/``active`` assignment checked against its patient.
- A change the full queue refuses is audited and not lost: the data it came
  from is unchanged, so the next catch-up (run again once the queue has room)
  finds it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import Final

from carewire.adapters.assignments.lifecycle import (
    Assignment,
    Change,
    Kind,
    State,
    copy_values,
    due,
    follow_bed,
    initial,
    patient_left,
)
from carewire.adapters.assignments.locations import BedLocations
from carewire.adapters.assignments.queue import UpdateQueue
from carewire.adapters.assignments.settings import ManagerSettings
from carewire.adapters.base import AdapterConfig
from carewire.clock import Clock
from carewire.datasets.model import ChangeKind, Origin, Record, RecordChanged
from carewire.datasets.query import Filter, FilterOp, Query, Sort
from carewire.datasets.service import DatasetService, RecordNotFoundError
from carewire.security.audit import AuditEvent, AuditTrail, Channel, Outcome

log = logging.getLogger(__name__)

ASSIGNMENTS: Final = "ASSIGNMENTS"
PATIENTS: Final = "PATIENTS"
PAGE: Final = 1000
TICK_SECONDS: Final = 60.0
STEP_SECONDS: Final = 1.0
LIVE: Final = (State.NEXT.value, State.ACTIVE.value)


class TickGate:
    """Whether this process runs the minute's tick (on a cluster, only the singleton leader).

    The composition root makes one and the server sets :attr:`check` when clustered;
    the tick finds due changes in shared data, so two nodes ticking would apply them twice.
    """

    def __init__(self) -> None:
        self.check: Callable[[], Awaitable[bool]] | None = None  # None: always (one node)

    async def allows(self) -> bool:
        """Whether to tick now."""
        return self.check is None or await self.check()


class AssignmentManager:
    """One enabled instance: an :class:`~carewire.adapters.base.AdapterRuntime`."""

    def __init__(
        self,
        config: AdapterConfig,
        *,
        datasets: DatasetService,
        audit: AuditTrail,
        clock: Clock,
        ticks: TickGate | None = None,
    ) -> None:
        self.name = config.reference_name
        self.settings = ManagerSettings.of(config.settings)
        self.datasets = datasets
        self.audit = audit
        self.clock = clock
        self.queue = UpdateQueue(per_minute=self.settings.per_minute, depth=self.settings.depth)
        self.origin = Origin(adapter=self.name, actor=f"adapter:{self.name}")
        self.locations = BedLocations(datasets, self.origin, self.settings.prefix)
        self._patients: dict[int, None] = {}  # patients to follow, in order
        self._is_paused = False
        self._needs_catch_up = False
        self._is_listening = False
        self._audits: set[asyncio.Task[None]] = set()
        self.applied = 0
        self.ticks = ticks or TickGate()

    # -- AdapterRuntime ----------------------------------------------------------------

    async def run(self) -> None:
        """Catch up, then step every second and tick every minute, until cancelled."""
        self.listen()
        try:
            await self.catch_up()
            loop = asyncio.get_running_loop()
            next_tick, next_step = self.clock.monotonic(), loop.time()
            while True:
                if self.clock.monotonic() >= next_tick:
                    next_tick += TICK_SECONDS
                    if await self.ticks.allows():
                        await self.tick()
                await self.step()
                # Every second on the second, however long the step took (never twice at once).
                next_step = max(next_step + STEP_SECONDS, loop.time())
                await asyncio.sleep(next_step - loop.time())
        finally:
            self.unlisten()

    def health(self) -> str:
        """``queue 12/10000 (66/s)``, and ``paused`` while the tick waits for the queue."""
        s = self.queue.stats()
        note = f"queue {s.queued}/{s.depth} ({s.per_second}/s), {self.applied} applied"
        if s.refused:
            note += f", {s.refused} refused"
        return note + (", paused" if self._is_paused else "")

    def counters_view(self) -> dict[str, int | str | None]:
        """The queue's counters (a :class:`~carewire.adapters.base.MeteredRuntime`)."""
        s = self.queue.stats()
        return {
            "queued": s.queued,
            "queue_depth": s.depth,
            "queue_highest": s.highest,
            "per_second": s.per_second,
            "applied": self.applied,
            "refused": s.refused,
            "paused": "yes" if self._is_paused else "no",
        }

    # -- what changed ----------------------------------------------------------------------

    def listen(self) -> None:
        """Start hearing committed writes."""
        if not self._is_listening:
            self.datasets.subscribe(self.on_change, (ASSIGNMENTS, PATIENTS, "BEDS", "LOCATIONS"))
            self._is_listening = True

    def unlisten(self) -> None:
        """Stop hearing them (the instance was disabled or stopped)."""
        if self._is_listening:
            self.datasets.unsubscribe(self.on_change)
            self._is_listening = False

    def on_change(self, event: RecordChanged) -> None:
        """A committed write: queue a new assignment's state, mark patients to follow."""
        if event.dataset == ASSIGNMENTS and event.kind is ChangeKind.CREATE and event.new:
            a = Assignment.of(event.record_id, event.new)
            change = initial(a, event.at)
            if change is not None:
                self._offer(change)
            if a.patient is not None:
                self._patients[a.patient] = None
        elif event.dataset == PATIENTS and event.kind is not ChangeKind.CREATE:
            if event.kind is ChangeKind.DELETE or event.changed & {"status", "bed"}:
                self._patients[event.record_id] = None
        elif event.kind is ChangeKind.DELETE and event.dataset in ("BEDS", "LOCATIONS"):
            self.locations.forget()

    # -- the three activities ----------------------------------------------------------

    async def catch_up(self) -> None:
        """What was missed while not running: states to set, patients to follow."""
        self._needs_catch_up = False
        now = self.clock.now()
        async for record in self._records((Filter(field="state", op=FilterOp.EMPTY),)):
            change = initial(Assignment.of(record.id, record.values), now)
            if change is not None:
                self._offer(change)
        patient_based = (
            Filter(field="state", op=FilterOp.IN, value=list(LIVE)),
            Filter(field="patient", op=FilterOp.NOT_EMPTY),
        )
        async for record in self._records(patient_based):
            patient = Assignment.of(record.id, record.values).patient
            if patient is not None:
                self._patients[patient] = None

    async def tick(self) -> None:
        """The minute's query for due state changes (paused while changes are still queued)."""
        if len(self.queue):
            if not self._is_paused:
                self._is_paused = True
                await self._audit("assignments.pause", queued=len(self.queue))
            return
        now = self.clock.now()
        # Assignments another process (the CLI) wrote were not heard: they get their state here.
        async for record in self._records((Filter(field="state", op=FilterOp.EMPTY),)):
            fresh = initial(Assignment.of(record.id, record.values), now)
            if fresh is not None:
                self._offer(fresh)
        for filters in _due_queries(now):
            async for record in self._records(filters):
                change = due(Assignment.of(record.id, record.values), now)
                if change is not None:
                    self._offer(change)

    async def step(self) -> None:
        """Follow marked patients, apply this second's share of the queue, resume if clear."""
        while self._patients:
            patient = next(iter(self._patients))
            del self._patients[patient]
            await self._follow(patient)
        batch = self.queue.take(asyncio.get_running_loop().time())
        if batch:
            await self._apply(batch)
        if not len(self.queue):
            if self._needs_catch_up:
                await self.catch_up()
            if self._is_paused and not len(self.queue):
                self._is_paused = False
                await self._audit("assignments.resume")
                await self.tick()  # the paused minute's query, now that it cannot repeat a change

    # -- patients ------------------------------------------------------------------------------

    async def _follow(self, patient_id: int) -> None:
        now = self.clock.now()
        live = (
            Filter(field="patient", op=FilterOp.EQ, value=patient_id),
            Filter(field="state", op=FilterOp.IN, value=list(LIVE)),
        )
        assignments = [Assignment.of(r.id, r.values) async for r in self._records(live)]
        if not assignments:
            return
        try:
            patient: Record | None = await self.datasets.get(PATIENTS, patient_id)
        except RecordNotFoundError:
            patient = None
        if patient is None or not self.settings.is_admitted(patient.get("status")):
            for ended in patient_left(assignments, now):
                self._offer(ended)
            return
        bed = patient.get("bed")
        location = await self.locations.for_bed(bed) if isinstance(bed, int) else None
        for a in assignments:
            moved = follow_bed(a, location, now)
            if moved is not None:
                self._offer(moved)

    # -- applying ------------------------------------------------------------------------------

    async def _apply(self, batch: list[Change]) -> None:
        """Apply the changes that still fit, in one transaction (updates batched)."""
        ids = [c.assignment for c in batch]
        query = Query(filters=(Filter(field="id", op=FilterOp.IN, value=ids),), limit=len(ids))
        found: dict[int, Record] = {
            r.id: r for r in (await self.datasets.query(ASSIGNMENTS, query)).records
        }
        # A change whose record is gone, or changed since it was queued, no longer fits.
        fitting = [
            (c, found[c.assignment])
            for c in batch
            if c.assignment in found and (found[c.assignment].get("state") or "") == c.expect
        ]
        now = self.clock.now()
        updates: list[tuple[int, Mapping[str, object]]] = []
        copies: list[dict[str, object]] = []
        for change, record in fitting:
            if change.kind is Kind.MOVE:
                updates.append((record.id, {"location": change.location}))
                continue
            updates.append((record.id, dict(change.values)))
            if change.kind is Kind.COPY:
                copies.append(copy_values(record.values, record.id, change.location, now))
            patient = record.get("patient")
            if change.kind is Kind.INITIAL and isinstance(patient, int):
                self._patients[patient] = None  # a new patient-based one is checked against the bed
        if updates:
            async with self.datasets.batch(self.origin, "assignment_manager") as writer:
                await writer.update_many(ASSIGNMENTS, updates)
                for values in copies:
                    await writer.create(ASSIGNMENTS, values)
        self.applied += len(fitting)

    def _offer(self, change: Change) -> None:
        if self.queue.offer(change):
            return
        self._needs_catch_up = True
        refused = self.queue.stats().refused
        if refused == 1 or refused % 1000 == 0:
            log.warning("assignment manager %s: queue full, %d updates refused", self.name, refused)
        task = asyncio.get_running_loop().create_task(
            self._audit("assignments.queue-full", outcome=Outcome.FAILURE, refused=refused)
        )
        self._audits.add(task)
        task.add_done_callback(self._audits.discard)

    # -- helpers ---------------------------------------------------------------------------------

    async def _records(self, filters: tuple[Filter, ...]) -> AsyncIterator[Record]:
        """Every matching assignment, by id, a page at a time (ids go up: writes don't skip)."""
        after = 0
        while True:
            past = (Filter(field="id", op=FilterOp.GT, value=after),) if after else ()
            query = Query(filters=(*filters, *past), sort=(Sort(field="id"),), limit=PAGE)
            page = await self.datasets.query(ASSIGNMENTS, query)
            for record in page.records:
                yield record
            if len(page.records) < PAGE:
                return
            after = page.records[-1].id

    async def _audit(
        self, action: str, *, outcome: Outcome = Outcome.SUCCESS, **details: object
    ) -> None:
        await self.audit.record(
            AuditEvent(
                actor=f"adapter:{self.name}",
                channel=Channel.SYSTEM,
                action=action,
                target=self.name,
                outcome=outcome,
                details=details,
            )
        )


def _due_queries(now: datetime) -> list[tuple[Filter, ...]]:
    """The minute's three groups, as queries (the lifecycle decides each record)."""
    nxt = Filter(field="state", op=FilterOp.EQ, value=State.NEXT.value)
    return [
        (nxt, Filter(field="start_time", op=FilterOp.EMPTY)),
        (nxt, Filter(field="start_time", op=FilterOp.LE, value=now)),
        (nxt, Filter(field="end_time", op=FilterOp.LE, value=now)),
        (
            Filter(field="state", op=FilterOp.EQ, value=State.ACTIVE.value),
            Filter(field="end_time", op=FilterOp.LE, value=now),
        ),
    ]
