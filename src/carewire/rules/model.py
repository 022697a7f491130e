"""A rule: when a dataset's record is created or updated and conditions hold, an adapter acts.

Rules are plain data; :func:`rule_to_data` / :func:`rule_from_data` give the
YAML/JSON form used by ``carewire rules export/import`` and the REST API.
Checking a rule against the datasets and actions is
:mod:`carewire.rules.service`'s job.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import cast

from carewire.errors import ValidationError
from carewire.rules.conditions import Group, Mode, Node, from_data, to_data


class DeliveryStatus(enum.StrEnum):
    """The states of a rule firing, as kept in DELIVERIES.status."""

    QUEUED = "Queued"
    PROCESSING = "Processing"
    PENDING = "Pending"
    DELIVERED = "Delivered"
    ERROR = "Error"
    CANCELLED = "Cancelled"  # a deferred firing whose conditions no longer held


@dataclass(frozen=True, slots=True, kw_only=True)
class Trigger:
    """Which writes a rule reacts to.

    Attributes:
        on_create: A record is created.
        on_update: A record is updated.
        attributes: With ``on_update``: only when one of these changed (empty: any change).
    """

    on_create: bool = True
    on_update: bool = False
    attributes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One rule.

    Attributes:
        id: Database id (None before it is saved).
        name: Unique name, used by rule files.
        purpose: What it is for, for people.
        dataset: The dataset whose records trigger it.
        adapter: Reference name of the adapter instance that acts.
        action: The adapter's action (``Send Alert``, ``Update Record``).
        trigger: Create/update events.
        conditions: Trigger conditions (an ALL group).
        defer_seconds: Wait this long, then re-check the conditions before acting.
        skip_originating_adapter: Don't fire for writes made by ``adapter`` itself.
        is_active: Inactive rules never fire.
        settings: The action's settings.
    """

    id: int | None = None
    name: str
    purpose: str = ""
    dataset: str
    adapter: str
    action: str
    trigger: Trigger = field(default_factory=Trigger)
    conditions: Node = field(default_factory=lambda: Group(mode=Mode.ALL, items=()))
    defer_seconds: int = 0
    skip_originating_adapter: bool = False
    is_active: bool = True
    settings: Mapping[str, object] = field(default_factory=dict)


def rule_to_data(rule: Rule) -> dict[str, object]:
    """The YAML/JSON form of a rule (without its id)."""
    return {
        "name": rule.name,
        "purpose": rule.purpose,
        "dataset": rule.dataset,
        "adapter": rule.adapter,
        "action": rule.action,
        "active": rule.is_active,
        "trigger": {
            "create": rule.trigger.on_create,
            "update": rule.trigger.on_update,
            "attributes": list(rule.trigger.attributes),
        },
        "conditions": to_data(rule.conditions),
        "defer_seconds": rule.defer_seconds,
        "skip_originating_adapter": rule.skip_originating_adapter,
        "settings": dict(rule.settings),
    }


def rule_from_data(data: object, *, rule_id: int | None = None) -> Rule:
    """A rule from its YAML/JSON form.

    Raises:
        ValidationError: A field is missing or has the wrong type.
    """
    if not isinstance(data, Mapping):
        raise ValidationError("a rule must be a mapping of its fields")
    d = cast(Mapping[str, object], data)
    where = f"rule {d.get('name')!r}" if d.get("name") else "rule"
    trigger = d.get("trigger") or {}
    if not isinstance(trigger, Mapping):
        raise ValidationError(f"{where}: trigger must be a mapping (create, update, attributes)")
    settings = d.get("settings") or {}
    if not isinstance(settings, Mapping):
        raise ValidationError(f"{where}: settings must be a mapping")
    attributes = trigger.get("attributes") or []
    if not isinstance(attributes, list | tuple) or not all(isinstance(a, str) for a in attributes):
        raise ValidationError(f"{where}: trigger.attributes must be a list of names")
    return Rule(
        id=rule_id,
        name=_text(d, "name", where),
        purpose=str(d.get("purpose") or ""),
        dataset=_text(d, "dataset", where),
        adapter=_text(d, "adapter", where),
        action=str(d.get("action") or ""),
        trigger=Trigger(
            on_create=_bool(trigger, "create", True, where),
            on_update=_bool(trigger, "update", False, where),
            attributes=tuple(attributes),
        ),
        conditions=from_data(d.get("conditions")),
        defer_seconds=_int(d, "defer_seconds", where),
        skip_originating_adapter=_bool(d, "skip_originating_adapter", False, where),
        is_active=_bool(d, "active", True, where),
        settings=_plain(settings),
    )


def _plain(settings: Mapping[str, object]) -> dict[str, object]:
    """Settings as plain JSON values (YAML reads an unquoted 2026-01-31 as a date)."""

    def iso(value: object) -> str:
        if isinstance(value, date):
            return value.isoformat()
        raise TypeError(f"{type(value).__name__} is not a setting value")

    try:
        plain: dict[str, object] = json.loads(json.dumps(dict(settings), default=iso))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"settings: {exc}") from None
    return plain


def _text(d: Mapping[str, object], key: str, where: str) -> str:
    value = d.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{where}: {key} is required")
    return value.strip()


def _bool(d: Mapping[str, object], key: str, default: bool, where: str) -> bool:
    value = d.get(key, default)
    if not isinstance(value, bool):
        raise ValidationError(f"{where}: {key} must be true or false")
    return value


def _int(d: Mapping[str, object], key: str, where: str) -> int:
    value = d.get(key, 0) or 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{where}: {key} must be a whole number of seconds, 0 or more")
    return value
