"""The bed cache: what it keeps, what makes it forget, and alarms that follow a bed's changes."""

from __future__ import annotations

from datetime import UTC, datetime

from carewire.adapters.pcd.beds import BedCache
from carewire.assembly import Assembly
from carewire.datasets.model import ChangeKind, DatasetName, Origin, RecordChanged, RecordId
from carewire.datasets.query import Query
from tests.adapters.pcd.conftest import exchange, msa, sample, start_instance

KEY = ("Main General", "101", "A")


def _changed(dataset: str) -> RecordChanged:
    return RecordChanged(
        dataset=DatasetName(dataset),
        record_id=RecordId(1),
        kind=ChangeKind.UPDATE,
        old={},
        new={},
        origin=Origin(),
        at=datetime(2026, 3, 1, tzinfo=UTC),
    )


def test_a_look_up_is_kept_until_a_bed_room_or_facility_changes() -> None:
    beds = BedCache()
    assert beds.lookup(KEY) == (False, None)
    beds.keep(KEY, 7, generation=beds.generation)
    beds.keep(("Main General", "102", "B"), None, generation=beds.generation)
    assert beds.lookup(KEY) == (True, 7)
    assert beds.lookup(("Main General", "102", "B")) == (True, None)  # no such bed, known
    beds.notice(_changed("PATIENTS"))
    assert beds.lookup(KEY) == (True, 7)
    for dataset in ("BEDS", "ROOMS", "FACILITIES"):
        beds.keep(KEY, 7, generation=beds.generation)
        beds.notice(_changed(dataset))
        assert beds.lookup(KEY) == (False, None), dataset


def test_a_look_up_that_raced_a_change_is_not_kept() -> None:
    beds = BedCache()
    started = beds.generation
    beds.notice(_changed("BEDS"))  # committed while the look-up ran
    beds.keep(KEY, 7, generation=started)
    assert beds.lookup(KEY) == (False, None)


def test_it_stays_bounded() -> None:
    beds = BedCache(max_entries=2)
    for n in range(3):
        beds.keep(("F", str(n), "A"), n, generation=0)
    assert beds.lookup(("F", "2", "A")) == (True, 2)
    assert beds.lookup(("F", "0", "A")) == (False, None)


async def _bed_of_alarm(p: Assembly, alarm_id: str) -> object:
    page = await p.datasets.query("DEVICE_ALARMS", Query())
    [alarm] = [r for r in page.records if r.get("alarm_id") == alarm_id]
    return alarm.get("bed")


async def test_alarms_follow_a_bed_created_after_the_first_alarm(pcd_platform: Assembly) -> None:
    p = pcd_platform
    rt = await start_instance(p)
    assert rt.port is not None
    facility = await p.datasets.create("FACILITIES", {"name": "Main General"})
    room = await p.datasets.create("ROOMS", {"room_number": "101", "facility": facility.id})
    first = sample("spo2_low_start")
    assert msa(await exchange(rt.port, first))[0] == "AA"
    assert await _bed_of_alarm(p, "ALM-0001") is None  # no bed A yet: remembered as none
    bed = await p.datasets.create("BEDS", {"bed_number": "A", "room": room.id})
    second = first.replace("ALM-0001", "ALM-0002").replace("MSG00001", "MSG00002")
    assert msa(await exchange(rt.port, second))[0] == "AA"
    assert await _bed_of_alarm(p, "ALM-0002") == bed.id
    await p.datasets.update("BEDS", bed.id, {"bed_number": "B"})  # renamed: not bed A any more
    third = first.replace("ALM-0001", "ALM-0003").replace("MSG00001", "MSG00003")
    assert msa(await exchange(rt.port, third))[0] == "AA"
    assert await _bed_of_alarm(p, "ALM-0003") is None
