"""The rules engine end to end on a real database: triggers, conditions, actions, deferral.

The scenario of the data platform, on the ward of :mod:`tests.world`: creating
a nurse-call record fires a rule whose DataUpdate action writes an escalation
record, whose creation fires a deferred rule that re-checks its condition when
the delay ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from carewire.assembly import Assembly, Options, assemble
from carewire.clock import FakeClock
from carewire.datasets.model import Attribute, AttrType, Origin
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.rules.conditions import Condition, Group, Mode, Op
from carewire.rules.engine import EngineConfig
from carewire.rules.model import Rule, Trigger
from tests.templates import prefill
from tests.world import (
    CALLS,
    CHAT,
    UPDATES,
    add_adapters,
    create_rules,
    define_ward,
    escalation_rules,
)

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
async def platform(db_url: str) -> AsyncIterator[Assembly]:
    """A platform with the world's datasets, empty, and its two adapters."""
    clock = FakeClock(START)
    p = await assemble(
        Options(url=await prefill(db_url), clock=clock, engine=EngineConfig(max_depth=4))
    )
    await define_ward(p)
    await add_adapters(p)
    try:
        yield p
    finally:
        await p.close()


def _clock(p: Assembly) -> FakeClock:
    clock = p.datasets.clock
    assert isinstance(clock, FakeClock)
    return clock


async def _settle(p: Assembly) -> None:
    """Process every queued event, including those the actions' writes produce."""
    while not p.engine._queue.empty():
        await p.engine.process(p.engine._queue.get_nowait())
        p.engine._queue.task_done()


async def _deliveries(p: Assembly, rule: str) -> list[dict[str, object]]:
    page = await p.datasets.query(
        "DELIVERIES", Query(filters=(Filter(field="rule", op=FilterOp.EQ, value=rule),))
    )
    return [dict(r.values) for r in page.records]


async def _history(p: Assembly, delivery: int) -> list[object]:
    page = await p.datasets.query(
        "DELIVERY_HISTORY",
        Query(filters=(Filter(field="delivery", op=FilterOp.EQ, value=delivery),)),
    )
    return [r.get("status") for r in page.records]


async def test_scenario_create_fires_dataupdate_then_deferred_escalation(p: Assembly) -> None:
    await create_rules(p, *escalation_rules())
    await p.datasets.create(CALLS, {"call_id": "c1", "priority": "High"})
    await _settle(p)

    [opened] = await _deliveries(p, "open-escalation")
    assert opened["status"] == "Delivered"
    assert opened["interface_name"] == "Data"
    esc = await p.datasets.query("ESCALATIONS", Query())
    assert [r.get("state") for r in esc.records] == ["Open"]
    [deferred] = await _deliveries(p, "escalate")
    assert deferred["status"] == "Queued"

    assert await p.engine.run_due() == 0  # not yet
    _clock(p).advance(121)
    assert await p.engine.run_due() == 1
    await _settle(p)
    esc = await p.datasets.query("ESCALATIONS", Query())
    assert [(r.get("state"), r.get("level")) for r in esc.records] == [("Escalated c1", 2)]
    [done] = await _deliveries(p, "escalate")
    assert done["status"] == "Delivered"
    assert done["processing_time"] == 121_000
    page = await p.datasets.query(
        "DELIVERIES", Query(filters=(Filter(field="rule", op=FilterOp.EQ, value="escalate"),))
    )
    assert await _history(p, page.records[0].id) == ["Queued", "Processing", "Delivered"]


async def test_deferred_firing_is_cancelled_when_the_condition_no_longer_holds(
    p: Assembly,
) -> None:
    await create_rules(p, *escalation_rules())
    await p.datasets.create(CALLS, {"call_id": "c2", "priority": "High"})
    await _settle(p)
    esc = (await p.datasets.query("ESCALATIONS", Query())).records[0]
    await p.datasets.update("ESCALATIONS", esc.id, {"state": "Accepted"})
    await _settle(p)
    _clock(p).advance(121)
    await p.engine.run_due()
    [cancelled] = await _deliveries(p, "escalate")
    assert cancelled["status"] == "Cancelled"
    assert "no longer held" in str(cancelled["status_text"])
    assert (await p.datasets.get("ESCALATIONS", esc.id)).get("level") == 1


async def test_condition_that_does_not_match_creates_no_delivery(p: Assembly) -> None:
    await create_rules(p, *escalation_rules())
    await p.datasets.create(CALLS, {"call_id": "c3", "priority": "Low"})
    await _settle(p)
    assert await _deliveries(p, "open-escalation") == []


async def test_deferred_firing_survives_a_restart(db_url: str) -> None:
    clock = FakeClock(START)
    p = await assemble(Options(url=db_url, clock=clock))
    await define_ward(p)
    await add_adapters(p)
    await p.rules.create(
        Rule(
            name="escalate",
            dataset="ESCALATIONS",
            adapter=UPDATES,
            action="Update Record",
            defer_seconds=60,
            settings={"updates": "level=2"},
        )
    )
    rec = await p.datasets.create("ESCALATIONS", {"call_id": "x", "state": "Open", "level": 1})
    await _settle(p)
    await p.close()

    clock.advance(61)
    p2 = await assemble(Options(url=db_url, clock=clock))
    try:
        assert await p2.engine.recover() == 0  # the scheduled firing is not "interrupted"
        assert await p2.engine.run_due() == 1
        await _settle(p2)
        assert (await p2.datasets.get("ESCALATIONS", rec.id)).get("level") == 2
        [done] = await _deliveries(p2, "escalate")
        assert done["status"] == "Delivered"
    finally:
        await p2.close()


