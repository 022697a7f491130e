"""The record writer's bulk statements on SQLite and PostgreSQL (insert_many, update_many, …)."""

from __future__ import annotations

from datetime import UTC, datetime

from carewire.datasets.model import RecordId
from tests.datasets import conftest as datasets_conftest
from tests.datasets.conftest import Platform

platform = datasets_conftest.platform

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_insert_many_fills_missing_fields_with_null_and_keeps_order(
    platform: Platform,
) -> None:
    ds = platform.registry.get("IDENTITIES")
    async with platform.store.write("test") as w:
        ids = await w.insert_many(ds, [{"name": "a"}, {}, {"name": "c"}])
        assert await w.insert_many(ds, []) == []
        got = await w.get_many(ds, ids)
    assert [got[i].get("name") for i in ids] == ["a", None, "c"]
    assert ids == sorted(ids)


async def test_update_many_with_different_fields_per_record(platform: Platform) -> None:
    ds = platform.registry.get("CONVERSATIONS")
    async with platform.store.write("test") as w:
        ids = await w.insert_many(ds, [{"jid1": f"a{n}", "jid2": "b", "ttl": 1} for n in range(3)])
        await w.update_many(
            ds,
            [
                (ids[0], {"ttl": 5}),
                (ids[1], {"ttl": 6, "topic": "t"}),
                (ids[2], {}),
                (ids[2], {"topic": "u"}),
            ],
        )
    got = await platform.store.get_many(ds, ids)
    assert [(got[i].get("ttl"), got[i].get("topic")) for i in ids] == [
        (5, None),
        (6, "t"),
        (1, "u"),
    ]


async def test_find_many_by_key_single_and_composite(platform: Platform) -> None:
    people = platform.registry.get("IDENTITIES")
    convs = platform.registry.get("CONVERSATIONS")
    async with platform.store.write("test") as w:
        ids = await w.insert_many(people, [{"name": f"p{n}"} for n in range(600)])
        await w.insert_many(convs, [{"jid1": "a", "jid2": "b", "ttl": 1}])
        found = await w.find_many_by_key(people, [{"name": f"p{n}"} for n in range(0, 700, 2)])
        assert sorted(r.id for r in found) == ids[0:600:2]
        pair = await w.find_many_by_key(
            convs, [{"jid1": "a", "jid2": "b"}, {"jid1": "b", "jid2": "a"}]
        )
        assert [(r.get("jid1"), r.get("jid2")) for r in pair] == [("a", "b")]
        assert await w.find_many_by_key(people, []) == []


async def test_insert_links_of_new_records(platform: Platform) -> None:
    msgs = platform.registry.get("MESSAGES")
    people = platform.registry.get("IDENTITIES")
    link = msgs.link("recipients")
    assert link is not None
    async with platform.store.write("test") as w:
        p = await w.insert_many(people, [{"name": "a"}, {"name": "b"}])
        m = await w.insert_many(
            msgs, [{"uuid": f"u{n}", "received_at": T0, "sent_at": T0} for n in range(2)]
        )
        await w.insert_links(msgs, link, [(m[0], p[0]), (m[0], p[1]), (m[1], p[1]), (m[1], p[1])])
        await w.insert_links(msgs, link, [])
    follow = await platform.store.follow(msgs, link, m)
    assert follow == {m[0]: [p[0], p[1]], m[1]: [p[1]]}
    assert all(isinstance(i, int) for i in follow) and RecordId(m[0]) == m[0]
