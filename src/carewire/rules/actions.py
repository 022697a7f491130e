"""Rule actions: what adapters contribute, and what an action gets when it runs.

An adapter kind registers :class:`ActionSpec` s (name, settings schema,
handler). When a rule fires, the engine validates nothing further: the
settings were checked when the rule was saved. The handler gets an
:class:`ActionContext` and returns an :class:`ActionOutcome` or raises; an
exception marks the delivery Error with its message and never affects other
rules.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from carewire.datasets.model import Origin, Record, RecordChanged
from carewire.datasets.service import DatasetService
from carewire.errors import CarewireError, NotFoundError
from carewire.rules.model import Rule
from carewire.rules.settings import SettingField


class ActionFailed(CarewireError):
    """An action could not do its work; the message becomes the delivery's status text."""

    code = "action-failed"


class Outcome(enum.StrEnum):
    """How an action finished."""

    DELIVERED = "Delivered"  # done
    PENDING = "Pending"  # handed over; the adapter confirms later


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionOutcome:
    """What an action reports.

    Attributes:
        outcome: Delivered or Pending.
        text: A short note for the delivery's status text.
        has_reached: False when the action ran but reached nobody (an alert whose
            recipients rendered empty, so nobody was notified): its escalations are
            then due at once.
    """

    outcome: Outcome = Outcome.DELIVERED
    text: str = ""
    has_reached: bool = True


class Renderer(Protocol):
    """Renders ``#{...}`` templates against the triggering record."""

    async def __call__(self, text: str) -> str:
        """``text`` with every expression replaced."""

    async def value(self, path: str) -> object:
        """The value of one attribute path (a list for to-many paths)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionContext:
    """Everything an action needs.

    Attributes:
        rule: The rule that fired.
        record: The triggering record as it is now.
        event: The write that triggered the rule.
        settings: The rule's action settings (validated, normalised).
        adapter_settings: The adapter instance's settings.
        adapter_runtime: The running adapter instance's object, if the kind has one.
        origin: Origin to use for writes the action makes (depth already incremented).
        datasets: The dataset service.
        render: Template renderer bound to ``record``.
        delivery_id: The DELIVERIES record tracking this firing.
    """

    rule: Rule
    record: Record
    event: RecordChanged
    settings: Mapping[str, object]
    adapter_settings: Mapping[str, object]
    adapter_runtime: object
    origin: Origin
    datasets: DatasetService
    render: Renderer
    delivery_id: int


ActionHandler = Callable[[ActionContext], Awaitable[ActionOutcome]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionSpec:
    """An action an adapter kind contributes.

    Attributes:
        name: As shown in the Rule Action menu (``Send Alert``).
        component: The adapter kind (``XMPP``).
        fields: The settings schema.
        handler: Runs the action.
        description: One sentence for people.
    """

    name: str
    component: str
    fields: tuple[SettingField, ...]
    handler: ActionHandler
    description: str = ""


class UnknownActionError(NotFoundError):
    """No such action for this adapter kind."""

    code = "unknown-action"


class ActionRegistry:
    """Every action, by (component, name)."""

    def __init__(self) -> None:
        self._actions: dict[tuple[str, str], ActionSpec] = {}

    def register(self, spec: ActionSpec) -> None:
        """Add an action (a second registration under the same name is a bug)."""
        key = (spec.component, spec.name)
        if key in self._actions:
            raise ValueError(f"action {spec.name!r} of {spec.component} registered twice")
        self._actions[key] = spec

    def get(self, component: str, name: str) -> ActionSpec:
        """The action ``name`` of ``component``.

        Raises:
            UnknownActionError: It does not exist.
        """
        spec = self._actions.get((component, name))
        if spec is None:
            known = ", ".join(s.name for s in self.for_component(component)) or "none"
            raise UnknownActionError(
                f"the {component} adapter has no action {name!r} (it has: {known})"
            )
        return spec

    def for_component(self, component: str) -> Sequence[ActionSpec]:
        """The actions of one adapter kind, in registration order."""
        return [s for (c, _), s in self._actions.items() if c == component]
