"""The assignment manager against a real database (carewire.adapters.assignments.runtime).

The tests step the manager by hand (``step`` is its second, ``tick`` its
minute) on the fake clock; ``test_the_real_loop_*`` runs it for real.
"""

from __future__ import annotations

import asyncio

from carewire.datasets.model import RecordChanged
from carewire.datasets.paths import parse_path
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.security.audit import Outcome
from tests.adapters.assignments.conftest import Hospital

MINUTE = 60.0


async def states(h: Hospital) -> dict[str, str]:
    page = await h.p.datasets.query("ASSIGNMENTS", Query(limit=1000))
    return {str(r.get("assignment_id")): str(r.get("state") or "") for r in page.records}


async def audited(h: Hospital, action: str) -> list[dict[str, object]]:
    entries, _ = await h.p.audit.store.entries(action=action, limit=1000)
    return [dict(e.event.details) for e in reversed(entries)]


async def test_a_new_assignment_becomes_next_assigned_now(h: Hospital) -> None:
    m = h.manager()
    m.listen()
    rid = await h.assignment("rn-1", "ann", start_time=h.later(hours=1))
    assert len(m.queue) == 1
    await m.step()
    record = await h.get(rid)
    assert record.get("state") == "next"
    assert record.get("assigned_at") == h.clock.now()


async def test_start_up_catches_up_on_assignments_made_while_it_was_down(h: Hospital) -> None:
    await h.assignment("rn-1", "ann")
    await h.assignment("rn-2", "bea", state="active")
    m = h.manager()
    await m.catch_up()
    await m.step()
    assert await states(h) == {"rn-1": "next", "rn-2": "active"}


async def test_the_tick_also_finds_assignments_it_did_not_hear_of(h: Hospital) -> None:
    m = h.manager()  # not listening: as if another process (the CLI) wrote the record
    rid = await h.assignment("rn-1", "ann", start_time=h.later(hours=1))
    await m.tick()
    await m.step()
    assert (await h.get(rid)).get("state") == "next"


async def test_the_minute_tick_starts_ends_and_deletes(h: Hospital) -> None:
    starts = await h.assignment("starts", "ann", start_time=h.later(minutes=1))
    ends = await h.assignment(
        "ends", "bea", state="active", start_time=h.later(hours=-8), end_time=h.later(minutes=1)
    )
    never = await h.assignment(
        "never", "bea", state="next", start_time=h.later(hours=2), end_time=h.later(minutes=1)
    )
    later = await h.assignment("later", "ann", state="next", start_time=h.later(hours=1))
    m = h.manager()
    await m.catch_up()
    await m.step()
    await m.tick()
    await m.step()
    assert await states(h) == {"starts": "next", "ends": "active", "never": "next", "later": "next"}
    h.clock.advance(MINUTE)
    await m.tick()
    await m.step()
    assert await states(h) == {
        "starts": "active",
        "ends": "expired",
        "never": "deleted",
        "later": "next",
    }
    now = h.clock.now()
    assert (await h.get(starts)).get("accepted_at") == now
    assert (await h.get(ends)).get("ended_at") == now
    assert (await h.get(never)).get("ended_at") == now
    assert (await h.get(later)).get("accepted_at") is None


async def test_the_tick_pauses_while_changes_are_queued_and_says_so(h: Hospital) -> None:
    for n in range(70):  # more than one second's share
        await h.assignment(f"rn-{n}", "ann", state="next", start_time=h.later(hours=-1))
    m = h.manager()
    await m.tick()
    assert len(m.queue) == 70
    await m.tick()  # the same 70 are still queued: nothing is looked for, nothing doubled
    assert len(m.queue) == 70 and m.queue.stats().replaced == 0
    assert await audited(h, "assignments.pause") == [{"queued": 70}]
    assert "paused" in m.health()
    await m.step()
    assert len(m.queue) == 4 and await audited(h, "assignments.resume") == []
    await m.step()
    assert len(await audited(h, "assignments.resume")) == 1
    assert set((await states(h)).values()) == {"active"}
    assert "paused" not in m.health() and "70 applied" in m.health()


