"""The DataUpdate actions driven by real rules and the engine, checked in DELIVERIES.

The datasets of :mod:`tests.world`, empty: WARDS ←n:1— CALLS —m:n→ TEAMS. A
rule on CALLS updates the call itself, its ward (a to-one link) or its teams
(to-many); a rule on WARDS updates every call of the ward (the reverse, to-many
side of CALLS.room); Create Record rules write ESCALATIONS and CALL_LOG.
"""

from __future__ import annotations

import pytest

from carewire.assembly import Assembly
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.rules.conditions import Condition, Group, Mode, Op
from carewire.rules.model import Rule, Trigger
from tests.world import UPDATES, add_adapters, define_ward


@pytest.fixture
async def p(platform: Assembly) -> Assembly:
    """The platform with the world's datasets, empty, and its enabled adapters."""
    await define_ward(platform)
    await add_adapters(platform)
    return platform


async def _settle(p: Assembly) -> None:
    """Process every queued event, including those the actions' writes produce."""
    while not p.engine._queue.empty():
        await p.engine.process(p.engine._queue.get_nowait())
        p.engine._queue.task_done()


async def _deliveries(p: Assembly, rule: str) -> list[tuple[object, object]]:
    page = await p.datasets.query(
        "DELIVERIES", Query(filters=(Filter(field="rule", op=FilterOp.EQ, value=rule),))
    )
    return [(r.get("status"), r.get("status_text")) for r in page.records]


async def _rule(p: Assembly, name: str, dataset: str, action: str, **kw: object) -> None:
    await p.rules.create(
        Rule(name=name, dataset=dataset, adapter=UPDATES, action=action, **kw)  # type: ignore[arg-type]
    )


async def _values(p: Assembly, dataset: str, field: str) -> list[object]:
    return [r.get(field) for r in (await p.datasets.query(dataset, Query())).records]


# --- Update Record -----------------------------------------------------------


async def test_update_the_triggering_record_and_its_to_one_link(p: Assembly) -> None:
    ward = await p.datasets.create("WARDS", {"name": "4B", "status": "Open"})
    other = await p.datasets.create("WARDS", {"name": "5C", "status": "Open"})
    await _rule(
        p,
        "mark",
        "CALLS",
        "Update Record",
        settings={
            "updates": "status=Seen #{call_id} in #{room.name}\n"
            "level=#{level}\n"
            "room.status=Busy (#{priority.upcase})"
        },
    )
    call = await p.datasets.create(
        "CALLS", {"call_id": "c1", "priority": "high", "level": 3, "room": ward.id}
    )
    await _settle(p)

    updated = await p.datasets.get("CALLS", call.id)
    assert (updated.get("status"), updated.get("level")) == ("Seen c1 in 4B", 3)
    assert (await p.datasets.get("WARDS", ward.id)).get("status") == "Busy (HIGH)"
    assert (await p.datasets.get("WARDS", other.id)).get("status") == "Open"
    assert await _deliveries(p, "mark") == [
        ("Delivered", f"updated CALLS/{call.id}, WARDS/{ward.id}")
    ]

    # A call without a ward: only the call itself is updated.
    lone = await p.datasets.create("CALLS", {"call_id": "c2", "priority": "low", "level": 1})
    await _settle(p)
    assert (await p.datasets.get("CALLS", lone.id)).get("status") == "Seen c2 in "
    assert (await _deliveries(p, "mark"))[1] == ("Delivered", f"updated CALLS/{lone.id}")


async def test_update_every_record_across_to_many_links(p: Assembly) -> None:
    ward = await p.datasets.create("WARDS", {"name": "4B", "status": "Open"})
    elsewhere = await p.datasets.create("WARDS", {"name": "5C", "status": "Open"})
    calls = [
        await p.datasets.create("CALLS", {"call_id": f"c{i}", "room": room.id, "status": "New"})
        for i, room in enumerate([ward, ward, elsewhere])
    ]
    await _rule(
        p,
        "close-calls",
        "WARDS",
        "Update Record",
        trigger=Trigger(on_create=False, on_update=True, attributes=("status",)),
        conditions=Group(
            mode=Mode.ALL, items=(Condition(path="status", op=Op.CHANGED_TO, value="Closed"),)
        ),
        settings={"updates": "calls.status=Closed with #{name}"},
    )
    await p.datasets.update("WARDS", ward.id, {"status": "Closed"})
    await _settle(p)
    statuses = [(await p.datasets.get("CALLS", c.id)).get("status") for c in calls]
    assert statuses == ["Closed with 4B", "Closed with 4B", "New"]
    [(status, text)] = await _deliveries(p, "close-calls")
    assert status == "Delivered"
    assert text == f"updated CALLS/{calls[0].id}, CALLS/{calls[1].id}"

    # A ward with no calls: nothing to update, and that is not an error.
    empty = await p.datasets.create("WARDS", {"name": "6D", "status": "Open"})
    await p.datasets.update("WARDS", empty.id, {"status": "Closed"})
    await _settle(p)
    assert (await _deliveries(p, "close-calls"))[1] == ("Delivered", "no linked record to update")

    # m:n: every team of the call.
    teams = [
        await p.datasets.create("TEAMS", {"name": n, "status": "Idle"}) for n in ("Rapid", "Night")
    ]
    spare = await p.datasets.create("TEAMS", {"name": "Spare", "status": "Idle"})
    await _rule(
        p,
        "page-teams",
        "CALLS",
        "Update Record",
        settings={"updates": "teams.status=Paged #{call_id}"},
    )
    await p.datasets.create("CALLS", {"call_id": "c9", "teams": [t.id for t in teams]})
    await _settle(p)
    assert [(await p.datasets.get("TEAMS", t.id)).get("status") for t in teams] == [
        "Paged c9",
        "Paged c9",
    ]
    assert (await p.datasets.get("TEAMS", spare.id)).get("status") == "Idle"
    assert await _deliveries(p, "page-teams") == [
        ("Delivered", f"updated TEAMS/{teams[0].id}, TEAMS/{teams[1].id}")
    ]


