"""What the rules engine needs from storage, as protocols (see :mod:`carewire.storage.rules`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from carewire.rules.model import Rule


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduledFiring:
    """A deferred firing waiting for its time.

    Attributes:
        delivery_id: The DELIVERIES record tracking it.
        rule_id: The rule.
        due_at: When to re-check and act.
        payload: The triggering change (dataset, record id, kind, old values, origin).
    """

    delivery_id: int
    rule_id: int
    due_at: datetime
    payload: Mapping[str, object]


class RuleStore(Protocol):
    """Saved rules and the schedule of deferred firings."""

    async def all(self) -> list[Rule]:
        """Every rule."""

    async def insert(self, rule: Rule, now: datetime) -> Rule:
        """Save a new rule; returns it with its id.

        Raises:
            ConflictError: The name is taken.
        """

    async def update(self, rule: Rule, now: datetime) -> None:
        """Save changes to a rule (by id)."""

    async def delete(self, rule_id: int) -> bool:
        """Delete a rule and its scheduled firings; False if it did not exist."""

    async def signature(self) -> tuple[object, ...]:
        """Changes whenever a rule is added, changed or deleted (by any process)."""

    async def schedule(self, firing: ScheduledFiring) -> None:
        """Remember a deferred firing."""

    async def due(self, now: datetime, limit: int) -> list[ScheduledFiring]:
        """Firings due at ``now``, earliest first."""

    async def next_due(self) -> datetime | None:
        """When the earliest firing is due."""

    async def unschedule(self, delivery_id: int) -> bool:
        """Claim and forget a firing; False if it was already gone (claimed elsewhere)."""

    async def scheduled_ids(self) -> set[int]:
        """Delivery ids of every scheduled firing."""

    async def scheduled_for(self, rule_ids: Sequence[int]) -> list[ScheduledFiring]:
        """The scheduled firings of these rules."""

    async def hasten(self, delivery_ids: Sequence[int], due_at: datetime) -> int:
        """Make these firings due at ``due_at`` (if later); how many were moved."""


class StoredRuleUsage:
    """Which saved rules use an adapter, read from the store (so other processes' rules count).

    Implements :class:`carewire.adapters.manager.RuleUsage`; renaming or
    removing an adapter is rare, so reading every rule then is cheap enough.
    """

    def __init__(self, store: RuleStore) -> None:
        self._store = store

    async def rules_using(self, adapter: str) -> list[str]:
        """Names of the rules whose adapter is ``adapter``, in id order."""
        return [rule.name for rule in await self._store.all() if rule.adapter == adapter]
