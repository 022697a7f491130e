"""The dataset service on SQLite and PostgreSQL: writes, links, events and errors."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from carewire.datasets.model import ChangeKind, DatasetName, Origin, RecordChanged, RecordId
from carewire.datasets.query import (
    Query,
    parse_filter,
)
from carewire.datasets.registry import UnknownDatasetError
from carewire.datasets.service import DatasetService, RecordNotFoundError
from carewire.datasets.values import RecordError
from carewire.errors import ConflictError, NotFoundError
from tests.datasets.conftest import Platform

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MAIN = {"name": "Main"}
ROOM_101 = {"room_number": "101", "facility": MAIN}


@dataclass(frozen=True, slots=True, kw_only=True)
class Hospital:
    """Record ids of a small hospital."""

    facility: int
    other_facility: int
    unit: int
    room: int
    other_room: int
    bed: int


async def _hospital(svc: DatasetService) -> Hospital:
    facility = await svc.create("FACILITIES", MAIN)
    other = await svc.create("FACILITIES", {"name": "North"})
    unit = await svc.create("UNITS", {"name": "ICU", "facility": facility.id})
    room = await svc.create("ROOMS", {"room_number": "101", "facility": facility.id})
    other_room = await svc.create("ROOMS", {"room_number": "101", "facility": other.id})
    bed = await svc.create("BEDS", {"bed_number": "A", "room": room.id})
    return Hospital(
        facility=facility.id,
        other_facility=other.id,
        unit=unit.id,
        room=room.id,
        other_room=other_room.id,
        bed=bed.id,
    )


async def _locations(svc: DatasetService, facility: int, *names: str) -> list[int]:
    return [
        (await svc.create("LOCATIONS", {"location_id": n, "facility": facility})).id for n in names
    ]


async def _follow(platform: Platform, dataset: str, link: str, record: int) -> list[RecordId]:
    ds = platform.registry.get(dataset)
    ln = ds.link(link)
    assert ln is not None
    return (await platform.store.follow(ds, ln, [RecordId(record)]))[RecordId(record)]


def _only(events: list[RecordChanged]) -> RecordChanged:
    assert len(events) == 1, events
    return events[0]


# --- create / get / update / upsert / delete -------------------------------------------------


async def test_create_types_values_and_announces(platform: Platform) -> None:
    rec = await platform.service.create(
        "CONVERSATIONS", {"jid1": "a@x", "jid2": "b@x", "ttl": "30"}
    )
    assert rec.dataset == "CONVERSATIONS"
    full = {"jid1": "a@x", "jid2": "b@x", "ttl": 30}
    full |= {"activity_state": None, "topic": None, "patient": None}
    assert rec.values == full  # every stored field, as a read returns it
    event = _only(platform.events)
    assert event == RecordChanged(
        dataset=DatasetName("CONVERSATIONS"),
        record_id=rec.id,
        kind=ChangeKind.CREATE,
        old=None,
        new=full,
        origin=Origin(),
        at=T0,
    )
    stored = await platform.service.get("CONVERSATIONS", rec.id)
    assert stored.values == {
        "jid1": "a@x",
        "jid2": "b@x",
        "ttl": 30,
        "activity_state": None,
        "topic": None,
        "patient": None,
    }


async def test_values_of_every_type_round_trip(platform: Platform) -> None:
    svc = platform.service
    msg = await svc.create(
        "MESSAGES",
        {
            "uuid": "m1",
            "received_at": "2026-01-31T10:00:00+02:00",
            "sent_at": datetime(2026, 1, 31, 7, 59, 59, 123000, tzinfo=UTC),
            "acknowledgeable": "t",
        },
    )
    stored = (await svc.get("MESSAGES", msg.id)).values
    received = stored["received_at"]
    assert isinstance(received, datetime)
    assert received == datetime(2026, 1, 31, 8, tzinfo=UTC)
    assert received.utcoffset() == timedelta(0)
    assert stored["sent_at"] == datetime(2026, 1, 31, 7, 59, 59, 123000, tzinfo=UTC)
    assert stored["acknowledgeable"] == "t"

    patient = await svc.create("PATIENTS", {"mrn": "007", "dob": "1980-02-29"})
    dob = (await svc.get("PATIENTS", patient.id)).values["dob"]
    assert dob == date(1980, 2, 29)
    assert type(dob) is date

    calls = [
        await svc.create("CALL_LOG_HISTORY", {"deleted": "true", "played": False}),
        await svc.create("CALL_LOG_HISTORY", {"deleted": "f", "played": "yes"}),
    ]
    values = [(await svc.get("CALL_LOG_HISTORY", c.id)).values for c in calls]
    assert [(v["deleted"], v["played"]) for v in values] == [(True, False), (False, True)]
    assert all(type(v["deleted"]) is bool for v in values)

    big = await svc.create("DELIVERIES", {"status": "Queued", "triggered_at": T0})
    await svc.update("DELIVERIES", big.id, {"processing_time": 2**40})
    assert (await svc.get("DELIVERIES", big.id)).values["processing_time"] == 2**40


async def test_update(platform: Platform) -> None:
    svc = platform.service
    rec = await svc.create("DELIVERIES", {"status": "Queued", "triggered_at": T0})
    platform.events.clear()
    platform.clock.advance(60)

    updated = await svc.update(
        "DELIVERIES", rec.id, {"status": "Delivered", "processing_time": "250"}
    )

    assert updated.id == rec.id
    assert updated.values["status"] == "Delivered"
    assert updated.values["processing_time"] == 250
    event = _only(platform.events)
    assert event.kind is ChangeKind.UPDATE
    assert event.at == T0 + timedelta(seconds=60)
    assert event.old is not None
    assert event.new is not None
    assert event.old["status"] == "Queued"
    assert event.old["processing_time"] is None
    assert event.new["status"] == "Delivered"
    assert event.new["triggered_at"] == T0
    assert event.changed == {"status", "processing_time"}
    stored = await svc.get("DELIVERIES", rec.id)
    assert stored.values == event.new


async def test_update_of_a_missing_record(platform: Platform) -> None:
    with pytest.raises(RecordNotFoundError) as info:
        await platform.service.update("BEDS", 999, {"bed_number": "B"})
    assert str(info.value) == "BEDS record 999 does not exist"
    assert info.value.code == "record-not-found"
    assert isinstance(info.value, NotFoundError)
    with pytest.raises(RecordNotFoundError):
        await platform.service.get("BEDS", 999)
    with pytest.raises(RecordNotFoundError):
        await platform.service.delete("BEDS", 999)
    with pytest.raises(RecordNotFoundError):
        await platform.service.link("BEDS", 999, "locs", [])
    assert platform.events == []


async def test_upsert_creates_then_updates(platform: Platform) -> None:
    svc = platform.service
    created = await svc.upsert("USERS", {"login": "ann", "title": "RN"})
    updated = await svc.upsert("USERS", {"login": "ann", "title": "Charge RN"})
    assert updated.id == created.id
    assert [e.kind for e in platform.events] == [ChangeKind.CREATE, ChangeKind.UPDATE]
    assert platform.events[1].changed == {"title"}
    stored = await svc.get("USERS", created.id)
    assert stored.values["title"] == "Charge RN"
    assert stored.values["login"] == "ann"


async def test_upsert_by_nested_key(platform: Platform) -> None:
    svc = platform.service
    h = await _hospital(svc)
    same = await svc.upsert("BEDS", {"bed_number": "A", "room": ROOM_101})
    assert same.id == h.bed
    other = await svc.upsert(
        "BEDS", {"bed_number": "A", "room": {"room_number": "101", "facility": {"name": "North"}}}
    )
    assert other.id != h.bed
    assert (await svc.get("BEDS", other.id)).values["room"] == h.other_room


async def test_upsert_needs_every_key_field(platform: Platform) -> None:
    svc = platform.service
    await _hospital(svc)
    with pytest.raises(RecordError, match=r"upsert needs every key field; missing bed_number"):
        await svc.upsert("BEDS", {"room": ROOM_101})
    with pytest.raises(RecordError, match=r"missing room"):
        await svc.upsert("BEDS", {"bed_number": "A"})
    with pytest.raises(RecordError, match=r"missing assignment_id, level"):
        await svc.upsert("ASSIGNMENTS", {"interface_id": "adt", "level": ""})


async def test_upsert_on_a_keyless_dataset(platform: Platform) -> None:
    with pytest.raises(RecordError, match=r"CALL_LOG_HISTORY: has no key"):
        await platform.service.upsert("CALL_LOG_HISTORY", {"caller": "ann"})
    assert platform.events == []


async def test_delete(platform: Platform) -> None:
    svc = platform.service
    site = await svc.create("SITES", {"name": "North"})
    platform.events.clear()
    await svc.delete("SITES", site.id, origin=Origin(actor="cli"))
    event = _only(platform.events)
    assert event.kind is ChangeKind.DELETE
    assert event.old == {"name": "North"}
    assert event.new is None
    assert event.origin == Origin(actor="cli")
    with pytest.raises(RecordNotFoundError):
        await svc.get("SITES", site.id)


async def test_delete_refused_while_referenced(platform: Platform) -> None:
    svc = platform.service
    h = await _hospital(svc)
    await svc.create("BEDS", {"bed_number": "B", "room": h.room})
    platform.events.clear()
    with pytest.raises(ConflictError) as info:
        await svc.delete("ROOMS", h.room)
    assert "ROOMS record" in str(info.value)
    assert "BEDS.room (2)" in str(info.value)
    with pytest.raises(ConflictError) as info:
        await svc.delete("FACILITIES", h.facility)
    assert "ROOMS.facility (1)" in str(info.value)
    assert "UNITS.facility (1)" in str(info.value)
    assert platform.events == []
    assert (await svc.get("ROOMS", h.room)).values["room_number"] == "101"


async def test_delete_removes_many_to_many_rows(platform: Platform) -> None:
    svc = platform.service
    h = await _hospital(svc)
    (loc,) = await _locations(svc, h.facility, "L1")
    await svc.update("BEDS", h.bed, {"locs": [loc]})
    assert await _follow(platform, "LOCATIONS", "places", loc) == [h.bed]
    await svc.delete("BEDS", h.bed)  # m:n rows do not block a delete
    assert await _follow(platform, "LOCATIONS", "places", loc) == []
    await svc.delete("LOCATIONS", loc)


# --- link values ---------------------------------------------------------------------------


async def test_link_values_by_id_and_by_key(platform: Platform) -> None:
    svc = platform.service
    h = await _hospital(svc)
    by_id = await svc.create("BEDS", {"bed_number": "B", "room": h.room})
    by_text_id = await svc.create("BEDS", {"bed_number": "C", "room": str(h.room)})
    by_key = await svc.create("BEDS", {"bed_number": "D", "room": ROOM_101})
    north = await svc.create(
        "BEDS",
        {"bed_number": "D", "room": {"room_number": "101", "facility": {"name": "North"}}},
    )
    assert [r.values["room"] for r in (by_id, by_text_id, by_key)] == [h.room] * 3
    assert north.values["room"] == h.other_room
    assert await _follow(platform, "ROOMS", "beds", h.room) == [
        h.bed,
        by_id.id,
        by_text_id.id,
        by_key.id,
    ]


@pytest.mark.parametrize(
    ("room", "message"),
    [
        pytest.param(999, "ROOMS record 999 does not exist", id="id"),
        pytest.param("999", "ROOMS record 999 does not exist", id="text-id"),
        pytest.param(
            {"room_number": "999", "facility": MAIN},
            "no ROOMS record with room_number='999', facility={'name': 'Main'}",
            id="key",
        ),
        pytest.param(
            {"room_number": "101", "facility": {"name": "South"}},
            "no FACILITIES record with name='South'",
            id="nested-key",
        ),
    ],
)
async def test_dangling_links(platform: Platform, room: object, message: str) -> None:
    svc = platform.service
    await _hospital(svc)
    platform.events.clear()
    with pytest.raises(RecordError) as info:
        await svc.create("BEDS", {"bed_number": "Z", "room": room})
    assert info.value.code == "dangling-link"
    assert message in str(info.value)
    assert platform.events == []


@pytest.mark.parametrize(
    ("room", "code"),
    [
        pytest.param("abc", "invalid-record", id="text"),
        pytest.param(True, "invalid-record", id="bool"),
        pytest.param(1.5, "invalid-record", id="float"),
        pytest.param({"colour": "red"}, "unknown-field", id="unknown-key-field"),
    ],
)
async def test_malformed_link_values(platform: Platform, room: object, code: str) -> None:
    await _hospital(platform.service)
    with pytest.raises(RecordError) as info:
        await platform.service.create("BEDS", {"bed_number": "Z", "room": room})
    assert info.value.code == code


async def test_many_to_many_is_replaced_by_a_list(platform: Platform) -> None:
    svc = platform.service
    h = await _hospital(svc)
    l1, l2, l3 = await _locations(svc, h.facility, "L1", "L2", "L3")
    bed = await svc.create(
        "BEDS",
        {"bed_number": "B", "room": h.room, "locs": [l2, {"location_id": "L1", "facility": MAIN}]},
    )
    assert bed.values["locs"] == [l1, l2]
    assert await _follow(platform, "BEDS", "locs", bed.id) == [l1, l2]
    platform.events.clear()

    updated = await svc.update("BEDS", bed.id, {"locs": [l3, l2]})

    assert updated.values["locs"] == [l2, l3]
    assert await _follow(platform, "BEDS", "locs", bed.id) == [l2, l3]
    assert await _follow(platform, "LOCATIONS", "places", l1) == []
    event = _only(platform.events)
    assert event.old is not None
    assert event.new is not None
    assert event.old["locs"] == [l1, l2]
    assert event.new["locs"] == [l2, l3]
    assert event.changed == {"locs"}

    await svc.update("BEDS", bed.id, {"locs": []})
    assert await _follow(platform, "BEDS", "locs", bed.id) == []
    with pytest.raises(RecordError, match=r"an m:n link takes a list"):
        await svc.update("BEDS", bed.id, {"locs": l1})


async def test_link_and_unlink_many_to_many(platform: Platform) -> None:
    svc = platform.service
    h = await _hospital(svc)
    l1, l2 = await _locations(svc, h.facility, "L1", "L2")
    platform.events.clear()

    rec = await svc.link("BEDS", h.bed, "locs", [l2])
    assert rec.values["locs"] == [l2]
    rec = await svc.link("BEDS", h.bed, "locs", [l1, l2])  # l2 again is no error
    assert rec.values["locs"] == [l1, l2]
    assert await _follow(platform, "BEDS", "locs", h.bed) == [l1, l2]
    # The other side can link as well.
    other = await svc.create("BEDS", {"bed_number": "B", "room": h.room})
    await svc.link("LOCATIONS", l1, "places", [other.id])
    assert await _follow(platform, "LOCATIONS", "places", l1) == [h.bed, other.id]

    rec = await svc.unlink("BEDS", h.bed, "locs", [l1])
    assert rec.values["locs"] == [l2]
    assert await _follow(platform, "LOCATIONS", "places", l1) == [other.id]

    kinds = [(e.dataset, e.kind) for e in platform.events]
    assert kinds[:2] == [("BEDS", ChangeKind.UPDATE)] * 2
    last = platform.events[-1]
    assert last.old is not None
    assert last.new is not None
    assert (last.old["locs"], last.new["locs"]) == ([l1, l2], [l2])


async def test_link_and_unlink_to_one(platform: Platform) -> None:
    svc = platform.service
    h = await _hospital(svc)
    rec = await svc.link("ROOMS", h.room, "unit", [{"name": "ICU", "facility": MAIN}])
    assert rec.values["unit"] == h.unit
    assert await _follow(platform, "UNITS", "rooms", h.unit) == [h.room]
    rec = await svc.unlink("ROOMS", h.room, "unit", [])
    assert rec.values["unit"] is None
    assert (await svc.get("ROOMS", h.room)).values["unit"] is None
    with pytest.raises(RecordError, match=r"a to-one link takes exactly one target"):
        await svc.link("ROOMS", h.room, "unit", [h.unit, h.unit])
    with pytest.raises(RecordError) as info:
        await svc.unlink("BEDS", h.bed, "room", [])
    assert info.value.code == "required"
    with pytest.raises(RecordError) as info:
        await svc.link("BEDS", h.bed, "nope", [1])
    assert info.value.code == "unknown-field"


async def test_reverse_links_are_set_from_the_other_side(platform: Platform) -> None:
    svc = platform.service
    h = await _hospital(svc)
    with pytest.raises(RecordError, match=r"beds is the reverse of BEDS.room; set it from"):
        await svc.create("ROOMS", {"room_number": "102", "facility": h.facility, "beds": []})
    with pytest.raises(RecordError, match=r"beds is the reverse of BEDS.room"):
        await svc.link("ROOMS", h.room, "beds", [h.bed])
    with pytest.raises(RecordError, match=r"beds is the reverse of BEDS.room"):
        await svc.update("ROOMS", h.room, {"beds": [h.bed]})
    place = await svc.create("PLACES", {})
    with pytest.raises(RecordError, match=r"patient is the reverse of PATIENTS.current_place"):
        await svc.update("PLACES", place.id, {"patient": 1})


async def test_one_to_one(platform: Platform) -> None:
    svc = platform.service
    place = await svc.create("PLACES", {})
    patient = await svc.create("PATIENTS", {"mrn": "1", "current_place": place.id})
    assert await _follow(platform, "PLACES", "patient", place.id) == [patient.id]
    assert await _follow(platform, "PATIENTS", "current_place", patient.id) == [place.id]
    platform.events.clear()
    with pytest.raises(ConflictError) as info:
        await svc.create("PATIENTS", {"mrn": "2", "current_place": place.id})
    assert info.value.code == "conflict"
    assert platform.events == []
    with pytest.raises(ConflictError, match=r"PATIENTS.current_place"):
        await svc.delete("PLACES", place.id)


# --- events and transactions ------------------------------------------------------------------


async def test_one_event_per_record_per_transaction_after_commit(platform: Platform) -> None:
    svc = platform.service
    origin = Origin(adapter="x", depth=2)
    async with svc.batch(origin) as b:
        facility = await b.create("FACILITIES", {"name": "Main"})
        await b.update("FACILITIES", facility.id, {"name": "Main Campus"})
        room = await b.create("ROOMS", {"room_number": "1", "facility": facility.id})
        await b.update("ROOMS", room.id, {"room_number": "2"})
        await b.update("ROOMS", room.id, {"room_number": "3"})
        assert platform.events == []  # nothing before the commit
    assert [(e.dataset, e.record_id, e.kind) for e in platform.events] == [
        ("FACILITIES", facility.id, ChangeKind.CREATE),
        ("ROOMS", room.id, ChangeKind.CREATE),
    ]
    assert all(e.origin == origin for e in platform.events)
    assert platform.events[0].old is None
    assert platform.events[0].new == {"name": "Main Campus"}
    room_new = platform.events[1].new
    assert room_new is not None
    assert (room_new["room_number"], room_new["facility"]) == ("3", facility.id)
    platform.events.clear()

    async with svc.batch(origin) as b:
        await b.update("ROOMS", room.id, {"room_number": "4"})
        platform.clock.advance(5)
        await b.update("ROOMS", room.id, {"room_number": "5"})
    event = _only(platform.events)
    assert event.kind is ChangeKind.UPDATE
    assert event.old is not None
    assert event.new is not None
    assert (event.old["room_number"], event.new["room_number"]) == ("3", "5")
    assert event.at == T0 + timedelta(seconds=5)


async def test_update_then_delete_is_one_delete(platform: Platform) -> None:
    svc = platform.service
    site = await svc.create("SITES", {"name": "North"})
    platform.events.clear()
    async with svc.batch() as b:
        await b.update("SITES", site.id, {"name": "South"})
        await b.delete("SITES", site.id)
    event = _only(platform.events)
    assert event.kind is ChangeKind.DELETE
    assert event.old == {"name": "North"}
    assert event.new is None


async def test_create_then_delete_in_one_batch_is_not_a_create(platform: Platform) -> None:
    async with platform.service.batch() as b:
        site = await b.create("SITES", {"name": "North"})
        await b.delete("SITES", site.id)
    for event in platform.events:
        assert event.kind is not ChangeKind.CREATE or event.new is not None


async def test_events_go_out_in_write_order(platform: Platform) -> None:
    svc = platform.service
    async with svc.batch() as b:
        sites = [await b.create("SITES", {"name": n}) for n in ("c", "a", "b")]
    assert [e.record_id for e in platform.events] == [s.id for s in sites]


async def test_no_events_when_the_transaction_fails(platform: Platform) -> None:
    svc = platform.service
    await svc.create("SITES", {"name": "North"})
    platform.events.clear()
    with pytest.raises(ConflictError) as info:
        await svc.create("SITES", {"name": "North"})
    assert info.value.code == "duplicate-key"
    with pytest.raises(RuntimeError):
        async with svc.batch() as b:
            await b.create("SITES", {"name": "South"})
            raise RuntimeError("caller changed its mind")
    assert platform.events == []
    page = await svc.query("SITES", Query(filters=(parse_filter("name:eq:South"),)))
    assert page.total == 0


async def test_a_batch_commits_all_or_nothing(platform: Platform) -> None:
    svc = platform.service
    with pytest.raises(RecordError) as info:
        async with svc.batch(Origin(adapter="x", depth=2)) as b:
            await b.create("FACILITIES", {"name": "Main"})
            await b.create("ROOMS", {"room_number": "1", "facility": 999})
    assert info.value.code == "dangling-link"
    assert platform.events == []
    assert await platform.store.count(platform.registry.get("FACILITIES")) == 0
    # The same batch with a valid second write commits both.
    async with svc.batch() as b:
        facility = await b.create("FACILITIES", {"name": "Main"})
        await b.create("ROOMS", {"room_number": "1", "facility": facility.id})
    assert len(platform.events) == 2
    assert await platform.store.count(platform.registry.get("ROOMS")) == 1


async def test_a_failing_subscriber_does_not_starve_the_others(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    later: list[RecordChanged] = []

    def broken(event: RecordChanged) -> None:
        raise ValueError("subscriber bug")

    platform.service.subscribe(broken)
    platform.service.subscribe(later.append)
    with caplog.at_level(logging.ERROR, logger="carewire.datasets.service"):
        await platform.service.create("SITES", {"name": "North"})
    assert len(platform.events) == 1
    assert later == platform.events
    assert "subscriber failed for SITES" in caplog.text


# --- validation errors -------------------------------------------------------------------------


async def test_unknown_dataset(platform: Platform) -> None:
    svc = platform.service
    with pytest.raises(UnknownDatasetError):
        await svc.create("NOPE", {})
    with pytest.raises(UnknownDatasetError):
        await svc.update("NOPE", 1, {})
    with pytest.raises(UnknownDatasetError):
        await svc.get("NOPE", 1)
    with pytest.raises(UnknownDatasetError):
        await svc.query("NOPE", Query())


async def test_unknown_attribute(platform: Platform) -> None:
    with pytest.raises(RecordError) as info:
        await platform.service.create("SITES", {"name": "North", "colour": "red"})
    assert info.value.code == "unknown-field"
    assert "unknown attribute or link 'colour'" in str(info.value)
    site = await platform.service.create("SITES", {"name": "North"})
    with pytest.raises(RecordError) as info:
        await platform.service.update("SITES", site.id, {"id": 5})
    assert info.value.code == "unknown-field"
    assert info.value.record == site.id


async def test_wrong_types(platform: Platform) -> None:
    svc = platform.service
    with pytest.raises(RecordError) as info:
        await svc.create("CONVERSATIONS", {"jid1": "a", "jid2": "b", "ttl": "soon"})
    assert (info.value.dataset, info.value.field, info.value.code) == (
        "CONVERSATIONS",
        "ttl",
        "wrong-type",
    )
    conv = await svc.create("CONVERSATIONS", {"jid1": "a", "jid2": "b", "ttl": 5})
    with pytest.raises(RecordError) as info:
        await svc.update("CONVERSATIONS", conv.id, {"ttl": True})
    assert info.value.record == conv.id
    assert str(info.value).startswith(f"CONVERSATIONS record {conv.id}, ttl:")
    with pytest.raises(RecordError, match=r"time zone is required"):
        await svc.create(
            "MESSAGES", {"uuid": "m", "received_at": "2026-01-01T08:00", "sent_at": T0}
        )


async def test_missing_required_values(platform: Platform) -> None:
    svc = platform.service
    with pytest.raises(RecordError) as info:
        await svc.create("CONVERSATIONS", {"jid1": "a", "jid2": "b"})
    assert (info.value.field, info.value.code) == ("ttl", "required")
    assert str(info.value) == "CONVERSATIONS, ttl: a value is required"
    with pytest.raises(RecordError) as info:
        await svc.create("CONVERSATIONS", {"jid1": "", "jid2": "b", "ttl": 1})
    assert info.value.field == "jid1"
    conv = await svc.create("CONVERSATIONS", {"jid1": "a", "jid2": "b", "ttl": 1})
    with pytest.raises(RecordError) as info:
        await svc.update("CONVERSATIONS", conv.id, {"ttl": None})
    assert (info.value.field, info.value.record) == ("ttl", conv.id)
    with pytest.raises(RecordError) as info:
        await svc.create("BEDS", {"bed_number": "A"})
    assert (info.value.field, info.value.code) == ("room", "required")
    assert (await svc.get("CONVERSATIONS", conv.id)).values["ttl"] == 1


async def test_duplicate_keys(platform: Platform) -> None:
    svc = platform.service
    h = await _hospital(svc)
    platform.events.clear()
    with pytest.raises(ConflictError) as info:
        await svc.create("BEDS", {"bed_number": "A", "room": ROOM_101})
    assert info.value.code == "duplicate-key"
    assert f"BEDS: record {h.bed} already has the key bed_number='A', room={h.room}" == str(
        info.value
    )
    other = await svc.create("BEDS", {"bed_number": "B", "room": h.room})
    with pytest.raises(ConflictError) as info:
        await svc.update("BEDS", other.id, {"bed_number": "A"})
    assert info.value.code == "duplicate-key"
    # Updating a record to its own key is no conflict.
    await svc.update("BEDS", h.bed, {"bed_number": "A"})
    # The same key in another room is another record.
    await svc.create("BEDS", {"bed_number": "A", "room": h.other_room})
