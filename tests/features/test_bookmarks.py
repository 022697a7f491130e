"""Room bookmarks in private XML storage become CONVERSATIONS.bookmarked_users."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carewire.datasets.paths import PathResolver, parse_path
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.features.bookmarks import Bookmarks
from tests.features.harness import Harness, make_harness


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, with_platform=True)
    yield harness
    await harness.close()


def _storage(h: Harness, *rooms: str) -> str:
    items = "".join(f"<conference jid='{r}' autojoin='true'/>" for r in rooms)
    return (
        "<iq type='set' id='b1'><query xmlns='jabber:iq:private'>"
        f"<storage xmlns='storage:bookmarks'>{items}</storage></query></iq>"
    )


async def _bookmarked(h: Harness, login: str) -> list[str]:
    """The rooms ``login`` bookmarked, read back through the USERS.bookmarks link."""
    assert h.platform is not None
    bookmarks = h.kernel.ctx.require(Bookmarks)
    assert bookmarks is not None
    await bookmarks.settle()  # the write runs beside the IQ's answer
    users = await h.platform.datasets.query(
        "USERS", Query(filters=(Filter(field="login", op=FilterOp.EQ, value=login),))
    )
    if not users.records:
        return []
    resolver = h.kernel.ctx.require(PathResolver)
    assert resolver is not None
    path = parse_path(h.platform.registry, "USERS", "bookmarks.jid1")
    rooms = await resolver.resolve(users.records[0], path)
    assert isinstance(rooms, list)
    return sorted(str(r) for r in rooms)


async def test_bookmarks_follow_the_private_storage(h: Harness) -> None:
    assert h.platform is not None
    from carewire.features.muc.service import MucService

    muc = h.kernel.ctx.require(MucService)
    assert muc is not None
    a = str(await muc.create_room(name="rounds", subject="Rounds"))
    b = str(await muc.create_room(name="icu", subject="ICU"))
    await h.kernel.ctx.durability.flush()
    session, sink = await h.login("ana")
    await h.send(session, _storage(h, a, b, "someone@elsewhere.example", "not a jid@@"))
    [reply] = [m for m in sink.take() if m.get("id") == "b1"]
    assert reply.get("type") == "result"  # stored as before
    assert await _bookmarked(h, "ana") == sorted([a, b])

    await h.send(session, _storage(h, b))
    assert await _bookmarked(h, "ana") == [b]
    await h.send(session, _storage(h))
    assert await _bookmarked(h, "ana") == []


async def test_pep_bookmarks_feed_the_same_link(h: Harness) -> None:
    """XEP-0402: a PEP bookmark publish and retract set CONVERSATIONS.bookmarked_users too."""
    from carewire.features.muc.service import MucService
    from tests.features.pep_helpers import publish

    muc = h.kernel.ctx.require(MucService)
    room = str(await muc.create_room(name="pharmacy", subject="Pharmacy"))
    await h.kernel.ctx.durability.flush()
    session, sink = await h.login("ana")
    payload = "<conference xmlns='urn:xmpp:bookmarks:1' name='Pharmacy' autojoin='true'/>"
    await h.send(session, publish("urn:xmpp:bookmarks:1", payload, room))
    [reply] = [m for m in sink.take() if m.get("id") == "pub"]
    assert reply.get("type") == "result"
    assert await _bookmarked(h, "ana") == [room]
    retract = (
        "<iq type='set' id='r'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
        f"<retract node='urn:xmpp:bookmarks:1'><item id='{room}'/></retract></pubsub></iq>"
    )
    await h.send(session, retract)
    assert await _bookmarked(h, "ana") == []
