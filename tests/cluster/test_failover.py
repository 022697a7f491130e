"""A room across nodes, a node that dies, and Redis going away and coming back (docs/cluster.md).

The rooms test uses the suite's Redis; the node-death test too (the survivor
must sweep the dead node within ``node_timeout_seconds``); the outage test
starts a redis-server of its own on a free loopback port, kills it and starts
it again on the same port.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import slixmpp
from slixmpp import JID as SlixJID

from carewire.cluster.wire import Event, EventKind
from carewire.xmpp.jid import JID
from tests.cluster.nodes import (
    PASSWORD,
    at,
    bounded,
    cluster_of,
    knows,
    nodes,
    private_redis,
    until,
)
from tests.interop.slix import SlixClient, clients

Slix = Callable[..., Awaitable[SlixClient]]
TIMEOUT = 10.0


@pytest.fixture
async def slix() -> AsyncIterator[Slix]:
    async with clients() as make:
        yield make


def _muc(xmpp: slixmpp.ClientXMPP) -> None:
    xmpp.register_plugin("xep_0004")
    xmpp.register_plugin("xep_0045")


async def _online(slix: Slix, server: Any, login: str, **kwargs: Any) -> SlixClient:
    client = await slix(at(server), login, PASSWORD, **kwargs)
    client.xmpp.send_presence()
    return client


async def test_a_room_with_occupants_on_two_nodes(
    tmp_path: Path, redis_url: str, redis_prefix: str, slix: Slix
) -> None:
    async with nodes(tmp_path, redis_url, redis_prefix) as made:
        n1, n2 = await made.start("n1"), await made.start("n2")
        await made.accounts("alice", "bob")
        alice = await _online(slix, n1, "alice", configure=_muc)
        bob = await _online(slix, n2, "bob", configure=_muc)
        await until(knows(n1, str(bob.jid)), "n1 sees bob")
        await until(knows(n2, str(alice.jid)), "n2 sees alice")
        room = SlixJID(f"r{uuid.uuid4().hex[:10]}@chat.carewire.test")
        muc_a, muc_b = alice.plugin["xep_0045"], bob.plugin["xep_0045"]
        await muc_a.join_muc_wait(room, "Alice", timeout=TIMEOUT)
        submit = alice.xmpp.plugin["xep_0004"].make_form(ftype="submit")  # type: ignore[no-untyped-call]
        await muc_a.set_room_config(room, submit, timeout=TIMEOUT)
        a_messages: asyncio.Queue[Any] = asyncio.Queue()
        alice.xmpp.add_event_handler("groupchat_message", a_messages.put_nowait)
        b_messages: asyncio.Queue[Any] = asyncio.Queue()
        bob.xmpp.add_event_handler("groupchat_message", b_messages.put_nowait)
        # bob joins through n2: the room lives on n1, which claimed it
        _, _, occupants, _ = await muc_b.join_muc_wait(room, "Bob", timeout=TIMEOUT)
        assert {str(p["from"].resource) for p in occupants} >= {"Alice"}
        assert await cluster_of(n2).rooms.owner(JID.parse(str(room))) == "n1"
        bob.xmpp.send_message(mto=room, mbody="from n2", mtype="groupchat")
        heard = await alice.next_matching(a_messages, lambda m: m["body"] == "from n2")
        assert heard["from"] == SlixJID(f"{room}/Bob")
        alice.xmpp.send_message(mto=room, mbody="from n1", mtype="groupchat")
        echoed = await bob.next_matching(b_messages, lambda m: m["body"] == "from n1")
        assert echoed["from"] == SlixJID(f"{room}/Alice")


async def test_a_dead_node_is_swept_and_its_users_get_offline_messages(
    tmp_path: Path, redis_url: str, redis_prefix: str, slix: Slix
) -> None:
    async with nodes(tmp_path, redis_url, redis_prefix) as made, bounded(90, "the failover"):
        n1, n2 = await made.start("n1"), await made.start("n2")
        await made.accounts("alice", "bob")
        alice = await _online(slix, n1, "alice")
        bob = await _online(slix, n2, "bob")
        await until(knows(n1, str(bob.jid)), "n1 sees bob")
        await made.crash(n2)  # no heartbeat, no goodbye: n1 must find out by itself
        await until(lambda: not knows(n1, str(bob.jid), available=False)(), "n1 forgets bob")
        survivor = cluster_of(n1)
        members = await survivor.redis.smembers(survivor.keys.nodes)
        assert members == {b"n1"}
        assert not await survivor.redis.exists(survivor.keys.sessions("n2"))
        alice.xmpp.send_message(
            mto=SlixJID("bob@carewire.test"), mbody="while you were away", mtype="chat"
        )
        # offline storage took it (shared database): bob gets it when he logs in on n1
        await bob.disconnect()
        again = await _online(slix, n1, "bob")
        msg = await again.next(again.messages)
        assert str(msg["body"]) == "while you were away"


async def test_without_redis_local_chat_goes_on_and_cross_node_gets_a_clear_error(
    tmp_path: Path, redis_prefix: str, slix: Slix, caplog: pytest.LogCaptureFixture
) -> None:
    with private_redis() as redis:
        async with nodes(tmp_path, redis.url, redis_prefix) as made:
            n1, n2 = await made.start("n1"), await made.start("n2")
            await made.accounts("alice", "carol", "bob")
            alice = await _online(slix, n1, "alice")
            carol = await _online(slix, n1, "carol")
            bob = await _online(slix, n2, "bob")
            await until(knows(n1, str(bob.jid)), "n1 sees bob")
            redis.kill()
            await until(lambda: not cluster_of(n1).is_up, "n1 notices")
            alice.xmpp.send_message(mto=SlixJID(str(carol.jid)), mbody="local", mtype="chat")
            assert str((await carol.next(carol.messages))["body"]) == "local"
            for body in ("across", "and again"):
                alice.xmpp.send_message(mto=SlixJID(str(bob.jid)), mbody=body, mtype="chat")
                error = await alice.next(alice.errors)
                assert error["error"]["condition"] == "remote-server-timeout"
                assert "Redis is unreachable" in error["error"]["text"]
            # one line per node for the outage, not one per stanza
            outage = [r for r in caplog.records if "is unreachable" in r.getMessage()]
            assert 1 <= len(outage) <= 2 and all(r.levelname == "ERROR" for r in outage)
            redis.start()  # an empty Redis: both nodes register again
            await until(lambda: cluster_of(n1).is_up and cluster_of(n2).is_up, "both recover")
            await until(knows(n1, str(bob.jid)), "n1 sees bob again")
            alice.xmpp.send_message(mto=SlixJID(str(bob.jid)), mbody="across again", mtype="chat")
            assert str((await bob.next(bob.messages))["body"]) == "across again"


async def test_garbage_on_a_node_channel_is_logged_and_ignored(
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
    slix: Slix,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with nodes(tmp_path, redis_url, redis_prefix) as made:
        n1, n2 = await made.start("n1"), await made.start("n2")
        await made.accounts("alice", "bob")
        alice = await _online(slix, n1, "alice")
        bob = await _online(slix, n2, "bob")
        await until(knows(n1, str(bob.jid)), "n1 sees bob")
        cluster = cluster_of(n1)
        for garbage in ("nonsense", "D\n\nbob@carewire.test/x\n<unclosed", "C\n\n@@\n"):
            await cluster.redis.publish(cluster.keys.channel("n2"), garbage)
        await cluster.redis.publish(cluster.keys.events, "U\nn9\nbob@carewire.test/y\n{bad")
        alice.xmpp.send_message(mto=SlixJID(str(bob.jid)), mbody="still here", mtype="chat")
        assert str((await bob.next(bob.messages))["body"]) == "still here"
        ignored = [r for r in caplog.records if "ignoring a" in r.getMessage()]
        # three on n2's channel; the bad event reaches both nodes
        assert len(ignored) == 5 and all(r.levelname == "WARNING" for r in ignored)


async def test_a_node_swept_by_mistake_registers_again(
    tmp_path: Path, redis_url: str, redis_prefix: str, slix: Slix
) -> None:
    """A survivor swept n1 just after n1 renewed its heartbeat: n1 notices at its next beat."""
    async with nodes(tmp_path, redis_url, redis_prefix) as made:
        n1, n2 = await made.start("n1"), await made.start("n2")
        await made.accounts("alice")
        alice = await _online(slix, n1, "alice")
        await until(knows(n2, str(alice.jid)), "n2 sees alice")
        redis, keys = cluster_of(n2).redis, cluster_of(n2).keys
        async with redis.pipeline(transaction=True) as pipe:  # what a sweep does
            pipe.delete(keys.sessions("n1"))
            pipe.srem(keys.nodes, "n1")
            pipe.publish(keys.events, Event(kind=EventKind.GONE, node="n1").encode())
            await pipe.execute()

        # n2 forgets alice at the GONE event, but n1 may register again before a test could
        # see that (its next heartbeat): what proves it is the deleted hash being back.
        async def registered_again() -> bool:
            return bool(await redis.hexists(keys.sessions("n1"), str(alice.jid)))

        for _ in range(200):
            if await registered_again():
                break
            await asyncio.sleep(0.05)
        assert await registered_again()
        await until(knows(n2, str(alice.jid)), "n2 knows alice again")