async def test_update_errors_end_in_an_error_delivery(p: Assembly) -> None:
    ward = await p.datasets.create("WARDS", {"name": "4B"})
    await _rule(p, "to-link", "CALLS", "Update Record", settings={"updates": "room=1"})
    await _rule(p, "bad-type", "CALLS", "Update Record", settings={"updates": "level=lots"})
    call = await p.datasets.create("CALLS", {"call_id": "c1", "room": ward.id, "level": 1})
    await _settle(p)

    [(status, text)] = await _deliveries(p, "to-link")
    assert status == "Error"
    assert text == "'room' ends at a link; name an attribute to update"
    [(status, text)] = await _deliveries(p, "bad-type")
    assert status == "Error"
    assert "level" in str(text)
    assert "'lots' is not a valid Integer" in str(text)
    after = await p.datasets.get("CALLS", call.id)
    assert (after.get("room"), after.get("level")) == (ward.id, 1)


# --- Create Record -----------------------------------------------------------


async def test_create_record_plain_and_upsert(p: Assembly) -> None:
    await _rule(
        p,
        "log",
        "CALLS",
        "Create Record",
        trigger=Trigger(on_create=True, on_update=True, attributes=("level",)),
        settings={"dataset": "CALL_LOG", "values": ["text=#{call_id} at level #{level}"]},
    )
    await _rule(
        p,
        "escalate",
        "CALLS",
        "Create Record",
        trigger=Trigger(on_create=True, on_update=True, attributes=("level",)),
        settings={
            "dataset": "ESCALATIONS",
            "values": "call_id=#{call_id}\nlevel=#{level}\nstate=Open",
            "upsert": True,
        },
    )
    call = await p.datasets.create("CALLS", {"call_id": "c1", "level": 1})
    await _settle(p)
    await p.datasets.update("CALLS", call.id, {"level": 2})
    await _settle(p)

    assert await _values(p, "CALL_LOG", "text") == ["c1 at level 1", "c1 at level 2"]
    logs = (await p.datasets.query("CALL_LOG", Query())).records
    assert await _deliveries(p, "log") == [
        ("Delivered", f"wrote CALL_LOG/{logs[0].id}"),
        ("Delivered", f"wrote CALL_LOG/{logs[1].id}"),
    ]
    [escalation] = (await p.datasets.query("ESCALATIONS", Query())).records
    assert (escalation.get("call_id"), escalation.get("level")) == ("c1", 2)
    assert await _deliveries(p, "escalate") == [
        ("Delivered", f"wrote ESCALATIONS/{escalation.id}"),
        ("Delivered", f"wrote ESCALATIONS/{escalation.id}"),
    ]


async def test_create_record_with_invalid_values_ends_in_error(p: Assembly) -> None:
    await _rule(
        p,
        "bad-level",
        "CALLS",
        "Create Record",
        settings={"dataset": "ESCALATIONS", "values": "call_id=#{call_id}\nlevel=#{priority}"},
    )
    await _rule(
        p,
        "no-equals",
        "CALLS",
        "Create Record",
        settings={"dataset": "CALL_LOG", "values": "text=ok\njust words"},
    )
    await _rule(
        p,
        "missing-key",
        "CALLS",
        "Create Record",
        settings={"dataset": "ESCALATIONS", "values": "call_id=#{status}\nlevel=1"},
    )
    await _rule(
        p,
        "duplicate",
        "CALLS",
        "Create Record",
        settings={"dataset": "ESCALATIONS", "values": "call_id=fixed"},
    )
    await p.datasets.create("CALLS", {"call_id": "c1", "priority": "urgent"})
    await p.datasets.create("CALLS", {"call_id": "c2", "priority": "3"})
    await _settle(p)

    bad = await _deliveries(p, "bad-level")
    assert bad[0][0] == "Error"
    assert "ESCALATIONS, level: 'urgent' is not a valid Integer" in str(bad[0][1])
    assert bad[1] == ("Delivered", bad[1][1])
    assert (
        await _deliveries(p, "no-equals")
        == [("Error", "'just words' is not in the form attribute=value")] * 2
    )
    [missing, _] = await _deliveries(p, "missing-key")
    assert missing[0] == "Error"
    assert "ESCALATIONS, call_id: a value is required" in str(missing[1])
    first, second = await _deliveries(p, "duplicate")
    assert first[0] == "Delivered"
    assert second[0] == "Error"
    assert "ESCALATIONS" in str(second[1])
    assert await _values(p, "CALL_LOG", "text") == []
    assert sorted(str(v) for v in await _values(p, "ESCALATIONS", "call_id")) == ["c2", "fixed"]