async def test_a_cycle_of_updates_stops_with_an_error_delivery(p: Assembly) -> None:
    await p.rules.create(
        Rule(
            name="loop",
            dataset=CALLS,
            adapter=UPDATES,
            action="Update Record",
            trigger=Trigger(on_create=True, on_update=True, attributes=("note",)),
            settings={"updates": "note=#{note}+"},
        )
    )
    await p.datasets.create(CALLS, {"call_id": "c4", "note": ""})
    await _settle(p)
    statuses = [d["status"] for d in await _deliveries(p, "loop")]
    assert statuses[:4] == ["Delivered"] * 4
    assert statuses[-1] == "Error"
    assert len(statuses) == 5
    errors = [d for d in await _deliveries(p, "loop") if d["status"] == "Error"]
    assert "more than the limit of 4" in str(errors[0]["status_text"])


async def test_a_failing_action_marks_error_and_other_rules_still_run(p: Assembly) -> None:
    await p.rules.create(
        Rule(
            name="alert",
            dataset=CALLS,
            adapter=CHAT,
            action="Send Alert",
            settings={"recipients": "nurse1", "subject": "Call", "message": "Room", "ttl": 10},
        )
    )
    await p.rules.create(
        Rule(
            name="mark",
            dataset=CALLS,
            adapter=UPDATES,
            action="Update Record",
            settings={"updates": "status=Seen"},
        )
    )
    rec = await p.datasets.create(CALLS, {"call_id": "c5"})
    await _settle(p)
    [alert] = await _deliveries(p, "alert")
    assert alert["status"] == "Error"
    assert "no XMPP server runs in this process" in str(alert["status_text"])
    [mark] = await _deliveries(p, "mark")
    assert mark["status"] == "Delivered"
    assert (await p.datasets.get(CALLS, rec.id)).get("status") == "Seen"


async def test_disabled_adapter_and_originating_adapter_are_skipped(p: Assembly) -> None:
    await p.rules.create(
        Rule(
            name="echo",
            dataset=CALLS,
            adapter=UPDATES,
            action="Update Record",
            skip_originating_adapter=True,
            settings={"updates": "status=Echo"},
        )
    )
    await p.datasets.create(CALLS, {"call_id": "a"}, origin=Origin(adapter=UPDATES))
    await _settle(p)
    assert await _deliveries(p, "echo") == []
    await p.adapters.disable(UPDATES)
    await p.datasets.create(CALLS, {"call_id": "b"})
    await _settle(p)
    assert await _deliveries(p, "echo") == []
    await p.adapters.enable(UPDATES)
    await p.datasets.create(CALLS, {"call_id": "c"})
    await _settle(p)
    assert [d["status"] for d in await _deliveries(p, "echo")] == ["Delivered"]


async def test_update_trigger_only_for_named_attributes(p: Assembly) -> None:
    await p.rules.create(
        Rule(
            name="on-status",
            dataset=CALLS,
            adapter=UPDATES,
            action="Update Record",
            trigger=Trigger(on_create=False, on_update=True, attributes=("status",)),
            conditions=Group(
                mode=Mode.ALL,
                items=(Condition(path="status", op=Op.CHANGED_TO, value="Accepted"),),
            ),
            settings={"updates": "note=accepted"},
        )
    )
    rec = await p.datasets.create(CALLS, {"call_id": "d"})
    await p.datasets.update(CALLS, rec.id, {"priority": "High"})
    await p.datasets.update(CALLS, rec.id, {"status": "Open"})
    await _settle(p)
    assert await _deliveries(p, "on-status") == []
    await p.datasets.update(CALLS, rec.id, {"status": "Accepted"})
    await _settle(p)
    assert [d["status"] for d in await _deliveries(p, "on-status")] == ["Delivered"]
    assert (await p.datasets.get(CALLS, rec.id)).get("note") == "accepted"


# The fixture is named "platform"; tests take it as "p" for brevity.
@pytest.fixture
def p(platform: Assembly) -> Assembly:
    """Alias of :func:`platform`."""
    return platform


async def test_deferred_recheck_compares_dates_with_their_types(p: Assembly) -> None:
    await p.registry.add_attribute(CALLS, Attribute(name="alarm_time", type=AttrType.DATETIME))
    first = datetime(2026, 3, 1, 7, 55, tzinfo=UTC)
    await p.rules.create(
        Rule(
            name="moved",
            dataset=CALLS,
            adapter=UPDATES,
            action="Update Record",
            trigger=Trigger(on_create=False, on_update=True),
            defer_seconds=30,
            conditions=Group(
                mode=Mode.ALL,
                items=(Condition(path="alarm_time", op=Op.CHANGED_FROM, value=first.isoformat()),),
            ),
            settings={"updates": "status=Moved at #{alarm_time.as_time}"},
        )
    )
    rec = await p.datasets.create(CALLS, {"call_id": "t", "alarm_time": first})
    await p.datasets.update(CALLS, rec.id, {"alarm_time": datetime(2026, 3, 1, 8, 5, tzinfo=UTC)})
    await _settle(p)
    _clock(p).advance(31)
    assert await p.engine.run_due() == 1
    await _settle(p)
    [done] = await _deliveries(p, "moved")
    assert done["status"] == "Delivered", done
    assert (await p.datasets.get(CALLS, rec.id)).get("status") == "Moved at 08:05"


async def test_writes_to_datasets_no_rule_watches_are_not_queued(p: Assembly) -> None:
    """The engine lets such events go at once; a dataset with an active rule is queued."""
    await _settle(p)
    await p.datasets.create("IDENTITIES", {"name": "nobody@x"})
    assert p.engine.queue_depth == 0
    await create_rules(p, *escalation_rules())
    await _settle(p)
    await p.datasets.create(CALLS, {"call_id": "c9", "priority": "Low"})
    assert p.engine.queue_depth == 1
    await _settle(p)
