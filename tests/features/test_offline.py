"""Offline storage (XEP-0160) with delay stamps (XEP-0203), kept for the offline timeout."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from carewire.core import hook_names as H
from carewire.core.events import SessionEvent, StanzaEvent
from carewire.core.feature import FeatureConfig
from carewire.xmpp import ns
from carewire.xmpp.jid import JID
from carewire.xmpp.parser import parse_document
from carewire.xmpp.xml import make
from tests.features.harness import Harness, make_harness

ERR = f"{{{ns.STANZAS_ERR}}}"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(
        tmp_path,
        features=["message", "offline"],
        config=FeatureConfig(offline_ttl=timedelta(days=7), offline_max_per_user=3),
    )
    yield harness
    await harness.close()


async def come_online(h: Harness, login: str) -> list:  # type: ignore[type-arg]
    session, sink = await h.bind(login, "phone")
    session.presence = make(f"{{{ns.CLIENT}}}presence")
    await h.kernel.hooks.fire(H.SESSION_INITIAL_PRESENCE, SessionEvent(session=session))
    return sink.take()


async def test_stored_and_delivered_with_delay(h: Harness) -> None:
    alice, _ = await h.bind("alice", "phone")
    await h.account("bob")
    await h.send(
        alice, "<message to='bob@example.test' type='chat' id='o1'><body>first</body></message>"
    )
    await h.send(alice, "<message to='bob@example.test' id='o2'><body>second</body></message>")
    stamp_time = h.clock.now()
    h.clock.advance(3600)
    got = await come_online(h, "bob")
    assert [m.get("id") for m in got] == ["o1", "o2"]
    delay = got[0].find(f"{{{ns.DELAY}}}delay")
    assert delay is not None and delay.get("from") == "example.test"
    assert delay.get("stamp", "").startswith(stamp_time.strftime("%Y-%m-%dT%H:%M:%S"))
    assert delay.get("stamp", "").endswith("Z")
    assert await h.kernel.stores.offline.count("bob") == 0
    assert await come_online(h, "bob") == []  # delivered once


async def test_what_is_not_stored(h: Harness) -> None:
    alice, _ = await h.bind("alice", "phone")
    await h.account("bob")
    await h.send(alice, "<message to='bob@example.test' type='headline'><body>x</body></message>")
    await h.send(
        alice,
        "<message to='bob@example.test' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
    )
    await h.send(alice, "<message to='bob@example.test' type='error'><body>x</body></message>")
    assert await h.kernel.stores.offline.count("bob") == 0


async def test_expired_messages_are_discarded(h: Harness) -> None:
    alice, _ = await h.bind("alice", "phone")
    await h.account("bob")
    await h.send(alice, "<message to='bob@example.test' type='chat'><body>old</body></message>")
    h.clock.advance(timedelta(days=7, seconds=1).total_seconds())
    assert await come_online(h, "bob") == []


async def test_purge_job(h: Harness) -> None:
    alice, _ = await h.bind("alice", "phone")
    await h.account("bob")
    await h.send(alice, "<message to='bob@example.test' type='chat'><body>old</body></message>")
    h.clock.advance(timedelta(days=8).total_seconds())
    (job,) = [j for j in h.kernel.ctx.jobs if j.name == "offline-purge"]
    await job.run()
    assert await h.kernel.stores.offline.count("bob") == 0


async def test_quota_and_unknown_account(h: Harness) -> None:
    alice, sink = await h.bind("alice", "phone")
    await h.account("bob")
    for i in range(4):
        await h.send(
            alice,
            f"<message to='bob@example.test' type='chat' id='q{i}'><body>{i}</body></message>",
        )
    (err,) = sink.take()
    assert (
        err.get("id") == "q3"
        and err.find(f"{{{ns.CLIENT}}}error/{ERR}resource-constraint") is not None
    )
    await h.send(
        alice, "<message to='ghost@example.test' type='chat' id='g'><body>x</body></message>"
    )
    (err,) = sink.take()
    assert err.find(f"{{{ns.CLIENT}}}error/{ERR}service-unavailable") is not None


async def test_owner_cache_skips_the_store(h: Harness) -> None:
    await h.kernel.hooks.fire(H.SERVER_STARTED, None)  # loads the owner set
    alice, _ = await h.bind("alice", "phone")
    await h.account("bob")
    await h.send(alice, "<message to='bob@example.test' type='chat'><body>x</body></message>")
    assert len(await come_online(h, "bob")) == 1
    assert await come_online(h, "bob") == []


async def test_quota_counts_kept_in_memory_follow_delivery_and_purge(h: Harness) -> None:
    """The limit holds with counts kept in memory: full after 3, free again once delivered."""
    await h.kernel.hooks.fire(H.SERVER_STARTED, None)  # owners known: the first count is free
    alice, sink = await h.bind("alice", "phone")
    await h.account("bob")

    async def send(n: int) -> list[str]:
        for i in range(n):
            await h.send(
                alice,
                f"<message to='bob@example.test' type='chat' id='m{i}'><body>{i}</body></message>",
            )
        return [str(e.get("id")) for e in sink.take() if e.get("type") == "error"]

    assert await send(4) == ["m3"]  # the fourth finds the store full
    bob, bob_sink = await h.bind("bob", "phone")
    bob.presence = make(f"{{{ns.CLIENT}}}presence")
    await h.kernel.hooks.fire(H.SESSION_INITIAL_PRESENCE, SessionEvent(session=bob))
    assert len(bob_sink.take()) == 3  # delivered: the count is forgotten
    await h.unbind(bob)
    assert await send(3) == []
    assert await send(1) == ["m0"]  # full again at 3, counted in memory
    assert await h.kernel.ctx.stores.offline.count("bob") == 3


async def test_a_message_stored_as_its_owner_comes_online_is_handed_over_at_once(
    h: Harness,
) -> None:
    """Routed while bob's presence was still being handled (so to offline storage), committed
    after his login looked in the store: it reaches bob now, not at his next login."""
    await h.kernel.hooks.fire(H.SERVER_STARTED, None)
    alice, _ = await h.bind("alice", "phone")
    bob, bob_sink = await h.bind("bob", "phone")
    bob.presence = make(f"{{{ns.CLIENT}}}presence")  # available: his login already looked
    late = parse_document(
        "<message xmlns='jabber:client' from='alice@example.test/phone' to='bob@example.test'"
        " type='chat' id='late'><body>just in time</body></message>"
    )
    await h.kernel.hooks.fire(
        H.MESSAGE_OFFLINE,
        StanzaEvent(
            stanza=late, from_jid=alice.jid, to_jid=JID.parse("bob@example.test"), origin=None
        ),
    )
    (got,) = bob_sink.take()
    assert got.get("id") == "late" and got.find(f"{{{ns.DELAY}}}delay") is not None
    assert await h.kernel.ctx.stores.offline.count("bob") == 0
