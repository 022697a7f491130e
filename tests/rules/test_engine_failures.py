"""Failed firings say why at once, a failed alert hastens its escalation, and a server takes
up the datasets and rules another process (the CLI) saved while it ran.

Two assemblies on one database stand for ``carewire serve`` and a ``carewire`` command, as in
production: the command hands the firings it cannot run over to the server's scheduler.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from carewire.assembly import Assembly, Options, assemble
from carewire.clock import FakeClock
from carewire.datasets.model import ChangeKind, DatasetName, Origin, RecordChanged, RecordId
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.rules.engine import EngineConfig
from carewire.rules.model import Rule
from carewire.rules.store import ScheduledFiring
from tests.templates import prefill
from tests.world import CALLS, CHAT, UPDATES, add_adapters, define_ward

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


async def _settle(p: Assembly) -> None:
    while not p.engine._queue.empty():
        await p.engine.process(p.engine._queue.get_nowait())
        p.engine._queue.task_done()


async def _deliveries(p: Assembly, rule: str) -> list[dict[str, object]]:
    page = await p.datasets.query(
        "DELIVERIES", Query(filters=(Filter(field="rule", op=FilterOp.EQ, value=rule),))
    )
    return [dict(r.values) | {"id": r.id} for r in page.records]


async def _history(p: Assembly, delivery: object) -> list[object]:
    page = await p.datasets.query(
        "DELIVERY_HISTORY",
        Query(filters=(Filter(field="delivery", op=FilterOp.EQ, value=delivery),)),
    )
    return [r.get("status") for r in page.records]


@pytest.fixture
async def url(db_url: str) -> str:
    return await prefill(db_url)


@pytest.fixture
async def p(url: str) -> AsyncIterator[Assembly]:
    platform = await assemble(Options(url=url, clock=FakeClock(START)))
    await define_ward(platform)
    await add_adapters(platform)
    try:
        yield platform
    finally:
        await platform.close()


async def test_server_takes_up_a_dataset_and_rule_the_cli_made_while_it_ran(url: str) -> None:
    clock = FakeClock(START)
    cli = await assemble(
        Options(url=url, clock=clock, engine=EngineConfig(hand_over=frozenset({"DataUpdate"})))
    )
    await add_adapters(cli)
    server = await assemble(Options(url=url, clock=clock))  # running before the demo loads
    try:
        assert not await server.engine.refresh()  # nothing new yet
        await define_ward(cli)
        await cli.rules.create(
            Rule(
                name="mark",
                dataset=CALLS,
                adapter=UPDATES,
                action="Update Record",
                settings={"updates": "status=Seen"},
            )
        )
        rec = await cli.datasets.create(CALLS, {"call_id": "c1"})
        await _settle(cli)  # handed over: scheduled, due now, for the server
        assert CALLS not in server.registry
        assert await server.engine.run_due() == 1
        [done] = await _deliveries(server, "mark")
        assert done["status"] == "Delivered", done
        assert (await server.datasets.get(CALLS, rec.id)).get("status") == "Seen"
        assert CALLS in server.registry
        assert not await server.engine.refresh()  # taken up once
    finally:
        await server.close()
        await cli.close()


async def test_a_firing_whose_action_targets_a_missing_dataset_fails_at_once(
    p: Assembly,
) -> None:
    """Not left Queued until a restart calls it "interrupted": Error now, saying why."""
    rule = await p.rules._store.insert(  # saved elsewhere, before its dataset was dropped
        Rule(
            name="log call",
            dataset=CALLS,
            adapter=UPDATES,
            action="Create Record",
            defer_seconds=30,
            settings={"dataset": "NO_SUCH_LOG", "values": "call_id=#{call_id}"},
        ),
        START,
    )
    await p.rules.refresh()
    rec = await p.datasets.create(CALLS, {"call_id": "c2"})
    await _settle(p)
    assert await _deliveries(p, "log call") == []  # it does not compile: nothing fires
    event = RecordChanged(
        dataset=DatasetName(CALLS),
        record_id=RecordId(rec.id),
        kind=ChangeKind.CREATE,
        old=None,
        new=rec.values,
        origin=Origin(actor="test"),
        at=START,
    )
    delivery = await p.engine.tracker.queued(rule, event)
    assert rule.id is not None
    await p.engine._store.schedule(
        ScheduledFiring(
            delivery_id=delivery,
            rule_id=rule.id,
            due_at=START,
            payload={
                "dataset": CALLS,
                "record_id": rec.id,
                "kind": "create",
                "at": START.isoformat(),
                "old": None,
                "origin": {"adapter": None, "actor": "test", "depth": 0},
            },
        )
    )
    assert await p.engine.run_due() == 1
    [failed] = await _deliveries(p, "log call")
    assert failed["status"] == "Error"
    assert "NO_SUCH_LOG" in str(failed["status_text"]), failed
    assert await p.engine.recover() == 0  # nothing left for a restart to call interrupted


async def test_a_failed_alert_makes_its_escalation_due_at_once(p: Assembly) -> None:
    alert = {"recipients": "nurse1", "subject": "Call", "message": "Room", "ttl": 10}
    for name, defer in (("primary", 0), ("backup", 60), ("tertiary", 120)):
        await p.rules.create(
            Rule(
                name=name,
                dataset=CALLS,
                adapter=CHAT,
                action="Send Alert",
                defer_seconds=defer,
                settings=alert | {"recipients": name},
            )
        )
    await p.rules.create(  # another action on the same write: keeps its delay
        Rule(
            name="urgent later",
            dataset=CALLS,
            adapter=UPDATES,
            action="Update Record",
            defer_seconds=120,
            settings={"updates": "priority=Urgent"},
        )
    )
    await p.datasets.create(CALLS, {"call_id": "c3"})
    await _settle(p)
    [primary] = await _deliveries(p, "primary")
    assert primary["status"] == "Error"  # no XMPP server in this process
    # No time passes: the backup is due now; it fails as well, so the tertiary is too.
    assert await p.engine.run_due() == 2
    for name in ("backup", "tertiary"):
        [esc] = await _deliveries(p, name)
        assert esc["status"] == "Error"
        assert await _history(p, esc["id"]) == ["Queued", "Processing", "Error"]
    [later] = await _deliveries(p, "urgent later")
    assert later["status"] == "Queued"  # still waiting out its 120 s


async def test_an_alert_that_is_delivered_leaves_its_escalation_waiting(p: Assembly) -> None:
    await p.rules.create(
        Rule(
            name="note",
            dataset=CALLS,
            adapter=UPDATES,
            action="Update Record",
            settings={"updates": "note=seen"},
        )
    )
    await p.rules.create(
        Rule(
            name="note again",
            dataset=CALLS,
            adapter=UPDATES,
            action="Update Record",
            defer_seconds=60,
            settings={"updates": "note=still open"},
        )
    )
    await p.datasets.create(CALLS, {"call_id": "c4"})
    await _settle(p)
    [first] = await _deliveries(p, "note")
    assert first["status"] == "Delivered"
    assert await p.engine.run_due() == 0
