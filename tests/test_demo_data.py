"""The demo hospital's data: loaded through the dataset service, idempotent, rules ready."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from carewire.assembly import Options, assemble
from carewire.clock import FakeClock
from carewire.datasets.paths import parse_path
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.demo_data import (
    ALERT_RULE,
    BACKUP_RULE,
    ESCALATION_RULE,
    PATIENTS,
    bed_of,
    demo_beds,
    load_demo_data,
)


async def test_demo_data_loads_twice_and_its_escalation_rule_works(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 5, 1, 9, 0, tzinfo=UTC))
    p = await assemble(Options(url=f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}", clock=clock))
    try:
        await p.ensure_default_adapters("h.example")
        first = await load_demo_data(p)
        second = await load_demo_data(p)
        assert first.counts == second.counts
        for dataset, n in first.counts.items():
            assert (await p.datasets.query(dataset, Query(limit=1))).total == n, dataset
        assert first.counts["BEDS"] == 12 and first.counts["ASSIGNMENTS"] == 24

        bed = (
            await p.datasets.query(
                "BEDS", Query(filters=(Filter(field="bed_number", op=FilterOp.EQ, value="A"),))
            )
        ).records[0]
        path = parse_path(p.registry, "BEDS", "locs.assignments.usr.login")
        nurses = await p.engine.resolver.resolve(bed, path)
        assert isinstance(nurses, list)
        assert sorted(str(n) for n in nurses) == ["nurse.adams", "nurse.baker"]
        # The alert rules' recipients: one nurse per level.
        for level in ("1", "2"):
            path = parse_path(
                p.registry, "BEDS", f"locs.assignments[level={level},state=active].usr.login"
            )
            assert len(await p.engine.resolver.resolve(bed, path)) == 1  # type: ignore[arg-type]
        assert first.counts["PATIENTS"] == len(PATIENTS)
        assert p.rules.find(ALERT_RULE) is not None and p.rules.find(BACKUP_RULE) is not None

        call = await p.datasets.create(
            "NURSE_CALLS", {"call_id": "1", "status": "Open", "priority": "Normal", "bed": bed.id}
        )
        while not p.engine._queue.empty():
            await p.engine.process(p.engine._queue.get_nowait())
        clock.advance(121)
        # The backup alert (no XMPP server in this process: Error) and the escalation.
        assert await p.engine.run_due() == 2
        escalated = await p.datasets.get("NURSE_CALLS", call.id)
        assert (escalated.get("status"), escalated.get("priority")) == ("Escalated", "Urgent")
        assert p.rules.find(ESCALATION_RULE) is not None
    finally:
        await p.close()


def test_demo_beds_resolve_and_an_unknown_bed_lists_them() -> None:
    assert "ICU-101A" in demo_beds()
    assert bed_of("ICU-101A") == {
        "bed_number": "A",
        "room": {"room_number": "101", "facility": {"name": "Carewire General"}},
    }
    with pytest.raises(KeyError, match="ICU-101A"):
        bed_of("ICU-999Z")