async def test_updates_are_applied_at_the_per_second_limit(h: Hospital) -> None:
    for n in range(150):
        await h.assignment(f"rn-{n:03}", "ann")
    m = h.manager(updates_per_minute=4000)
    await m.catch_up()
    applied = []
    for _ in range(4):
        await m.step()
        applied.append(m.applied)
    assert applied == [66, 132, 150, 150]


async def test_a_full_queue_refuses_audits_and_loses_nothing(h: Hospital) -> None:
    m = h.manager(queue_depth=10)
    m.listen()
    for n in range(25):
        await h.assignment(f"rn-{n:02}", "ann")
    assert len(m.queue) == 10 and m.queue.stats().refused == 15
    await asyncio.sleep(0)  # the refusal's audit task
    refusals = await audited(h, "assignments.queue-full")
    assert {"refused": 1} in refusals
    for _ in range(4):
        await m.step()
    assert set((await states(h)).values()) == {"next"}  # the catch-up found the refused ones
    assert len(await states(h)) == 25
    assert "refused" in m.health()
    entries, _ = await h.p.audit.store.entries(action="assignments.queue-full")
    assert entries and all(e.event.outcome is Outcome.FAILURE for e in entries)


async def test_a_discharged_patient_ends_its_assignments(h: Hospital) -> None:
    patient = await h.patient("P1", bed="101 A")
    await h.assignment("on", "ann", state="active", patient=patient)
    await h.assignment("soon", "bea", state="next", patient=patient)
    await h.assignment("other", "bea", state="active")
    m = h.manager()
    m.listen()
    await h.p.datasets.update("PATIENTS", patient, {"status": "discharged"})
    await m.step()
    assert await states(h) == {"on": "expired", "soon": "deleted", "other": "active"}


async def test_a_bed_change_moves_next_and_copies_active_assignments(h: Hospital) -> None:
    patient = await h.patient("P1", bed="101 A")
    m = h.manager()
    old_location = await m.locations.for_bed(h.beds["101 A"])
    on = await h.assignment("on", "ann", state="active", patient=patient, location=old_location)
    soon = await h.assignment("soon", "bea", state="next", patient=patient, location=old_location)
    m.listen()
    await h.p.datasets.update("PATIENTS", patient, {"bed": h.beds["102 A"]})
    await m.step()
    new_location = await m.locations.for_bed(h.beds["102 A"])
    assert (await h.get(soon)).get("location") == new_location
    expired = await h.get(on)
    assert (expired.get("state"), expired.get("location")) == ("expired", old_location)
    assert expired.get("ended_at") == h.clock.now()
    copy = (
        await h.p.datasets.query(
            "ASSIGNMENTS",
            Query(filters=(Filter(field="assignment_id", op=FilterOp.EQ, value=f"on~{on}"),)),
        )
    ).records[0]
    assert (copy.get("state"), copy.get("location"), copy.get("patient")) == (
        "active",
        new_location,
        patient,
    )
    assert copy.get("usr") == h.nurses["ann"] and copy.get("accepted_at") == h.clock.now()


async def test_the_bed_location_is_made_as_the_seed_says(h: Hospital) -> None:
    m = h.manager(location_prefix="am-")
    bed = h.beds["101 B"]
    location = await m.locations.for_bed(bed)
    assert location is not None
    record = await h.p.datasets.get("LOCATIONS", location)
    assert record.get("location_id") == f"am-{bed}"
    assert record.get("name") == "101 B"
    assert record.get("facility") == h.facility
    registry = h.p.registry
    beds = await h.p.resolver.resolve(
        record, parse_path(registry, "LOCATIONS", "places.bed_number")
    )
    assert beds == ["B"]
    units = await h.p.resolver.resolve(record, parse_path(registry, "LOCATIONS", "units.name"))
    assert units == ["4 West"]
    assert await m.locations.for_bed(bed) == location  # found again, not made twice
    other = h.manager(location_prefix="am-")
    assert await other.locations.for_bed(bed) == location  # found by its key


