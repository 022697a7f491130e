"""The adapter manager: kinds, instances (create, edit, enable, disable, remove), supervision.

Instances are validated against their kind's settings schema when saved. A
singleton kind (XMPP) may have several instances but only one enabled. When
an instance is created its required datasets are looked up by name and,
where missing, created from the built-in definition of the same role.

Supervision: every enabled instance whose kind has a runtime runs in a task
the manager owns. A runtime that raises is restarted after a back-off that
doubles from one second up to a minute; :meth:`AdapterManager.health`
reports the state, restart count and last error.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from carewire.adapters.base import AdapterConfig, AdapterKind, AdapterRuntime, MeteredRuntime
from carewire.adapters.store import AdapterStore
from carewire.clock import Clock
from carewire.datasets.definitions import builtin_datasets
from carewire.datasets.model import Dataset
from carewire.datasets.registry import Registry
from carewire.errors import ConflictError, NotFoundError, ValidationError
from carewire.rules.actions import ActionRegistry
from carewire.rules.settings import validate_settings

log = logging.getLogger(__name__)

BACKOFF_START = 1.0
BACKOFF_MAX = 60.0


class UnknownAdapterError(NotFoundError):
    """No adapter instance (or kind) of this name."""

    code = "unknown-adapter"


class State(enum.StrEnum):
    """An instance's run state."""

    DISABLED = "disabled"
    RUNNING = "running"  # enabled (and its runtime, if any, is up)
    RESTARTING = "restarting"  # its runtime crashed; waiting to restart
    STOPPED = "stopped"  # the manager is not running


@dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    """How an instance is doing.

    Attributes:
        state: Run state.
        restarts: Crashes since it was started.
        last_error: The last crash's message.
        note: The runtime's own health note.
        counters: The runtime's counters, when it keeps any (:class:`MeteredRuntime`).
    """

    state: State
    restarts: int = 0
    last_error: str = ""
    note: str = ""
    counters: Mapping[str, int | str | None] = field(default_factory=dict)


@dataclass(slots=True)
class _Running:
    task: asyncio.Task[None] | None = None
    runtime: AdapterRuntime | None = None
    restarts: int = 0
    last_error: str = ""
    is_waiting: bool = False


@dataclass(frozen=True, slots=True)
class _View:
    config: AdapterConfig
    runtime: AdapterRuntime | None

    @property
    def is_enabled(self) -> bool:
        return self.config.is_enabled

    @property
    def settings(self) -> Mapping[str, object]:
        return self.config.settings


class RuleUsage(Protocol):
    """Which rules use an adapter (an adapter they use cannot be renamed or removed)."""

    async def rules_using(self, adapter: str) -> Sequence[str]:
        """Names of the rules whose adapter is ``adapter``."""


