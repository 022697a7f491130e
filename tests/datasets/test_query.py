"""Record queries: filter and sort parsing, paging limits, and queries run on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carewire.datasets.query import (
    MAX_LIMIT,
    Filter,
    FilterOp,
    Page,
    Query,
    Sort,
    parse_filter,
    parse_sort,
)
from carewire.datasets.service import DatasetService
from carewire.datasets.values import RecordError
from carewire.errors import ValidationError
from tests.datasets.conftest import Platform

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status:eq:Queued", Filter(field="status", op=FilterOp.EQ, value="Queued")),
        ("status:ne:Error", Filter(field="status", op=FilterOp.NE, value="Error")),
        ("ttl:lt:30", Filter(field="ttl", op=FilterOp.LT, value="30")),
        ("ttl:le:30", Filter(field="ttl", op=FilterOp.LE, value="30")),
        ("ttl:gt:30", Filter(field="ttl", op=FilterOp.GT, value="30")),
        ("ttl:ge:30", Filter(field="ttl", op=FilterOp.GE, value="30")),
        ("level:in:1,2", Filter(field="level", op=FilterOp.IN, value=["1", "2"])),
        ("level:in:1", Filter(field="level", op=FilterOp.IN, value=["1"])),
        ("topic:contains:ICU", Filter(field="topic", op=FilterOp.CONTAINS, value="ICU")),
        ("topic:empty", Filter(field="topic", op=FilterOp.EMPTY)),
        ("topic:not_empty", Filter(field="topic", op=FilterOp.NOT_EMPTY)),
        ("topic:empty:ignored", Filter(field="topic", op=FilterOp.EMPTY)),
        ("status=Queued", Filter(field="status", op=FilterOp.EQ, value="Queued")),
        ("status=", Filter(field="status", op=FilterOp.EQ, value="")),
        ("status:eq:", Filter(field="status", op=FilterOp.EQ, value="")),
        # Everything after the operator is the value, colons included.
        (
            "sent_at:gt:2026-01-31T08:00:00Z",
            Filter(field="sent_at", op=FilterOp.GT, value="2026-01-31T08:00:00Z"),
        ),
        ("nick:eq:a=b", Filter(field="nick", op=FilterOp.EQ, value="a=b")),
    ],
)
def test_parse_filter(text: str, expected: Filter) -> None:
    assert parse_filter(text) == expected


def test_parse_filter_bare_form_with_a_colon_in_the_value() -> None:
    assert parse_filter("sent_at=2026-01-31T08:00:00Z") == Filter(
        field="sent_at", op=FilterOp.EQ, value="2026-01-31T08:00:00Z"
    )


@pytest.mark.parametrize("text", ["status:bogus:x", "status", "status:", "status:EQ:x", ""])
def test_parse_filter_unknown_operator(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_filter(text)
    message = str(info.value)
    assert "unknown operator" in message
    assert repr(text) in message
    assert "eq, ne, lt, le, gt, ge, in, contains, empty, not_empty" in message


@pytest.mark.parametrize("text", ["status:eq", "level:in", "ttl:gt"])
def test_parse_filter_missing_value(text: str) -> None:
    with pytest.raises(ValidationError, match=r"needs a value"):
        parse_filter(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name", (Sort(field="name"),)),
        ("-name", (Sort(field="name", is_descending=True),)),
        (
            "status,-sent_at,id",
            (
                Sort(field="status"),
                Sort(field="sent_at", is_descending=True),
                Sort(field="id"),
            ),
        ),
        (" a , -b ,,", (Sort(field="a"), Sort(field="b", is_descending=True))),
        ("", ()),
        (",", ()),
    ],
)
def test_parse_sort(text: str, expected: tuple[Sort, ...]) -> None:
    assert parse_sort(text) == expected


def test_query_defaults() -> None:
    q = Query()
    assert (q.filters, q.sort, q.offset, q.limit) == ((), (), 0, 100)


@pytest.mark.parametrize("limit", [1, 50, MAX_LIMIT])
def test_query_accepts_limits(limit: int) -> None:
    assert Query(limit=limit).limit == limit


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1])
def test_query_refuses_limits(limit: int) -> None:
    with pytest.raises(ValidationError, match=f"limit must be between 1 and {MAX_LIMIT}"):
        Query(limit=limit)


def test_query_offset() -> None:
    assert Query(offset=5000).offset == 5000
    with pytest.raises(ValidationError, match=r"offset must be between 0 and \d+, not -1"):
        Query(offset=-1)
    with pytest.raises(ValidationError, match=r"offset must be between 0 and"):
        Query(offset=2**63)  # would not fit the database's 64-bit OFFSET


def test_max_limit() -> None:
    assert MAX_LIMIT == 1000


# --- queries on the database -----------------------------------------------------------------


async def _calls(svc: DatasetService) -> list[int]:
    rows: list[dict[str, object]] = [
        {
            "caller": "ann",
            "phone_number": "555-0101",
            "deleted": False,
            "timestamp": T0,
            "result": "answered",
            "call_type": "Incoming",
        },
        {
            "caller": "bob",
            "phone_number": "555-0102",
            "deleted": True,
            "timestamp": T0 + timedelta(hours=1),
            "result": "",
            "call_type": "Outgoing",
        },
        {"caller": "cat", "timestamp": T0 + timedelta(hours=2), "call_type": "Incoming"},
        {
            "caller": "dan",
            "phone_number": "100%",
            "deleted": False,
            "timestamp": T0 + timedelta(hours=3),
            "result": "busy",
            "call_type": "Broadcast",
        },
        {
            "caller": "ann",
            "phone_number": "1000",
            "deleted": True,
            "result": "answered",
            "call_type": "Incoming",
        },
    ]
    return [(await svc.create("CALL_LOG_HISTORY", row)).id for row in rows]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("caller:eq:ann", [1, 5]),
        ("caller=bob", [2]),
        ("caller:ne:ann", [2, 3, 4]),
        ("phone_number:ne:555-0101", [2, 3, 4, 5]),
        ("caller:lt:bob", [1, 5]),
        ("timestamp:lt:2026-01-01T02:00:00Z", [1, 2]),
        ("timestamp:le:2026-01-01T02:00:00Z", [1, 2, 3]),
        ("timestamp:gt:2026-01-01T01:00:00Z", [3, 4]),
        ("timestamp:ge:2026-01-01T01:00:00Z", [2, 3, 4]),
        ("timestamp:eq:2026-01-01T03:00:00+02:00", [2]),
        ("caller:in:ann,cat", [1, 3, 5]),
        ("phone_number:contains:555", [1, 2]),
        ("phone_number:contains:%", [4]),
        ("phone_number:contains:0_", []),
        ("result:empty", [2, 3]),
        ("result:not_empty", [1, 4, 5]),
        ("deleted:eq:true", [2, 5]),
        ("deleted:eq:f", [1, 4]),
        ("deleted:empty", [3]),
        ("deleted:not_empty", [1, 2, 4, 5]),
        ("timestamp:empty", [5]),
    ],
)
async def test_query_filters(platform: Platform, text: str, expected: list[int]) -> None:
    ids = await _calls(platform.service)
    page = await platform.service.query("CALL_LOG_HISTORY", Query(filters=(parse_filter(text),)))
    assert [r.id for r in page.records] == [ids[i - 1] for i in expected]
    assert page.total == len(expected)


async def test_query_typed_filters(platform: Platform) -> None:
    svc = platform.service
    for mrn, dob in (("1", "1950-06-01"), ("2", "1990-01-15"), ("3", None)):
        await svc.create("PATIENTS", {"mrn": mrn, "dob": dob})
    # dob is PHI: a typed equality goes through its blind index, a range is refused.
    page = await svc.query("PATIENTS", Query(filters=(parse_filter("dob:eq:1950-06-01"),)))
    assert [r.values["mrn"] for r in page.records] == ["1"]
    with pytest.raises(RecordError) as refused:
        await svc.query("PATIENTS", Query(filters=(parse_filter("dob:lt:1980-01-01"),)))
    assert refused.value.code == "phi-field"
    for ms in (50, 150, 250):
        await svc.create(
            "DELIVERIES", {"status": "Delivered", "triggered_at": T0, "processing_time": ms}
        )
    query = Query(
        filters=(parse_filter("processing_time:gt:100"), parse_filter("status:eq:Delivered"))
    )
    page = await svc.query("DELIVERIES", query)
    assert [r.values["processing_time"] for r in page.records] == [150, 250]
    page = await svc.query(
        "DELIVERIES", Query(filters=(Filter(field="processing_time", op=FilterOp.IN, value=50),))
    )
    assert page.total == 1


async def test_query_sorting_and_paging(platform: Platform) -> None:
    ids = await _calls(platform.service)
    everything = (parse_filter("caller:not_empty"),)

    async def order(sort: str, offset: int = 0, limit: int = 100) -> tuple[list[int], int]:
        query = Query(filters=everything, sort=parse_sort(sort), offset=offset, limit=limit)
        page = await platform.service.query("CALL_LOG_HISTORY", query)
        return [ids.index(r.id) + 1 for r in page.records], page.total

    assert await order("caller") == ([1, 5, 2, 3, 4], 5)
    assert await order("-caller") == ([4, 3, 2, 1, 5], 5)
    assert await order("call_type,-caller") == ([4, 3, 1, 5, 2], 5)
    assert await order("-id") == ([5, 4, 3, 2, 1], 5)
    assert await order("caller", limit=2) == ([1, 5], 5)
    assert await order("caller", offset=2, limit=2) == ([2, 3], 5)
    assert await order("caller", offset=4, limit=2) == ([4], 5)
    assert await order("caller", offset=10) == ([], 5)


async def test_query_sort_by_id_descending_after_another_key(platform: Platform) -> None:
    ids = await _calls(platform.service)
    query = Query(
        filters=(parse_filter("caller:eq:ann"),),
        sort=(Sort(field="caller"), Sort(field="id", is_descending=True)),
    )
    page = await platform.service.query("CALL_LOG_HISTORY", query)
    assert [r.id for r in page.records] == [ids[4], ids[0]]


async def test_query_without_filters(platform: Platform) -> None:
    assert await platform.service.query("SITES", Query()) == Page(records=(), total=0)
    sites = [await platform.service.create("SITES", {"name": n}) for n in ("b", "a")]
    page = await platform.service.query("SITES", Query(sort=parse_sort("name")))
    assert page.total == 2
    assert [r.id for r in page.records] == [sites[1].id, sites[0].id]
    assert page.records[0].values == {"name": "a"}


async def test_query_on_a_to_one_link(platform: Platform) -> None:
    svc = platform.service
    facility = await svc.create("FACILITIES", {"name": "Main"})
    room, other_room = [
        (await svc.create("ROOMS", {"room_number": n, "facility": facility.id})).id
        for n in ("101", "102")
    ]
    bed = await svc.create("BEDS", {"bed_number": "A", "room": room})
    b2 = await svc.create("BEDS", {"bed_number": "B", "room": other_room})
    b3 = await svc.create("BEDS", {"bed_number": "C", "room": room})

    async def beds(*filters: str, sort: str = "") -> list[int]:
        query = Query(filters=tuple(parse_filter(f) for f in filters), sort=parse_sort(sort))
        return [r.id for r in (await svc.query("BEDS", query)).records]

    assert await beds(f"room:eq:{room}") == [bed.id, b3.id]
    assert await beds(f"room:ne:{room}") == [b2.id]
    assert await beds(f"room:in:{room},{other_room}", sort="-room") == [b2.id, bed.id, b3.id]
    assert await beds("room:not_empty", "bed_number:in:B,C") == [b2.id, b3.id]
    rooms = await svc.query("ROOMS", Query(filters=(parse_filter("unit:empty"),)))
    assert rooms.total == 2


@pytest.mark.parametrize(
    ("dataset", "query", "code"),
    [
        pytest.param(
            "BEDS", Query(filters=(parse_filter("colour:eq:red"),)), "unknown-field", id="filter"
        ),
        pytest.param(
            "BEDS", Query(filters=(parse_filter("locs:eq:1"),)), "unknown-field", id="filter-m2m"
        ),
        pytest.param(
            "ROOMS",
            Query(filters=(parse_filter("beds:eq:1"),)),
            "unknown-field",
            id="filter-reverse",
        ),
        pytest.param(
            "BEDS", Query(filters=(parse_filter("room:eq:abc"),)), "wrong-type", id="link-value"
        ),
        pytest.param(
            "CONVERSATIONS",
            Query(filters=(parse_filter("ttl:gt:soon"),)),
            "wrong-type",
            id="attr-value",
        ),
        pytest.param(
            "CONVERSATIONS",
            Query(filters=(parse_filter("ttl:in:1,x"),)),
            "wrong-type",
            id="in-value",
        ),
        pytest.param("BEDS", Query(sort=parse_sort("colour")), "unknown-field", id="sort"),
        pytest.param("BEDS", Query(sort=parse_sort("locs")), "invalid-record", id="sort-m2m"),
        pytest.param("ROOMS", Query(sort=parse_sort("-beds")), "invalid-record", id="sort-1n"),
    ],
)
async def test_query_errors(platform: Platform, dataset: str, query: Query, code: str) -> None:
    with pytest.raises(RecordError) as info:
        await platform.service.query(dataset, query)
    assert info.value.code == code
    assert info.value.dataset == dataset
