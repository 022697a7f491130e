"""SqlRuleStore contract: rules, and the schedule of deferred firings with claim semantics."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from carewire.errors import ConflictError
from carewire.rules.conditions import Condition, Group, Mode, Op
from carewire.rules.model import Rule, Trigger
from carewire.rules.store import ScheduledFiring
from carewire.storage import Database
from carewire.storage.rules import SqlRuleStore

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

RULE = Rule(
    name="escalate",
    purpose="Still open: level 2",
    dataset="ESCALATIONS",
    adapter="Data",
    action="Update Record",
    trigger=Trigger(on_create=True, on_update=True, attributes=("state",)),
    conditions=Group(mode=Mode.ALL, items=(Condition(path="state", op=Op.EQUALS, value="Open"),)),
    defer_seconds=120,
    skip_originating_adapter=True,
    settings={"updates": "level=2"},
)


def _firing(delivery_id: int, rule_id: int, seconds: int) -> ScheduledFiring:
    return ScheduledFiring(
        delivery_id=delivery_id,
        rule_id=rule_id,
        due_at=T0 + timedelta(seconds=seconds),
        payload={"dataset": "ESCALATIONS", "record_id": delivery_id, "old": {"state": "New"}},
    )


async def test_insert_all_update_delete(db: Database) -> None:
    store = SqlRuleStore(db)
    assert await store.all() == []
    first = await store.insert(RULE, T0)
    assert first.id is not None
    assert first == replace(RULE, id=first.id)
    second = await store.insert(replace(RULE, name="other", is_active=False), T0)
    assert second.id is not None
    assert second.id > first.id
    assert await store.all() == [first, second]

    changed = replace(first, purpose="changed", is_active=False, settings={"updates": "level=3"})
    await store.update(changed, T0 + timedelta(minutes=1))
    assert await store.all() == [changed, second]
    assert (await store.all())[1].is_active is False

    assert await store.delete(first.id) is True
    assert await store.delete(first.id) is False
    assert await store.all() == [second]


async def test_rule_names_are_unique(db: Database) -> None:
    store = SqlRuleStore(db)
    saved = await store.insert(RULE, T0)
    with pytest.raises(ConflictError, match="a rule named 'escalate' already exists"):
        await store.insert(replace(RULE, purpose="again"), T0)
    other = await store.insert(replace(RULE, name="other"), T0)
    with pytest.raises(ConflictError, match="a rule named 'escalate' already exists"):
        await store.update(replace(other, name="escalate"), T0)
    assert [r.name for r in await store.all()] == ["escalate", "other"]
    assert (await store.all())[0] == saved


async def test_due_firings_come_earliest_first_and_limited(db: Database) -> None:
    store = SqlRuleStore(db)
    rule = await store.insert(RULE, T0)
    assert rule.id is not None
    assert await store.next_due() is None
    assert await store.due(T0 + timedelta(days=1), 10) == []
    for delivery_id, seconds in [(7, 30), (9, 10), (5, 10), (8, 60)]:
        await store.schedule(_firing(delivery_id, rule.id, seconds))

    assert await store.next_due() == T0 + timedelta(seconds=10)
    assert await store.scheduled_ids() == {5, 7, 8, 9}
    assert await store.due(T0 + timedelta(seconds=9), 10) == []
    due = await store.due(T0 + timedelta(seconds=10), 10)
    assert [f.delivery_id for f in due] == [5, 9]
    assert due[0] == _firing(5, rule.id, 10)
    assert due[0].due_at.tzinfo is not None
    assert [f.delivery_id for f in await store.due(T0 + timedelta(seconds=60), 10)] == [5, 9, 7, 8]
    assert [f.delivery_id for f in await store.due(T0 + timedelta(seconds=60), 3)] == [5, 9, 7]


async def test_unschedule_claims_a_firing_exactly_once(db: Database) -> None:
    store = SqlRuleStore(db)
    rule = await store.insert(RULE, T0)
    assert rule.id is not None
    await store.schedule(_firing(1, rule.id, 10))
    await store.schedule(_firing(2, rule.id, 20))
    assert await store.unschedule(1) is True
    assert await store.unschedule(1) is False
    assert await store.unschedule(404) is False
    assert await store.scheduled_ids() == {2}
    assert await store.next_due() == T0 + timedelta(seconds=20)
    assert await store.unschedule(2) is True
    assert await store.next_due() is None
    assert await store.due(T0 + timedelta(days=1), 10) == []


async def test_deleting_a_rule_drops_its_scheduled_firings(db: Database) -> None:
    store = SqlRuleStore(db)
    gone = await store.insert(RULE, T0)
    kept = await store.insert(replace(RULE, name="kept"), T0)
    assert gone.id is not None
    assert kept.id is not None
    await store.schedule(_firing(1, gone.id, 10))
    await store.schedule(_firing(2, kept.id, 20))
    await store.schedule(_firing(3, gone.id, 30))
    assert await store.delete(gone.id) is True
    assert await store.scheduled_ids() == {2}
    assert [f.rule_id for f in await store.due(T0 + timedelta(days=1), 10)] == [kept.id]


async def test_firings_of_rules_and_hastening_them(db: Database) -> None:
    store = SqlRuleStore(db)
    one = await store.insert(RULE, T0)
    two = await store.insert(replace(RULE, name="backup"), T0)
    assert one.id is not None and two.id is not None
    await store.schedule(_firing(1, one.id, 60))
    await store.schedule(_firing(2, two.id, 120))
    await store.schedule(_firing(3, two.id, 5))
    assert await store.scheduled_for([]) == []
    assert [f.delivery_id for f in await store.scheduled_for([two.id])] == [2, 3]
    assert await store.scheduled_for([two.id]) == [_firing(2, two.id, 120), _firing(3, two.id, 5)]

    now = T0 + timedelta(seconds=10)
    assert await store.hasten([2, 3], now) == 1  # 3 is due before now already
    assert [f.delivery_id for f in await store.due(now, 10)] == [3, 2]
    assert await store.next_due() == T0 + timedelta(seconds=5)
    assert await store.hasten([404], now) == 0