class AdapterManager:
    """Adapter kinds and instances."""

    def __init__(
        self,
        store: AdapterStore,
        registry: Registry,
        actions: ActionRegistry,
        clock: Clock,
        *,
        rule_usage: RuleUsage,
    ) -> None:
        self._store = store
        self._registry = registry
        self._actions = actions
        self._clock = clock
        self._rule_usage = rule_usage
        self._kinds: dict[str, AdapterKind] = {}
        self._instances: dict[str, AdapterConfig] = {}
        self._running: dict[str, _Running] = {}
        self._is_started = False

    # --- kinds --------------------------------------------------------------

    def register_kind(self, kind: AdapterKind) -> None:
        """Add a kind and its actions."""
        if kind.component in self._kinds:
            raise ValueError(f"adapter kind {kind.component} registered twice")
        self._kinds[kind.component] = kind
        for spec in kind.actions:
            self._actions.register(spec)

    def kinds(self) -> list[AdapterKind]:
        """Every kind, by component name."""
        return sorted(self._kinds.values(), key=lambda k: k.component)

    def kind(self, component: str) -> AdapterKind:
        """A kind by component name."""
        kind = self._kinds.get(component)
        if kind is None:
            known = ", ".join(sorted(self._kinds))
            raise UnknownAdapterError(f"unknown component {component!r} (known: {known})")
        return kind

    # --- instances ----------------------------------------------------------

    async def load(self) -> None:
        """Read the saved instances."""
        self._instances = {c.reference_name: c for c in await self._store.all()}

    def list(self, *, include_disabled: bool = True, search: str = "") -> list[AdapterConfig]:
        """Instances by reference name; ``search`` matches name or component (any case)."""
        needle = search.strip().lower()
        return [
            c
            for c in sorted(self._instances.values(), key=lambda c: c.reference_name.lower())
            if (include_disabled or c.is_enabled)
            and (not needle or needle in c.reference_name.lower() or needle in c.component.lower())
        ]

    def get(self, reference_name: str) -> AdapterConfig:
        """An instance by reference name."""
        config = self._instances.get(reference_name)
        if config is None:
            raise UnknownAdapterError(f"no adapter is named {reference_name!r}")
        return config

    def component_of(self, reference_name: str) -> str | None:
        """The kind of an instance, or None (for the rules service)."""
        config = self._instances.get(reference_name)
        return None if config is None else config.component

    def view(self, reference_name: str) -> _View | None:
        """An instance as the rules engine sees it."""
        config = self._instances.get(reference_name)
        if config is None:
            return None
        running = self._running.get(reference_name)
        return _View(config, None if running is None else running.runtime)

    async def create(
        self,
        component: str,
        reference_name: str,
        *,
        is_enabled: bool = False,
        settings: Mapping[str, object] | None = None,
        required_datasets: Mapping[str, str] | None = None,
    ) -> AdapterConfig:
        """Create an instance (its missing required datasets are created)."""
        kind = self.kind(component)
        name = _reference_name(reference_name)
        if name in self._instances:
            raise ConflictError(f"an adapter named {name!r} already exists")
        config = AdapterConfig(
            reference_name=name,
            component=component,
            is_enabled=is_enabled,
            settings=validate_settings(kind.settings, settings or {}),
        )
        self._check_singleton(config)
        # Only once everything else is known to be fine: datasets are never dropped.
        config = replace(
            config, required_datasets=await self._datasets_for(kind, required_datasets or {})
        )
        saved = await self._store.insert(config, self._clock.now())
        self._instances[name] = saved
        log.info("adapter %s (%s) created", name, component)
        await self._restart(saved)
        return saved

    async def update(
        self,
        reference_name: str,
        *,
        new_reference_name: str | None = None,
        is_enabled: bool | None = None,
        settings: Mapping[str, object] | None = None,
    ) -> AdapterConfig:
        """Edit an instance (Save in the console); unchanged fields are kept."""
        old = self.get(reference_name)
        kind = self.kind(old.component)
        new = replace(
            old,
            reference_name=_reference_name(new_reference_name or old.reference_name),
            is_enabled=old.is_enabled if is_enabled is None else is_enabled,
            settings=old.settings
            if settings is None
            else validate_settings(kind.settings, settings),
        )
        if new.reference_name != old.reference_name and new.reference_name in self._instances:
            raise ConflictError(f"an adapter named {new.reference_name!r} already exists")
        renamed = new.reference_name != old.reference_name
        if renamed and await self._rule_usage.rules_using(old.reference_name):
            raise ConflictError(
                f"rules use the adapter {old.reference_name!r}; it cannot be renamed"
            )
        self._check_singleton(new)
        await self._store.update(new, self._clock.now())
        await self._stop_one(old.reference_name)
        del self._instances[old.reference_name]
        self._instances[new.reference_name] = new
        log.info("adapter %s updated", new.reference_name)
        await self._restart(new)
        return new

    async def enable(self, reference_name: str) -> AdapterConfig:
        """Enable an instance."""
        return await self.update(reference_name, is_enabled=True)

    async def disable(self, reference_name: str) -> AdapterConfig:
        """Disable (deactivate) an instance; its rules stop firing."""
        return await self.update(reference_name, is_enabled=False)

    async def remove(self, reference_name: str) -> None:
        """Remove an instance for good (refused while rules use it)."""
        config = self.get(reference_name)
        using = list(await self._rule_usage.rules_using(reference_name))
        if using:
            raise ConflictError(
                f"{len(using)} rule(s) use the adapter {reference_name!r} "
                f"({', '.join(using[:5])}); delete them or move them to another adapter first"
            )
        await self._stop_one(reference_name)
        assert config.id is not None
        await self._store.delete(config.id)
        del self._instances[reference_name]
        log.info("adapter %s removed", reference_name)

    def _check_singleton(self, config: AdapterConfig) -> None:
        if not config.is_enabled or not self.kind(config.component).is_singleton:
            return
        for other in self._instances.values():
            if other.component == config.component and other.is_enabled and other.id != config.id:
                raise ConflictError(
                    f"only one {config.component} adapter can be enabled at a time; "
                    f"disable {other.reference_name!r} first"
                )

    async def _datasets_for(self, kind: AdapterKind, chosen: Mapping[str, str]) -> dict[str, str]:
        unknown = set(chosen) - set(kind.required_datasets)
        if unknown:
            raise ValidationError(
                f"{kind.component} does not use the dataset role(s) {', '.join(sorted(unknown))}"
            )
        out = {}
        builtin: dict[str, Dataset] = {ds.name: ds for ds in builtin_datasets()}
        for role in kind.required_datasets:
            name = chosen.get(role) or role
            if name not in self._registry:
                template = builtin.get(role)
                await self._registry.create_dataset(
                    name,
                    description=template.description if template else "",
                    attributes=template.attributes if template else (),
                )
                log.info("dataset %s created for the %s adapter", name, kind.component)
            out[role] = name
        return out

    # --- supervision --------------------------------------------------------

    async def start(self) -> None:
        """Start the runtime of every enabled instance."""
        self._is_started = True
        for config in list(self._instances.values()):
            await self._restart(config)

    async def stop(self) -> None:
        """Stop every runtime."""
        self._is_started = False
        for name in list(self._running):
            await self._stop_one(name)

    def health_all(self) -> dict[str, Health]:
        """How every instance is doing, by reference name."""
        return {name: self.health(name) for name in sorted(self._instances)}

    def health(self, reference_name: str) -> Health:
        """How an instance is doing."""
        config = self.get(reference_name)
        if not config.is_enabled:
            return Health(state=State.DISABLED)
        if not self._is_started:
            return Health(state=State.STOPPED)
        running = self._running.get(reference_name)
        if running is None:
            return Health(state=State.RUNNING)
        state = State.RESTARTING if running.is_waiting else State.RUNNING
        runtime = running.runtime
        note = runtime.health() if runtime is not None else ""
        counters: dict[str, int | str | None] = (
            dict(runtime.counters_view()) if isinstance(runtime, MeteredRuntime) else {}
        )
        return Health(
            state=state,
            restarts=running.restarts,
            last_error=running.last_error,
            note=note,
            counters=counters,
        )

    async def _restart(self, config: AdapterConfig) -> None:
        await self._stop_one(config.reference_name)
        factory = self.kind(config.component).factory
        if not self._is_started or not config.is_enabled or factory is None:
            return
        running = _Running()
        self._running[config.reference_name] = running
        running.task = asyncio.create_task(
            self._supervise(config, running), name=f"adapter-{config.reference_name}"
        )

    async def _stop_one(self, reference_name: str) -> None:
        running = self._running.pop(reference_name, None)
        if running is not None and running.task is not None:
            running.task.cancel()
            await asyncio.gather(running.task, return_exceptions=True)

    async def _supervise(self, config: AdapterConfig, running: _Running) -> None:
        factory = self.kind(config.component).factory
        assert factory is not None
        delay = BACKOFF_START
        while True:
            try:
                running.runtime = factory(config)
                running.is_waiting = False
                await running.runtime.run()
                log.info("adapter %s stopped by itself; restarting", config.reference_name)
            except Exception as exc:  # supervisor: restart with back-off
                log.exception("adapter %s crashed", config.reference_name)
                running.last_error = f"{type(exc).__name__}: {exc}"
            running.restarts += 1
            running.is_waiting = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)


def _reference_name(name: str) -> str:
    text = name.strip()
    if not text or len(text) > 200:
        raise ValidationError("Reference Name: 1 to 200 characters are required")
    return text
