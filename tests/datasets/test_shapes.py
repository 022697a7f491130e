"""Row shapes: vouched bulk rows checked once per shape, never more leniently than one by one."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from carewire.datasets.model import Attribute, AttrType, Dataset, RecordChanged
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.datasets.service import DatasetService
from carewire.datasets.shapes import Shapes, shape_for
from carewire.datasets.values import RecordError
from tests.datasets.conftest import Platform

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def _setup(svc: DatasetService) -> tuple[int, int, int]:
    alice = (await svc.create("IDENTITIES", {"name": "a@x"})).id
    bob = (await svc.create("IDENTITIES", {"name": "b@x"})).id
    conv = (await svc.create("CONVERSATIONS", {"jid1": "a@x", "jid2": "b@x", "ttl": 5})).id
    return alice, bob, conv


def _row(n: int, conv: int, alice: int, bob: int) -> dict[str, object]:
    return {
        "uuid": f"m{n}",
        "received_at": T0 + timedelta(seconds=n),
        "sent_at": T0,
        "message": f"body {n}",
        "conversation": conv,
        "from": alice,
        "recipients": [bob],
    }


async def test_fast_rows_are_stored_and_announced_as_the_generic_path_would(
    platform: Platform,
) -> None:
    svc = platform.service
    alice, bob, conv = await _setup(svc)
    platform.events.clear()
    async with svc.batch() as b:
        generic = await b.create_many("MESSAGES", [_row(1, conv, alice, bob)])
    async with svc.batch() as b:
        fast = await b.create_many("MESSAGES", [_row(2, conv, alice, bob)], vouched=True)
    one, two = (await svc.get("MESSAGES", generic[0].id)), (await svc.get("MESSAGES", fast[0].id))
    differs = {"uuid", "received_at", "message"}
    assert {k: v for k, v in one.values.items() if k not in differs} == {
        k: v for k, v in two.values.items() if k not in differs
    }
    assert two.values["received_at"] == T0 + timedelta(seconds=2)
    first, second = platform.events[-2:]
    assert set(first.new or {}) == set(second.new or {})  # every column, and the m:n links
    assert first.new is not None and second.new is not None
    assert first.new["recipients"] == second.new["recipients"] == [bob]


@pytest.mark.parametrize(
    ("change", "stored"),
    [
        ({"message": 42}, "42"),  # a number for text: converted, as create does
        ({"received_at": (T0 + timedelta(hours=1)).astimezone(timezone(timedelta(hours=2)))}, None),
        ({"received_at": (T0 + timedelta(hours=1)).isoformat()}, None),
    ],
)
async def test_values_of_another_type_take_the_generic_path(
    platform: Platform, change: dict[str, object], stored: object
) -> None:
    svc = platform.service
    alice, bob, conv = await _setup(svc)
    async with svc.batch() as b:
        recs = await b.create_many(
            "MESSAGES",
            [_row(1, conv, alice, bob), {**_row(2, conv, alice, bob), **change}],
            vouched=True,
        )
    rec = await svc.get("MESSAGES", recs[1].id)
    if stored is not None:
        assert rec.values["message"] == stored
    else:
        assert rec.values["received_at"] == T0 + timedelta(hours=1)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"received_at": datetime(2026, 1, 1)}, "a time zone is required"),
        ({"received_at": 5}, "expected an ISO 8601 date and time"),
        ({"conversation": True}, "is not a record id"),
        ({"recipients": [0]}, "is not a record id"),
        ({"recipients": None}, "an m:n link takes a list"),
        ({"uuid": ""}, "a value is required"),
        ({"no_such_field": 1}, "unknown attribute or link"),
    ],
)
async def test_bad_values_in_fast_rows_get_the_generic_errors(
    platform: Platform, change: dict[str, object], error: str
) -> None:
    svc = platform.service
    alice, bob, conv = await _setup(svc)
    with pytest.raises(RecordError, match=error):
        async with svc.batch() as b:
            await b.create_many(
                "MESSAGES",
                [_row(1, conv, alice, bob), {**_row(2, conv, alice, bob), **change}],
                vouched=True,
            )
    assert (await svc.query("MESSAGES", Query(limit=1))).total == 0  # nothing of the batch


async def test_a_shape_without_a_required_field_is_refused(platform: Platform) -> None:
    svc = platform.service
    alice, bob, conv = await _setup(svc)
    row = _row(1, conv, alice, bob)
    del row["uuid"]
    with pytest.raises(RecordError, match="a value is required"):
        async with svc.batch() as b:
            await b.create_many("MESSAGES", [row], vouched=True)


def test_shapes_are_worked_out_once_per_definition() -> None:
    when = Attribute(name="at", type=AttrType.DATETIME, is_required=True)
    day = Attribute(name="day", type=AttrType.DATE)
    ds = Dataset(name="THINGS", attributes=(when, day))
    shapes = Shapes(limit=2)
    shape = shapes.get(ds, ("at", "day"))
    assert shape is not None and shapes.get(ds, ("at", "day")) is shape
    assert shapes.get(ds, ("day",)) is None  # "at" is required: every such row would fail
    assert shape.fast_row({"at": T0, "day": date(2026, 1, 1)}) == (
        {"at": T0, "day": date(2026, 1, 1)},
        {},
    )
    assert shape.fast_row({"at": T0, "day": T0}) is None  # a datetime is not a date
    assert shape.fast_row({"at": None, "day": None}) is None  # required
    redefined = Dataset(
        name="THINGS", attributes=(when, day, Attribute(name="x", type=AttrType.STRING))
    )
    again = shapes.get(redefined, ("at", "day"))
    assert again is not None and again is not shape and again.dataset is redefined
    assert shapes.get(ds, ("at", "nope")) is None
    assert shape_for(ds, ("at", "nope")) is None


async def test_subscribers_get_only_the_datasets_they_asked_for(platform: Platform) -> None:
    svc = platform.service
    seen: list[str] = []
    everything: list[str] = []

    def identities(event: RecordChanged) -> None:
        seen.append(event.dataset)

    def anything(event: RecordChanged) -> None:
        everything.append(event.dataset)

    svc.subscribe(identities, ("IDENTITIES",))
    svc.subscribe(anything)
    await _setup(svc)
    assert seen == ["IDENTITIES", "IDENTITIES"]
    assert everything == ["IDENTITIES", "IDENTITIES", "CONVERSATIONS"]
    svc.unsubscribe(identities)
    svc.unsubscribe(identities)  # twice: nothing happens
    await svc.create("IDENTITIES", {"name": "c@x"})
    assert seen == ["IDENTITIES", "IDENTITIES"]
    assert everything[-1] == "IDENTITIES"


async def test_bulk_rows_are_stored_byte_for_byte_as_single_creates(platform: Platform) -> None:
    """The prepared multi-row insert (SQLite) stores what SQLAlchemy's statement stores."""
    svc = platform.service
    alice, bob, conv = await _setup(svc)
    async with svc.batch() as b:
        msgs = await b.create_many(
            "MESSAGES", [_row(n, conv, alice, bob) for n in range(3)], vouched=True
        )
    at = T0 + timedelta(seconds=1, microseconds=0)
    one = await svc.create(
        "MESSAGE_DELIVERIES", {"message": msgs[0].id, "recipient": bob, "sent_at": at}
    )
    async with svc.batch() as b:
        many = await b.create_many(
            "MESSAGE_DELIVERIES",
            [{"message": m.id, "recipient": bob, "sent_at": at} for m in msgs[1:]],
            vouched=True,
        )
    assert [r.id for r in many] == sorted(r.id for r in many) and one.id < many[0].id
    async with platform.db.read("compare") as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT message_id, recipient_id, sent_at"
                    " FROM ds_message_deliveries ORDER BY id"
                )
            )
        ).all()
    assert [r[0] for r in rows] == [m.id for m in msgs]
    assert {(r[1], r[2]) for r in rows} == {(rows[0][1], rows[0][2])}  # same text, same value
    found = await svc.query(
        "MESSAGE_DELIVERIES",
        Query(filters=(Filter(field="sent_at", op=FilterOp.GE, value=at),)),
    )
    assert found.total == 3  # compared as the generic path's values compare
