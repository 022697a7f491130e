"""Rules and the schedule of deferred firings (tables ``rules`` and ``rule_schedule``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from carewire.errors import ConflictError
from carewire.rules.model import Rule, rule_from_data, rule_to_data
from carewire.rules.store import ScheduledFiring
from carewire.storage.database import Database
from carewire.storage.tables import rule_schedule, rules


class SqlRuleStore:
    """Rules and scheduled firings on SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def all(self) -> list[Rule]:
        """Every rule, by id."""
        async with self._db.read("load_rules") as conn:
            rows = (await conn.execute(select(rules).order_by(rules.c.id))).all()
        return [rule_from_data(json.loads(r.definition), rule_id=int(r.id)) for r in rows]

    async def insert(self, rule: Rule, now: datetime) -> Rule:
        """Save a new rule; returns it with its id."""
        try:
            async with self._db.transaction("insert_rule") as txn:
                result = await txn.conn.execute(
                    insert(rules).values(
                        name=rule.name,
                        dataset=rule.dataset,
                        definition=json.dumps(rule_to_data(rule), sort_keys=True),
                        is_active=rule.is_active,
                        created_at=now,
                        updated_at=now,
                    )
                )
                rule_id = _pk(result.inserted_primary_key)
        except IntegrityError:
            raise ConflictError(f"a rule named {rule.name!r} already exists") from None
        return rule_from_data(rule_to_data(rule), rule_id=rule_id)

    async def update(self, rule: Rule, now: datetime) -> None:
        """Save changes to a rule (by id)."""
        try:
            async with self._db.transaction("update_rule") as txn:
                await txn.conn.execute(
                    update(rules)
                    .where(rules.c.id == rule.id)
                    .values(
                        name=rule.name,
                        dataset=rule.dataset,
                        definition=json.dumps(rule_to_data(rule), sort_keys=True),
                        is_active=rule.is_active,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            raise ConflictError(f"a rule named {rule.name!r} already exists") from None

    async def delete(self, rule_id: int) -> bool:
        """Delete a rule and its scheduled firings."""
        async with self._db.transaction("delete_rule") as txn:
            await txn.conn.execute(delete(rule_schedule).where(rule_schedule.c.rule_id == rule_id))
            result = await txn.conn.execute(delete(rules).where(rules.c.id == rule_id))
        return bool(result.rowcount)

    async def signature(self) -> tuple[object, ...]:
        """(count, highest id, latest change) of the rules table."""
        stmt = select(func.count(), func.max(rules.c.id), func.max(rules.c.updated_at))
        async with self._db.read("rules_signature") as conn:
            row = (await conn.execute(stmt)).one()
        return (int(row[0]), row[1], row[2])

    async def schedule(self, firing: ScheduledFiring) -> None:
        """Remember a deferred firing."""
        async with self._db.transaction("schedule_firing") as txn:
            await txn.conn.execute(
                insert(rule_schedule).values(
                    delivery_id=firing.delivery_id,
                    rule_id=firing.rule_id,
                    due_at=firing.due_at,
                    payload=json.dumps(firing.payload, sort_keys=True, default=str),
                )
            )

    async def due(self, now: datetime, limit: int) -> list[ScheduledFiring]:
        """Firings due at ``now``, earliest first."""
        stmt = (
            select(rule_schedule)
            .where(rule_schedule.c.due_at <= now)
            .order_by(rule_schedule.c.due_at, rule_schedule.c.delivery_id)
            .limit(limit)
        )
        async with self._db.read("due_firings") as conn:
            rows = (await conn.execute(stmt)).all()
        return [_firing(r) for r in rows]

    async def scheduled_for(self, rule_ids: Sequence[int]) -> list[ScheduledFiring]:
        """The scheduled firings of these rules, by delivery id."""
        stmt = (
            select(rule_schedule)
            .where(rule_schedule.c.rule_id.in_(list(rule_ids)))
            .order_by(rule_schedule.c.delivery_id)
        )
        async with self._db.read("scheduled_for_rules") as conn:
            rows = (await conn.execute(stmt)).all()
        return [_firing(r) for r in rows]

    async def hasten(self, delivery_ids: Sequence[int], due_at: datetime) -> int:
        """Make these firings due at ``due_at`` (those due later); how many were moved."""
        async with self._db.transaction("hasten_firings") as txn:
            result = await txn.conn.execute(
                update(rule_schedule)
                .where(rule_schedule.c.delivery_id.in_(list(delivery_ids)))
                .where(rule_schedule.c.due_at > due_at)
                .values(due_at=due_at)
            )
        return int(result.rowcount)

    async def next_due(self) -> datetime | None:
        """When the earliest firing is due."""
        async with self._db.read("next_due_firing") as conn:
            value: datetime | None = (
                await conn.execute(select(func.min(rule_schedule.c.due_at)))
            ).scalar_one()
        return value

    async def unschedule(self, delivery_id: int) -> bool:
        """Claim and forget a firing; False if it was already gone."""
        async with self._db.transaction("unschedule_firing") as txn:
            result = await txn.conn.execute(
                delete(rule_schedule).where(rule_schedule.c.delivery_id == delivery_id)
            )
        return bool(result.rowcount)

    async def scheduled_ids(self) -> set[int]:
        """Delivery ids of every scheduled firing."""
        async with self._db.read("scheduled_ids") as conn:
            return {
                int(i) for i in (await conn.execute(select(rule_schedule.c.delivery_id))).scalars()
            }


def _firing(row: Row[Any]) -> ScheduledFiring:
    return ScheduledFiring(
        delivery_id=int(row.delivery_id),
        rule_id=int(row.rule_id),
        due_at=row.due_at,
        payload=json.loads(row.payload),
    )


def _pk(key: object) -> int:
    assert key is not None
    return int(key[0])  # type: ignore[index]
