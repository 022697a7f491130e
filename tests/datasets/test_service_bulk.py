"""Bulk writes of the dataset service (create_many, update_many, find_many) on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from carewire.datasets.model import ChangeKind, RecordId
from carewire.datasets.query import Query
from carewire.datasets.service import DatasetService, RecordNotFoundError
from carewire.datasets.values import RecordError
from carewire.errors import ConflictError
from tests.datasets.conftest import Platform

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Statements:
    """How many SQL statements were sent while counting (an executemany counts once)."""

    def __init__(self) -> None:
        self.count = 0

    def on_execute(self, *_args: object) -> None:
        self.count += 1


@contextmanager
def counting() -> Iterator[Statements]:
    stmts = Statements()
    event.listen(Engine, "before_cursor_execute", stmts.on_execute)
    try:
        yield stmts
    finally:
        event.remove(Engine, "before_cursor_execute", stmts.on_execute)


async def _people(svc: DatasetService, *names: str) -> list[int]:
    return [(await svc.create("IDENTITIES", {"name": n})).id for n in names]


async def _conversation(svc: DatasetService) -> int:
    return (await svc.create("CONVERSATIONS", {"jid1": "a@x", "jid2": "b@x", "ttl": 5})).id


def _message(n: int, conv: int, sender: int | None, recipients: list[int]) -> dict[str, object]:
    return {
        "uuid": f"m{n}",
        "received_at": T0 + timedelta(seconds=n),
        "sent_at": (T0 + timedelta(seconds=n)).isoformat(),  # typed like create does
        "message": f"body {n}",
        "conversation": conv,
        "from": sender,
        "recipients": recipients,
    }


async def _count(platform: Platform, dataset: str) -> int:
    return (await platform.service.query(dataset, Query(limit=1))).total


async def test_create_many_writes_what_create_would(platform: Platform) -> None:
    svc = platform.service
    alice, bob, carol = await _people(svc, "a@x", "b@x", "c@x")
    conv = await _conversation(svc)
    platform.events.clear()
    async with svc.batch() as b:
        recs = await b.create_many(
            "MESSAGES", [_message(n, conv, alice, [bob, carol][: n % 2 + 1]) for n in range(5)]
        )
        assert platform.events == []  # announced only after the commit
    single = await svc.create("MESSAGES", _message(9, conv, alice, [carol, bob]))
    assert [r.values["uuid"] for r in recs] == [f"m{n}" for n in range(5)]
    for n, rec in enumerate(recs):
        stored = await svc.get("MESSAGES", rec.id)
        assert stored.values["uuid"] == f"m{n}"
        assert stored.values["sent_at"] == T0 + timedelta(seconds=n)
        assert stored.values["conversation"] == conv
        assert rec.values["recipients"] == sorted([bob, carol][: n % 2 + 1])
        ds = platform.registry.get("MESSAGES")
        link = ds.link("recipients")
        assert link is not None
        follow = await platform.store.follow(ds, link, [rec.id])
        assert follow[rec.id] == rec.values["recipients"]
    # Same shape of values and event as a single create.
    assert set(recs[0].values) == set(single.values)
    assert [(e.dataset, e.record_id, e.kind) for e in platform.events] == [
        ("MESSAGES", r.id, ChangeKind.CREATE) for r in [*recs, single]
    ]
    assert platform.events[0].new == recs[0].values
    assert platform.events[0].old is None


async def test_create_many_of_nothing(platform: Platform) -> None:
    async with platform.service.batch() as b:
        assert await b.create_many("MESSAGES", []) == []
    assert platform.events == []


async def test_create_many_keeps_row_order_across_pages(platform: Platform) -> None:
    """More rows than one multi-row INSERT takes: ids still follow the rows."""
    svc = platform.service
    (alice,) = await _people(svc, "a@x")
    conv = await _conversation(svc)
    rows = [_message(n, conv, alice, []) for n in range(1205)]
    async with svc.batch() as b:
        recs = await b.create_many("MESSAGES", rows)
    stored = await platform.store.get_many(platform.registry.get("MESSAGES"), [r.id for r in recs])
    assert [stored[r.id].values["uuid"] for r in recs] == [f"m{n}" for n in range(1205)]
    assert [r.id for r in recs] == sorted(r.id for r in recs)


async def test_create_many_costs_the_same_statements_for_few_or_many(
    platform: Platform,
) -> None:
    svc = platform.service
    people = await _people(svc, "a@x", "b@x", "c@x")
    conv = await _conversation(svc)
    counts = []
    for start, n in ((0, 3), (100, 150)):
        rows = [_message(start + i, conv, people[0], people[1:]) for i in range(n)]
        with counting() as stmts:
            async with svc.batch() as b:
                await b.create_many("MESSAGES", rows)
        counts.append(stmts.count)
    assert counts[0] == counts[1]
    assert counts[1] <= 8  # link checks, key check, insert, link rows (+ transaction)


@pytest.mark.parametrize(
    ("bad", "field", "code"),
    [
        pytest.param({"received_at": "soon"}, "received_at", "wrong-type", id="type"),
        pytest.param({"received_at": None}, "received_at", "required", id="required"),
        pytest.param({"colour": "red"}, "colour", "unknown-field", id="unknown"),
        pytest.param({"conversation": 999_999}, "conversation", "dangling-link", id="to-one"),
        pytest.param({"recipients": [999_999]}, "recipients", "dangling-link", id="m:n"),
        pytest.param({"recipients": "x"}, "recipients", "invalid-record", id="not-a-list"),
    ],
)
async def test_create_many_refuses_a_bad_row_and_writes_nothing(
    platform: Platform, bad: dict[str, object], field: str, code: str
) -> None:
    svc = platform.service
    alice, bob = await _people(svc, "a@x", "b@x")
    conv = await _conversation(svc)
    platform.events.clear()
    rows = [_message(n, conv, alice, [bob]) for n in range(4)]
    rows[2] = {**rows[2], **bad}
    with pytest.raises(RecordError) as info:
        async with svc.batch() as b:
            await b.create_many("MESSAGES", rows)
    assert (info.value.dataset, info.value.field, info.value.code) == ("MESSAGES", field, code)
    assert await _count(platform, "MESSAGES") == 0
    assert platform.events == []


async def test_create_many_refuses_taken_and_repeated_keys(platform: Platform) -> None:
    svc = platform.service
    alice, bob = await _people(svc, "a@x", "b@x")
    conv = await _conversation(svc)
    first = await svc.create("MESSAGES", _message(1, conv, alice, [bob]))
    with pytest.raises(ConflictError) as info:
        async with svc.batch() as b:
            await b.create_many("MESSAGES", [_message(n, conv, alice, [bob]) for n in (0, 1)])
    assert info.value.code == "duplicate-key"
    assert str(info.value) == f"MESSAGES: record {first.id} already has the key uuid='m1'"
    with pytest.raises(ConflictError) as info:
        async with svc.batch() as b:
            await b.create_many("MESSAGES", [_message(n, conv, alice, [bob]) for n in (5, 5)])
    assert str(info.value) == "MESSAGES: two new records have the key uuid='m5'"
    # A composite key (message, recipient) is checked as a whole.
    await svc.create("MESSAGE_DELIVERIES", {"message": first.id, "recipient": bob, "sent_at": T0})
    with pytest.raises(ConflictError, match="already has the key message="):
        async with svc.batch() as b:
            await b.create_many(
                "MESSAGE_DELIVERIES",
                [
                    {"message": first.id, "recipient": alice, "sent_at": T0},
                    {"message": first.id, "recipient": bob, "sent_at": T0},
                ],
            )
    assert await _count(platform, "MESSAGES") == 1
    assert await _count(platform, "MESSAGE_DELIVERIES") == 1


async def test_records_created_in_the_batch_are_link_targets(platform: Platform) -> None:
    svc = platform.service
    conv = await _conversation(svc)
    async with svc.batch() as b:
        person = await b.create("IDENTITIES", {"name": "new@x"})
        msgs = await b.create_many("MESSAGES", [_message(0, conv, person.id, [person.id])])
        await b.create_many(
            "MESSAGE_DELIVERIES",
            [{"message": msgs[0].id, "recipient": person.id, "sent_at": T0}],
        )
    assert await _count(platform, "MESSAGE_DELIVERIES") == 1
    # A record deleted in the batch is no link target any more.
    with pytest.raises(RecordError) as info:
        async with svc.batch() as b:
            gone = await b.create("IDENTITIES", {"name": "gone@x"})
            await b.delete("IDENTITIES", gone.id)
            await b.create_many("MESSAGES", [_message(1, conv, gone.id, [])])
    assert info.value.code == "dangling-link"


async def test_update_many(platform: Platform) -> None:
    svc = platform.service
    alice, bob = await _people(svc, "a@x", "b@x")
    conv = await _conversation(svc)
    msgs = [await svc.create("MESSAGES", _message(n, conv, alice, [bob])) for n in range(3)]
    platform.events.clear()
    async with svc.batch() as b:
        out = await b.update_many(
            "MESSAGES",
            [
                (msgs[0].id, {"state": "expired"}),
                (msgs[1].id, {"state": "expired", "nick": "n"}),
                (msgs[0].id, {"nick": "later", "from": bob}),
            ],
        )
    assert [r.id for r in out] == [msgs[0].id, msgs[1].id, msgs[0].id]
    assert out[0].values["nick"] is None and out[2].values["nick"] == "later"
    first = await svc.get("MESSAGES", msgs[0].id)
    assert (first.values["state"], first.values["nick"], first.values["from"]) == (
        "expired",
        "later",
        bob,
    )
    assert (await svc.get("MESSAGES", msgs[1].id)).values["nick"] == "n"
    assert (await svc.get("MESSAGES", msgs[2].id)).values["state"] is None
    assert [(e.record_id, e.kind) for e in platform.events] == [
        (msgs[0].id, ChangeKind.UPDATE),
        (msgs[1].id, ChangeKind.UPDATE),
    ]
    assert platform.events[0].old is not None and platform.events[0].old["nick"] is None
    assert platform.events[0].new is not None and platform.events[0].new["nick"] == "later"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        pytest.param({"received_at": "soon"}, RecordError, id="type"),
        pytest.param({"sent_at": None}, RecordError, id="required"),
        pytest.param({"from": 999_999}, RecordError, id="dangling"),
        pytest.param({"colour": 1}, RecordError, id="unknown"),
    ],
)
async def test_update_many_refuses_a_bad_change(
    platform: Platform, change: dict[str, object], error: type[Exception]
) -> None:
    svc = platform.service
    alice, bob = await _people(svc, "a@x", "b@x")
    conv = await _conversation(svc)
    msg = await svc.create("MESSAGES", _message(0, conv, alice, [bob]))
    platform.events.clear()
    with pytest.raises(error):
        async with svc.batch() as b:
            await b.update_many("MESSAGES", [(msg.id, {"nick": "x"}), (msg.id, change)])
    assert (await svc.get("MESSAGES", msg.id)).values["nick"] is None
    assert platform.events == []


async def test_update_many_of_a_missing_record(platform: Platform) -> None:
    svc = platform.service
    conv = await _conversation(svc)
    msg = await svc.create("MESSAGES", _message(0, conv, None, []))
    for rid in (999_999, 0, -3):
        with pytest.raises(RecordNotFoundError):
            async with svc.batch() as b:
                await b.update_many("MESSAGES", [(msg.id, {"nick": "x"}), (rid, {"nick": "y"})])
    assert (await svc.get("MESSAGES", msg.id)).values["nick"] is None


async def test_update_many_of_links_and_keys_goes_one_by_one(platform: Platform) -> None:
    svc = platform.service
    alice, bob = await _people(svc, "a@x", "b@x")
    conv = await _conversation(svc)
    msgs = [await svc.create("MESSAGES", _message(n, conv, alice, [])) for n in range(2)]
    async with svc.batch() as b:
        out = await b.update_many(
            "MESSAGES", [(msgs[0].id, {"recipients": [bob]}), (msgs[1].id, {"uuid": "new"})]
        )
    assert out[0].values["recipients"] == [bob]
    assert (await svc.get("MESSAGES", msgs[1].id)).values["uuid"] == "new"
    with pytest.raises(ConflictError):
        async with svc.batch() as b:
            await b.update_many("MESSAGES", [(msgs[0].id, {"uuid": "new"})])


async def test_find_many(platform: Platform) -> None:
    svc = platform.service
    alice, bob = await _people(svc, "a@x", "b@x")
    conv = await _conversation(svc)
    msg = await svc.create("MESSAGES", _message(0, conv, alice, [bob]))
    dlv = await svc.create(
        "MESSAGE_DELIVERIES", {"message": msg.id, "recipient": bob, "sent_at": T0}
    )
    async with svc.batch() as b:
        found = await b.find_many(
            "MESSAGE_DELIVERIES",
            [
                {"message": msg.id, "recipient": bob},
                {"message": msg.id, "recipient": alice},
                {"message": msg.id, "recipient": None},
            ],
        )
        assert [r.id for r in found] == [dlv.id]
        assert [r.id for r in await b.find_many("MESSAGES", [{"uuid": "m0"}])] == [msg.id]
        assert await b.find_many("MESSAGES", []) == []
        with pytest.raises(RecordError, match="a key names exactly"):
            await b.find_many("MESSAGE_DELIVERIES", [{"message": msg.id}])
        with pytest.raises(RecordError, match="has no key"):
            await b.find_many("CONVERSATION_HISTORY", [{}])


async def test_find_many_in_chunks(platform: Platform) -> None:
    svc = platform.service
    conv = await _conversation(svc)
    async with svc.batch() as b:
        await b.create_many("MESSAGES", [_message(n, conv, None, []) for n in range(3)])
        keys = [{"uuid": f"m{n}"} for n in range(1200)]
        found = await b.find_many("MESSAGES", keys)
    assert sorted(str(r.values["uuid"]) for r in found) == ["m0", "m1", "m2"]
    assert all(isinstance(r.id, int) for r in found)
    assert RecordId(found[0].id) == found[0].id


async def test_vouched_create_many_skips_the_lookups_and_the_database_keeps_the_promise(
    platform: Platform,
) -> None:
    """Vouched rows cost the insert alone; a broken promise is still refused, nothing written."""
    svc = platform.service
    alice, bob = await _people(svc, "a@x", "b@x")
    conv = await _conversation(svc)
    rows = [_message(n, conv, alice, [bob]) for n in range(3)]
    with counting() as plain:
        async with svc.batch() as b:
            await b.create_many("MESSAGES", rows)
    with counting() as vouched:
        async with svc.batch() as b:
            made = await b.create_many(
                "MESSAGES", [_message(n, conv, alice, [bob]) for n in (3, 4, 5)], vouched=True
            )
    assert vouched.count < plain.count  # no key look-up, no link-target look-up
    assert [r.values["uuid"] for r in made] == ["m3", "m4", "m5"]
    assert await _count(platform, "MESSAGES") == 6
    # Still typed and checked field by field.
    with pytest.raises(RecordError):
        async with svc.batch() as b:
            bad_field = {**_message(9, conv, alice, [bob]), "ttl": 1}
            await b.create_many("MESSAGES", [bad_field], vouched=True)
    # A taken key and a dangling link: the database's constraints refuse them.
    for bad in (_message(1, conv, alice, [bob]), _message(7, conv, 987654, [bob])):
        with pytest.raises(ConflictError, match="duplicate key or a link to a record just"):
            async with svc.batch() as b:
                await b.create_many(
                    "MESSAGES", [_message(8, conv, alice, [bob]), bad], vouched=True
                )
    assert await _count(platform, "MESSAGES") == 6