async def test_a_new_patient_based_assignment_goes_to_the_patients_bed(h: Hospital) -> None:
    patient = await h.patient("P1", bed="101 B")
    m = h.manager()
    m.listen()
    rid = await h.assignment("rn-1", "ann", patient=patient)
    await m.step()  # next
    await m.step()  # and checked against the bed
    record = await h.get(rid)
    assert record.get("state") == "next"
    assert record.get("location") == await m.locations.for_bed(h.beds["101 B"])


async def test_start_up_catches_up_on_patient_moves_missed_while_down(h: Hospital) -> None:
    patient = await h.patient("P1", bed="101 A")
    gone = await h.patient("P2", bed="101 B")
    m = h.manager()
    loc = await m.locations.for_bed(h.beds["101 A"])
    rid = await h.assignment("moved", "ann", state="next", patient=patient, location=loc)
    await h.assignment("left", "bea", state="active", patient=gone)
    await h.p.datasets.update("PATIENTS", patient, {"bed": h.beds["102 A"]})
    await h.p.datasets.update("PATIENTS", gone, {"status": "discharged"})
    restarted = h.manager()
    await restarted.catch_up()
    await restarted.step()
    assert (await h.get(rid)).get("location") == await m.locations.for_bed(h.beds["102 A"])
    assert (await states(h))["left"] == "expired"


async def test_a_patient_without_a_bed_takes_the_assignment_nowhere(h: Hospital) -> None:
    patient = await h.patient("P1", bed="101 A")
    m = h.manager()
    loc = await m.locations.for_bed(h.beds["101 A"])
    rid = await h.assignment("rn", "ann", state="next", patient=patient, location=loc)
    m.listen()
    await h.p.datasets.update("PATIENTS", patient, {"bed": None})
    await m.step()
    assert (await h.get(rid)).get("location") is None


async def test_admitted_statuses_are_a_setting(h: Hospital) -> None:
    patient = await h.patient("P1", status="Inpatient")
    await h.assignment("rn", "ann", state="active", patient=patient)
    m = h.manager(admitted_statuses=["Inpatient", "Emergency"])
    await m.catch_up()
    await m.step()
    assert (await states(h))["rn"] == "active"
    strict = h.manager()
    await strict.catch_up()
    await strict.step()
    assert (await states(h))["rn"] == "expired"


async def test_a_stale_queued_change_is_dropped(h: Hospital) -> None:
    rid = await h.assignment("rn", "ann", state="next", start_time=h.later(hours=-1))
    m = h.manager()
    await m.tick()
    await h.p.datasets.update("ASSIGNMENTS", rid, {"state": "deleted"})  # by hand, meanwhile
    await m.step()
    assert (await h.get(rid)).get("state") == "deleted"
    assert m.applied == 0


async def test_its_writes_reach_the_rules_as_the_adapters(h: Hospital) -> None:
    seen: list[RecordChanged] = []
    h.p.datasets.subscribe(seen.append)
    await h.assignment("rn", "ann", state="next")
    m = h.manager()
    await m.tick()
    await m.step()
    update = [e for e in seen if e.dataset == "ASSIGNMENTS" and "state" in e.changed][-1]
    assert update.origin.adapter == "Assignment Manager"
    assert update.new is not None and update.new["state"] == "active"


async def test_the_real_loop_runs_the_tick_after_catching_up(h: Hospital) -> None:
    """Enabled through the adapter manager: the supervised runtime does it all by itself."""
    rid = await h.assignment("rn", "ann", start_time=h.later(minutes=-5))
    await h.p.adapters.create("AssignmentManager", "Assignment Manager", is_enabled=True)
    await h.p.adapters.start()
    try:
        for _ in range(100):
            if (await h.get(rid)).get("state") == "active":
                break
            await asyncio.sleep(0.1)
        assert (await h.get(rid)).get("state") == "active"
        assert len(await audited(h, "assignments.pause")) == 1  # the initial change was queued
        assert len(await audited(h, "assignments.resume")) == 1
        assert "applied" in h.p.adapters.health("Assignment Manager").note
    finally:
        await h.p.adapters.stop()
