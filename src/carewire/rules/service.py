"""Saving rules: validation against datasets, adapters and action schemas; rules as files.

A rule is checked completely when it is saved, never first when it fires:
its dataset and adapter exist, the action belongs to the adapter's kind,
trigger attributes exist, every condition path and every ``#{...}`` in the
settings resolves on the rule's dataset, condition values have the right
types, and the settings satisfy the action's schema (with the console's
"The information provided is either invalid or incomplete." messages).

:class:`RuleService` keeps every rule in memory, compiled per dataset for
the engine, and rebuilds that cache whenever rules or definitions change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from carewire.clock import Clock
from carewire.datasets.model import Dataset
from carewire.datasets.paths import AttributePath, parse_path
from carewire.datasets.registry import Registry
from carewire.datasets.templates import parse_template
from carewire.datasets.values import RecordError, coerce
from carewire.errors import NotFoundError, ValidationError
from carewire.rules.actions import ActionRegistry, ActionSpec
from carewire.rules.conditions import CHANGE_OPS, Condition, Node, Op, map_values, paths_of
from carewire.rules.model import Rule, rule_from_data, rule_to_data
from carewire.rules.settings import FieldKind, SettingField, SettingsError, validate_settings
from carewire.rules.store import RuleStore

log = logging.getLogger(__name__)


class AdapterDirectory(Protocol):
    """Which adapter instances exist (implemented by the adapter manager)."""

    def component_of(self, reference_name: str) -> str | None:
        """The kind of the instance called ``reference_name``, or None."""


class RuleError(ValidationError):
    """A rule is not valid; ``problems`` lists why."""

    code = "invalid-rule"

    def __init__(self, name: str, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(f"rule {name!r}: " + "; ".join(self.problems))


class RuleNotFoundError(NotFoundError):
    """No rule with this id or name."""

    code = "rule-not-found"


@dataclass(frozen=True, slots=True, kw_only=True)
class CompiledRule:
    """A valid rule, ready for the engine.

    Attributes:
        rule: The rule.
        spec: Its action.
        conditions: Conditions with values of the attributes' types.
        paths: Every path the conditions read.
    """

    rule: Rule
    spec: ActionSpec
    conditions: Node
    paths: tuple[AttributePath, ...]


class RuleService:
    """Create, change, delete, export and import rules; compiled rules for the engine."""

    def __init__(
        self,
        store: RuleStore,
        registry: Registry,
        actions: ActionRegistry,
        adapters: AdapterDirectory,
        clock: Clock,
    ) -> None:
        self._store = store
        self.registry = registry
        self.actions = actions
        self._adapters = adapters
        self._clock = clock
        self._rules: dict[int, Rule] = {}
        self._compiled: dict[str, list[CompiledRule]] | None = None
        self._paths: dict[str, tuple[AttributePath, ...]] = {}
        self._signature: tuple[object, ...] = ()
        registry.on_change(self._invalidate)

    async def load(self) -> None:
        """Read every saved rule."""
        self._signature = await self._store.signature()
        self._rules = {r.id: r for r in await self._store.all() if r.id is not None}
        self._invalidate()

    async def refresh(self) -> bool:
        """Reload if another process (the CLI) changed the rules; True if it did."""
        if await self._store.signature() == self._signature:
            return False
        await self.load()
        log.info("rules reloaded: changed outside this process")
        return True

    def _invalidate(self) -> None:
        self._compiled = None

    def list_rules(self, dataset: str | None = None) -> list[Rule]:
        """Rules (of one dataset), by id."""
        return [r for r in self._rules.values() if dataset is None or r.dataset == dataset]

    def get(self, rule_id: int) -> Rule:
        """A rule by id.

        Raises:
            RuleNotFoundError: None has that id.
        """
        rule = self._rules.get(rule_id)
        if rule is None:
            raise RuleNotFoundError(f"no rule with id {rule_id}")
        return rule

    def find(self, name: str) -> Rule | None:
        """A rule by name."""
        return next((r for r in self._rules.values() if r.name == name), None)

    def compiled_for(self, dataset: str) -> Sequence[CompiledRule]:
        """The dataset's active rules that still compile (others are logged and skipped)."""
        if self._compiled is None:
            compiled: dict[str, list[CompiledRule]] = {}
            for rule in self._rules.values():
                if not rule.is_active:
                    continue
                try:
                    compiled.setdefault(rule.dataset, []).append(self.compile(rule))
                except ValidationError as exc:
                    log.error("rule %s no longer compiles and is skipped: %s", rule.name, exc)
            self._compiled = compiled
            self._paths = {
                ds: tuple({p.text: p for c in items for p in c.paths}.values())
                for ds, items in compiled.items()
            }
        return self._compiled.get(dataset, ())

    def paths_for(self, dataset: str) -> tuple[AttributePath, ...]:
        """Every path the dataset's active rules read (resolved once per write)."""
        self.compiled_for(dataset)
        return self._paths.get(dataset, ())

    def compile(self, rule: Rule) -> CompiledRule:
        """Check ``rule`` completely and prepare it for the engine.

        Raises:
            SettingsError: The action is missing or its settings are incomplete/invalid.
            RuleError: Anything else is wrong (listing every problem).
        """
        if not rule.action:
            raise SettingsError(["Required: Rule Action"])
        problems: list[str] = []
        ds = self._dataset(rule, problems)
        spec = self._action(rule, problems)
        if ds is None or spec is None:
            raise RuleError(rule.name, problems)
        problems += _trigger_problems(rule, ds)
        conditions, paths = self._conditions(rule, ds, problems)
        if problems:
            raise RuleError(rule.name, problems)
        self.check_settings(spec.fields, rule.settings, ds.name)
        return CompiledRule(rule=rule, spec=spec, conditions=conditions, paths=paths)

    def check_settings(
        self, fields: Sequence[SettingField], settings: Mapping[str, object], dataset: str
    ) -> dict[str, object]:
        """Validate settings whose expressions refer to ``dataset``."""

        def check(f: SettingField, text: str) -> None:
            if f.kind is FieldKind.EXPRESSION:
                parse_path(self.registry, dataset, text)
            elif f.kind is FieldKind.DATASET and text not in self.registry:
                raise ValidationError(f"unknown dataset {text!r}")
            else:
                parse_template(self.registry, dataset, text)

        return validate_settings(fields, settings, check=check)

    def _dataset(self, rule: Rule, problems: list[str]) -> Dataset | None:
        if rule.dataset not in self.registry:
            problems.append(f"Dataset: unknown dataset {rule.dataset!r}")
            return None
        return self.registry.get(rule.dataset)

    def _action(self, rule: Rule, problems: list[str]) -> ActionSpec | None:
        component = self._adapters.component_of(rule.adapter)
        if component is None:
            problems.append(f"Adapter: no adapter is named {rule.adapter!r}")
            return None
        try:
            return self.actions.get(component, rule.action)
        except NotFoundError as exc:
            problems.append(f"Rule Action: {exc}")
            return None

    def _conditions(
        self, rule: Rule, ds: Dataset, problems: list[str]
    ) -> tuple[Node, tuple[AttributePath, ...]]:
        parsed: dict[str, AttributePath] = {}
        for text in sorted(paths_of(rule.conditions)):
            try:
                parsed[text] = parse_path(self.registry, ds.name, text)
            except ValidationError as exc:
                problems.append(f"Trigger Conditions: {exc}")

        def typed(cond: Condition) -> object:
            path = parsed.get(cond.path)
            if path is None:
                return cond.value
            if cond.op in CHANGE_OPS and not path.is_direct:
                problems.append(
                    f"Trigger Conditions: {cond.op} needs an attribute of {ds.name} "
                    f"itself, not the path {cond.path!r}"
                )
            return _typed_value(ds.name, path, cond, problems)

        conditions = map_values(rule.conditions, typed)
        return conditions, tuple(parsed.values())

    # --- writes -------------------------------------------------------------

    async def create(self, rule: Rule) -> Rule:
        """Validate and save a new rule."""
        self.compile(rule)
        saved = await self._store.insert(replace(rule, id=None), self._clock.now())
        assert saved.id is not None
        self._rules[saved.id] = saved
        self._signature = await self._store.signature()
        self._invalidate()
        log.info("rule %s created on %s", saved.name, saved.dataset)
        return saved

    async def update(self, rule_id: int, rule: Rule) -> Rule:
        """Validate and save changes to a rule."""
        self.get(rule_id)
        new = replace(rule, id=rule_id)
        self.compile(new)
        await self._store.update(new, self._clock.now())
        self._rules[rule_id] = new
        self._signature = await self._store.signature()
        self._invalidate()
        log.info("rule %s updated", new.name)
        return new

    async def set_active(self, rule_id: int, active: bool) -> Rule:
        """Activate or deactivate a rule."""
        return await self.update(rule_id, replace(self.get(rule_id), is_active=active))

    async def delete(self, rule_id: int) -> None:
        """Delete a rule (its deferred firings are dropped with it)."""
        rule = self.get(rule_id)
        await self._store.delete(rule_id)
        del self._rules[rule_id]
        self._signature = await self._store.signature()
        self._invalidate()
        log.info("rule %s deleted", rule.name)

    def export(self, dataset: str | None = None) -> list[dict[str, object]]:
        """Rules as data, ordered by dataset and name (for a YAML file under version control)."""
        rules = sorted(self.list_rules(dataset), key=lambda r: (r.dataset, r.name))
        return [rule_to_data(r) for r in rules]

    async def import_rules(self, data: Iterable[object]) -> tuple[int, int]:
        """Create or update (by name) every rule in ``data``; all are checked before any is saved.

        Returns:
            (created, updated).

        Raises:
            RuleError: Listing the problems of every invalid rule; nothing was saved.
        """
        rules, problems = [], []
        for i, item in enumerate(data, 1):
            try:
                rule = rule_from_data(item)
                self.compile(rule)
                rules.append(rule)
            except ValidationError as exc:
                problems.append(f"#{i}: {exc}")
        names = [r.name for r in rules]
        problems += [f"the name {n!r} appears twice" for n in set(names) if names.count(n) > 1]
        if problems:
            raise RuleError("import", problems)
        created = updated = 0
        for rule in rules:
            existing = self.find(rule.name)
            if existing is None or existing.id is None:
                await self.create(rule)
                created += 1
            else:
                await self.update(existing.id, rule)
                updated += 1
        return created, updated


def _trigger_problems(rule: Rule, ds: Dataset) -> list[str]:
    problems = []
    if not rule.trigger.on_create and not rule.trigger.on_update:
        problems.append("Trigger Events: choose Create Event, Update Event or both")
    for name in rule.trigger.attributes:
        if name not in ds.field_names:
            problems.append(f"Trigger Events: {ds.name} has no attribute or link {name!r}")
    return problems


def _typed_value(dataset: str, path: AttributePath, cond: Condition, problems: list[str]) -> object:
    if cond.value is None or path.attribute is None or cond.op in (Op.CONTAINS,):
        return cond.value
    try:
        if cond.op is Op.IN and isinstance(cond.value, list | tuple):
            return [coerce(dataset, path.attribute, v) for v in cond.value]
        return coerce(dataset, path.attribute, cond.value)
    except RecordError as exc:
        problems.append(f"Trigger Conditions: {cond.path} {cond.op}: {exc}")
        return cond.value
