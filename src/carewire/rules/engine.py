"""The rules engine: match each committed write against the rules, defer, dispatch, track.

Theory of operation: the dataset service calls :meth:`RuleEngine.notify`
after every commit; the event goes on a queue that one worker drains in
order. For each active rule of the event's dataset the worker checks the
trigger (create/update, changed attributes), the adapter (exists, enabled,
not the originator when the rule says so), then resolves the condition paths
and evaluates the conditions. A match becomes a DELIVERIES record (Queued).
Without a deferral the action runs at once; with one, the firing is saved
in ``rule_schedule`` and the scheduler re-checks the conditions against the
record as it is when the time comes (that is how escalations are written),
so deferred firings survive a restart.

Every rule runs in its own ``try``: a rule or action that fails marks its
delivery Error and never stops the others. Writes an action makes carry
``depth + 1``; a chain deeper than ``max_depth`` (rules updating each other
in a cycle) stops with an Error delivery instead of running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, timedelta, tzinfo
from typing import Protocol

from carewire.clock import Clock
from carewire.datasets.model import (
    AttrType,
    ChangeKind,
    Origin,
    Record,
    RecordChanged,
)
from carewire.datasets.paths import PathResolver, parse_path
from carewire.datasets.service import DatasetService
from carewire.datasets.templates import parse_template, render_for
from carewire.datasets.values import coerce
from carewire.errors import CarewireError
from carewire.rules.actions import ActionContext, ActionOutcome, Outcome
from carewire.rules.conditions import evaluate
from carewire.rules.deliveries import DeliveryTracker
from carewire.rules.model import DeliveryStatus, Rule, Trigger
from carewire.rules.payload import event_from_payload, firing_payload, is_same_write
from carewire.rules.service import CompiledRule, RuleService
from carewire.rules.store import RuleStore, ScheduledFiring

log = logging.getLogger(__name__)


class AdapterView(Protocol):
    """What the engine needs to know about an adapter instance."""

    @property
    def is_enabled(self) -> bool:
        """Whether it may act."""

    @property
    def settings(self) -> Mapping[str, object]:
        """Its settings."""

    @property
    def runtime(self) -> object:
        """Its running object (kind-specific), or None."""


class AdapterLookup(Protocol):
    """Adapter instances by reference name (the adapter manager)."""

    def view(self, reference_name: str) -> AdapterView | None:
        """The instance, or None."""

    def component_of(self, reference_name: str) -> str | None:
        """The instance's kind, or None."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    """Engine limits.

    Attributes:
        max_depth: Longest chain of rule-caused writes before a firing is refused.
        action_timeout: Seconds an action may take.
        poll_interval: Longest the scheduler sleeps between looks at the schedule
            (other processes, such as the CLI, may add firings).
        tz: Time zone templates render times in.
        hand_over: Adapter components whose actions cannot run in this process
            (the CLI has no XMPP server): their firings are scheduled due at
            once, for the running server's scheduler to run.
    """

    max_depth: int = 8
    action_timeout: float = 30.0
    poll_interval: float = 5.0
    tz: tzinfo = UTC
    hand_over: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class DryRun:
    """The result of :meth:`RuleEngine.dry_run`.

    Attributes:
        matched: Whether the conditions hold for the record.
        values: The value of every path the conditions read.
        settings: The action's settings with every ``#{...}`` rendered.
        adapter_enabled: Whether the rule's adapter would act.
        would_defer_seconds: The deferral before acting (conditions re-checked then).
    """

    matched: bool
    values: Mapping[str, object]
    settings: Mapping[str, object]
    adapter_enabled: bool
    would_defer_seconds: int


async def _render_value(render: _Renderer, value: object) -> object:
    """Render strings (and strings inside lists and mappings) that contain expressions."""
    if isinstance(value, str):
        return await render(value) if "#{" in value else value
    if isinstance(value, list):
        return [await _render_value(render, v) for v in value]
    if isinstance(value, dict):
        return {k: await _render_value(render, v) for k, v in value.items()}
    return value


class _Renderer:
    """Templates and paths bound to one record."""

    def __init__(self, engine: RuleEngine, rule: Rule, record: Record) -> None:
        self._engine, self._rule, self._record = engine, rule, record

    async def __call__(self, text: str) -> str:
        template = parse_template(self._engine.rules.registry, self._rule.dataset, text)
        return await render_for(
            template, self._record, self._engine.resolver, tz=self._engine.config.tz
        )

    async def value(self, path: str) -> object:
        parsed = parse_path(self._engine.rules.registry, self._rule.dataset, path)
        return await self._engine.resolver.resolve(self._record, parsed)


class RuleEngine:
    """Matches writes to rules and runs their actions."""

    def __init__(
        self,
        *,
        rules: RuleService,
        store: RuleStore,
        datasets: DatasetService,
        resolver: PathResolver,
        adapters: AdapterLookup,
        clock: Clock,
        config: EngineConfig | None = None,
    ) -> None:
        self.rules = rules
        self.resolver = resolver
        self.config = config or EngineConfig()
        self._store = store
        self._datasets = datasets
        self._adapters = adapters
        self._clock = clock
        self.tracker = DeliveryTracker(datasets, clock)
        self._queue: asyncio.Queue[RecordChanged] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        #: On a cluster, whether this node runs deferred firings now (the singleton lease);
        #: None on one node. Set before :meth:`start`.
        self.may_schedule: Callable[[], Awaitable[bool]] | None = None

    @property
    def queue_depth(self) -> int:
        """Committed writes waiting for the rule workers (read by /metrics)."""
        return self._queue.qsize()

    # --- lifecycle ----------------------------------------------------------

    def attach(self) -> None:
        """Listen to the dataset service (without starting the workers: tests call process)."""
        self._datasets.subscribe(self.notify)

    async def start(self, *, scheduler: bool = True) -> None:
        """Start the worker; with ``scheduler``, fail interrupted firings and run deferred ones.

        A short-lived process (the CLI) starts only the worker, so deferred
        firings it creates are left to the server's scheduler.
        """
        self._tasks = [asyncio.create_task(self._work(), name="rules-worker")]
        if scheduler:
            if self.may_schedule is None:
                await self.recover()
            else:  # another node's firings may be in flight: nobody can tell them apart
                log.info("clustered: interrupted rule deliveries are not failed at start")
            self._tasks.append(asyncio.create_task(self._schedule_loop(), name="rules-scheduler"))

    async def stop(self) -> None:
        """Stop the worker and scheduler (queued events not yet processed are dropped)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def wake(self) -> None:
        """Have the scheduler look again now: re-read datasets and rules, run what is due.

        The server calls this when told that another process (``carewire demo``,
        ``carewire rules import``) changed definitions (``SIGHUP``).
        """
        self._wake.set()

    async def refresh(self) -> bool:
        """Take up datasets and rules another process saved; True if anything changed."""
        datasets = await self._datasets.registry.refresh()
        rules = await self.rules.refresh()
        return datasets or rules

    def notify(self, event: RecordChanged) -> None:
        """Take a committed write (called by the dataset service after commit).

        A write to a dataset no active rule watches is let go at once: processing
        it later would find no rule either (message tracking writes thousands of
        MESSAGE_DELIVERIES records a second, usually with no rule on them).
        """
        if self.rules.compiled_for(event.dataset):
            self._queue.put_nowait(event)

    async def drain(self) -> None:
        """Wait until every queued event has been processed."""
        await self._queue.join()

    async def _work(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self.process(event)
            except Exception:  # supervisor: the engine must outlive any bug
                log.exception("rule processing failed for %s", event.dataset)
            finally:
                self._queue.task_done()

    async def recover(self) -> int:
        """Mark firings a restart interrupted (Queued or Processing, not scheduled) as Error."""
        scheduled = await self._store.scheduled_ids()
        count = 0
        for delivery_id, at in await self.tracker.unfinished():
            if delivery_id in scheduled:
                continue
            await self.tracker.move(
                delivery_id,
                DeliveryStatus.ERROR,
                triggered_at=at,
                cause=Origin(),
                text="interrupted by a server restart before it finished",
            )
            count += 1
        if count:
            log.warning("%d rule deliveries were interrupted by a restart", count)
        return count

    # --- matching -----------------------------------------------------------

    async def process(self, event: RecordChanged) -> list[int]:
        """Fire every matching rule for ``event``; returns the delivery ids created."""
        if event.kind is ChangeKind.DELETE or event.new is None:
            return []
        record = Record(dataset=event.dataset, id=event.record_id, values=event.new)
        out = []
        values: dict[str, object] | None = None  # every rule's paths, resolved once per event
        failed: list[Rule] = []  # their escalations are scheduled by this loop too
        for compiled in self.rules.compiled_for(event.dataset):
            try:
                if values is None and self._may_fire(compiled, event):
                    values = await self.resolver.resolve_all(
                        record, self.rules.paths_for(event.dataset)
                    )
                delivery = await self._consider(compiled, event, record, values, failed=failed)
            except Exception:  # supervisor: one rule's failure never stops the others
                log.exception("rule %s failed", compiled.rule.name)
                delivery = await self._refuse(compiled.rule, event, "the rule failed; see the log")
            if delivery is not None:
                out.append(delivery)
        for rule in failed:
            await self._hasten_escalations(rule, event)
        return out

    def _may_fire(self, compiled: CompiledRule, event: RecordChanged) -> bool:
        """Trigger and adapter checks: everything short of the conditions."""
        rule = compiled.rule
        if not _triggered(rule.trigger, event):
            return False
        adapter = self._adapters.view(rule.adapter)
        if adapter is None or not adapter.is_enabled:
            return False  # a disabled adapter is ignored, as are its rules
        return not (rule.skip_originating_adapter and event.origin.adapter == rule.adapter)

    async def _consider(
        self,
        compiled: CompiledRule,
        event: RecordChanged,
        record: Record,
        values: Mapping[str, object] | None,
        *,
        failed: list[Rule],
    ) -> int | None:
        rule = compiled.rule
        if values is None or not self._may_fire(compiled, event):
            return None
        if not evaluate(compiled.conditions, values, _before(compiled, event.old)):
            return None
        if event.origin.depth >= self.config.max_depth:
            return await self._refuse(
                rule,
                event,
                f"not run: {event.origin.depth} rule actions led here, more than the limit of "
                f"{self.config.max_depth} (rules that update each other in a cycle?)",
            )
        delivery = await self.tracker.queued(rule, event)
        try:
            hand_over = self._adapters.component_of(rule.adapter) in self.config.hand_over
            if rule.defer_seconds or hand_over:
                await self._defer(rule, event, delivery)
            elif not await self._run(compiled, record, event, delivery):
                failed.append(rule)
        except Exception as exc:  # supervisor: the delivery says why, now, not at a restart
            log.exception("rule %s failed", rule.name)
            await self._fail(delivery, event, exc)
        return delivery

    async def _matches(
        self, compiled: CompiledRule, record: Record, old: Mapping[str, object] | None
    ) -> bool:
        values = await self.resolver.resolve_all(record, compiled.paths)
        return evaluate(compiled.conditions, values, _before(compiled, old))

    async def _fail(self, delivery: int, event: RecordChanged, exc: BaseException) -> None:
        """End ``delivery`` in Error with what went wrong."""
        await self.tracker.move(
            delivery,
            DeliveryStatus.ERROR,
            triggered_at=event.at,
            cause=event.origin,
            text=_reason(exc),
        )

    async def _refuse(self, rule: Rule, event: RecordChanged, text: str) -> int:
        log.warning("rule %s: %s", rule.name, text)
        return await self.tracker.queued(rule, event, status=DeliveryStatus.ERROR, text=text)

    # --- running ------------------------------------------------------------

    async def _run(
        self, compiled: CompiledRule, record: Record, event: RecordChanged, delivery: int
    ) -> bool:
        """Run the action; False when it failed or reached nobody (its escalations hurry)."""
        rule = compiled.rule
        await self.tracker.move(
            delivery, DeliveryStatus.PROCESSING, triggered_at=event.at, cause=event.origin
        )
        is_reached = True
        try:
            outcome = await asyncio.wait_for(
                self._invoke(compiled, record, event, delivery), self.config.action_timeout
            )
        except TimeoutError:
            status, text = DeliveryStatus.ERROR, f"{rule.action} timed out"
        except CarewireError as exc:
            status, text = DeliveryStatus.ERROR, _reason(exc)
        except Exception as exc:  # supervisor: an action's bug becomes an Error delivery
            log.exception("action %s of rule %s raised", rule.action, rule.name)
            status, text = DeliveryStatus.ERROR, f"{rule.action} failed: {_reason(exc)}"
        else:
            pending = outcome.outcome is Outcome.PENDING
            status = DeliveryStatus.PENDING if pending else DeliveryStatus.DELIVERED
            text, is_reached = outcome.text, outcome.has_reached
        await self.tracker.move(
            delivery, status, triggered_at=event.at, cause=event.origin, text=text
        )
        return status is not DeliveryStatus.ERROR and is_reached

    async def _hasten_escalations(self, rule: Rule, event: RecordChanged) -> None:
        """The rule's action failed (or reached nobody): its escalations are due now.

        An escalation is a deferred firing of the same write with the same adapter
        and action and a longer delay (the backup nurse's alert after the primary
        nurse's): waiting out its delay would only delay the one alert that can
        still reach someone. Its conditions are re-checked as for any deferred firing.
        """
        later = [
            r.id
            for r in self.rules.list_rules(rule.dataset)
            if r.id is not None
            and r.is_active
            and r.adapter == rule.adapter
            and r.action == rule.action
            and r.defer_seconds > rule.defer_seconds
        ]
        if not later:
            return
        firings = await self._store.scheduled_for(later)
        same_write = [f.delivery_id for f in firings if is_same_write(f.payload, event)]
        if same_write and await self._store.hasten(same_write, self._clock.now()):
            log.info("rule %s failed: %d escalation(s) due now", rule.name, len(same_write))
            self._wake.set()

    async def _invoke(
        self, compiled: CompiledRule, record: Record, event: RecordChanged, delivery: int
    ) -> ActionOutcome:
        rule = compiled.rule
        adapter = self._adapters.view(rule.adapter)
        if adapter is None or not adapter.is_enabled:
            raise CarewireError(f"adapter {rule.adapter!r} is not enabled")
        settings = self.rules.check_settings(compiled.spec.fields, rule.settings, rule.dataset)
        ctx = ActionContext(
            rule=rule,
            record=record,
            event=event,
            settings=settings,
            adapter_settings=adapter.settings,
            adapter_runtime=adapter.runtime,
            origin=Origin(
                adapter=rule.adapter, actor=f"rule:{rule.name}", depth=event.origin.depth + 1
            ),
            datasets=self._datasets,
            render=_Renderer(self, rule, record),
            delivery_id=delivery,
        )
        return await compiled.spec.handler(ctx)

    # --- dry run ------------------------------------------------------------

    async def dry_run(self, rule: Rule, record_id: int) -> DryRun:
        """What ``rule`` would do for a record as it is now, without acting or writing.

        The record is treated as just created (change conditions compare with nothing).

        Raises:
            SettingsError, RuleError: The rule is not valid.
            RecordNotFoundError: The record does not exist.
        """
        compiled = self.rules.compile(rule)
        record = await self._datasets.get(rule.dataset, record_id)
        values = await self.resolver.resolve_all(record, compiled.paths)
        matched = evaluate(compiled.conditions, values, None)
        settings = self.rules.check_settings(compiled.spec.fields, rule.settings, rule.dataset)
        render = _Renderer(self, rule, record)
        rendered: dict[str, object] = {}
        for name, value in settings.items():
            rendered[name] = await _render_value(render, value)
        adapter = self._adapters.view(rule.adapter)
        return DryRun(
            matched=matched,
            values=values,
            settings=rendered,
            adapter_enabled=adapter is not None and adapter.is_enabled,
            would_defer_seconds=rule.defer_seconds,
        )

    # --- deferral -----------------------------------------------------------

    async def _defer(self, rule: Rule, event: RecordChanged, delivery: int) -> None:
        assert rule.id is not None
        due = self._clock.now() + timedelta(seconds=rule.defer_seconds)
        payload = firing_payload(event)
        await self._store.schedule(
            ScheduledFiring(delivery_id=delivery, rule_id=rule.id, due_at=due, payload=payload)
        )
        self._wake.set()

    async def run_due(self) -> int:
        """Re-check and run every deferred firing that is due; returns how many were handled."""
        handled = 0
        while batch := await self._store.due(self._clock.now(), 100):
            for firing in batch:
                # Claim it first: another process may be looking at the same row.
                if not await self._store.unschedule(firing.delivery_id):
                    continue
                try:
                    await self._run_deferred(firing)
                except Exception as exc:  # supervisor: the delivery says why, now
                    log.exception("deferred firing %d failed", firing.delivery_id)
                    event = event_from_payload(firing.payload)
                    await self._fail(firing.delivery_id, event, exc)
                handled += 1
        return handled

    async def _run_deferred(self, firing: ScheduledFiring) -> None:
        event = event_from_payload(firing.payload)
        if event.dataset not in self._datasets.registry or not self._knows(firing.rule_id):
            await self.refresh()  # made by another process a moment ago (carewire demo)
        if event.dataset not in self._datasets.registry:
            await self._finish(
                firing, event, DeliveryStatus.ERROR, f"dataset {event.dataset} does not exist"
            )
            return
        event = self._typed_old(event)
        cancel = DeliveryStatus.CANCELLED
        try:
            rule = self.rules.get(firing.rule_id)
        except CarewireError:
            rule = None
        if rule is None or not rule.is_active:
            await self._finish(firing, event, cancel, "the rule was removed or deactivated")
            return
        compiled = self.rules.compile(rule)
        ds = self._datasets.registry.get(event.dataset)
        record = await self._datasets.store.get(ds, event.record_id)
        if record is None:
            await self._finish(
                firing, event, cancel, "the record was deleted before the delay ended"
            )
            return
        if not await self._matches(compiled, record, event.old):
            await self._finish(
                firing, event, cancel, "conditions no longer held when the delay ended"
            )
            return
        if not await self._run(compiled, record, event, firing.delivery_id):
            await self._hasten_escalations(rule, event)

    def _knows(self, rule_id: int) -> bool:
        try:
            self.rules.get(rule_id)
        except CarewireError:
            return False
        return True

    def _typed_old(self, event: RecordChanged) -> RecordChanged:
        """The saved old values with their types back (JSON kept dates as text)."""
        if event.old is None or event.dataset not in self._datasets.registry:
            return event
        ds = self._datasets.registry.get(event.dataset)
        old = dict(event.old)
        for attr in ds.attributes:
            if isinstance(old.get(attr.name), str) and attr.type in (
                AttrType.DATE,
                AttrType.DATETIME,
            ):
                old[attr.name] = coerce(ds.name, attr, old[attr.name])
        return replace(event, old=old)

    async def _finish(
        self, firing: ScheduledFiring, event: RecordChanged, status: DeliveryStatus, text: str
    ) -> None:
        await self.tracker.move(
            firing.delivery_id, status, triggered_at=event.at, cause=event.origin, text=text
        )

    async def _schedule_loop(self) -> None:
        while True:
            self._wake.clear()  # a wake-up while this round runs makes the next one start at once
            try:
                await self.refresh()
                next_due = None  # not this node's turn (another leads): look again later
                if self.may_schedule is None or await self.may_schedule():
                    await self.run_due()
                    next_due = await self._store.next_due()
            except Exception:  # supervisor: retry after the poll interval
                log.exception("rule scheduler failed")
                next_due = None
            delay = self.config.poll_interval
            if next_due is not None:
                delay = min(delay, max(0.0, (next_due - self._clock.now()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)


def _reason(exc: BaseException) -> str:
    """What went wrong, for a delivery's status text."""
    if isinstance(exc, CarewireError) and exc.message:
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def _before(compiled: CompiledRule, old: Mapping[str, object] | None) -> dict[str, object] | None:
    if old is None:
        return None
    return {p.text: old.get(p.text) for p in compiled.paths if p.is_direct}


def _triggered(trigger: Trigger, event: RecordChanged) -> bool:
    if event.kind is ChangeKind.CREATE:
        return trigger.on_create
    if not trigger.on_update:
        return False
    changed = event.changed
    if not changed:
        return False
    return not trigger.attributes or bool(changed & set(trigger.attributes))
