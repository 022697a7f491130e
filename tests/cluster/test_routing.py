"""Stanzas between users on different nodes of one cluster (docs/cluster.md), end to end.

Two nodes in the test's process on one PostgreSQL database and the test's
Redis prefix; slixmpp clients over STARTTLS, spread over the nodes. Before a
client writes to a user on the other node the test waits until its node's
mirror shows that user (registration travels ahead of stanzas, but the
client logged in on the other node concurrently with the test's steps).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import slixmpp
from slixmpp import JID as SlixJID

from carewire.core.stores import Subscription
from carewire.xmpp.jid import JID
from tests.cluster.nodes import PASSWORD, Nodes, at, cluster_of, knows, nodes, until
from tests.interop.slix import SlixClient, clients

Slix = Callable[..., Awaitable[SlixClient]]
TIMEOUT = 10.0


@pytest.fixture
async def two(tmp_path: Path, redis_url: str, redis_prefix: str) -> AsyncIterator[Nodes]:
    async with nodes(tmp_path, redis_url, redis_prefix) as made:
        await made.start("n1")
        await made.start("n2")
        await made.accounts("alice", "bob", "carol")
        yield made


@pytest.fixture
async def slix() -> AsyncIterator[Slix]:
    async with clients() as make:
        yield make


def _chat(client: SlixClient, to: str, body: str) -> None:
    client.xmpp.send_message(mto=SlixJID(to), mbody=body, mtype="chat")


async def _online(slix: Slix, server: Any, login: str, **kwargs: Any) -> SlixClient:
    client = await slix(at(server), login, PASSWORD, **kwargs)
    client.xmpp.send_presence(ppriority=kwargs.pop("priority", 0))
    return client


async def test_fifty_messages_arrive_in_order_on_the_other_node(two: Nodes, slix: Slix) -> None:
    n1, n2 = two.running
    alice = await _online(slix, n1, "alice")
    bob = await _online(slix, n2, "bob")
    await until(knows(n1, str(bob.jid)), "n1 sees bob")
    for i in range(50):
        _chat(alice, str(bob.jid), f"m{i}")
    got = [str((await bob.next(bob.messages))["body"]) for _ in range(50)]
    assert got == [f"m{i}" for i in range(50)]
    # and back, to the bare JID
    await until(knows(n2, str(alice.jid)), "n2 sees alice")
    _chat(bob, "alice@carewire.test", "hello back")
    reply = await alice.next(alice.messages)
    assert str(reply["body"]) == "hello back" and str(reply["from"]) == str(bob.jid)


async def test_bare_jid_goes_to_the_highest_priority_resource_and_carbons_cross(
    two: Nodes, slix: Slix
) -> None:
    n1, n2 = two.running
    alice = await _online(slix, n1, "alice")
    low = await slix(at(n1), "bob", PASSWORD, resource="low")
    low.xmpp.send_presence(ppriority=1)
    high = await slix(at(n2), "bob", PASSWORD, resource="high")
    high.xmpp.send_presence(ppriority=5)
    await until(knows(n1, "bob@carewire.test/high"), "n1 sees bob/high")
    _chat(alice, "bob@carewire.test", "to the bare JID")
    _chat(alice, "bob@carewire.test/low", "marker")
    msg = await high.next(high.messages)
    assert str(msg["body"]) == "to the bare JID"
    # bob/low gets the marker first: the bare-JID message went to bob/high only
    first = await low.next(low.messages)
    assert str(first["body"]) == "marker"


async def test_carbons_reach_a_resource_on_the_other_node(two: Nodes, slix: Slix) -> None:
    n1, n2 = two.running

    def carbons(xmpp: slixmpp.ClientXMPP) -> None:
        xmpp.register_plugin("xep_0280")

    phone = await slix(at(n1), "bob", PASSWORD, resource="phone", configure=carbons)
    await phone.plugin["xep_0280"].enable(timeout=TIMEOUT)
    phone.xmpp.send_presence()
    received: list[Any] = []
    sent: list[Any] = []
    phone.xmpp.add_event_handler("carbon_received", received.append)
    phone.xmpp.add_event_handler("carbon_sent", sent.append)
    desk = await _online(slix, n2, "bob", resource="desk")
    alice = await _online(slix, n2, "alice")
    await until(
        lambda: (
            (s := cluster_of(n2).remote.get(JID.parse("bob@carewire.test/phone"))) is not None
            and bool(s.data.get("carbons"))
        ),
        "n2 sees bob/phone with carbons",
    )
    _chat(alice, str(desk.jid), "for the desk")
    assert str((await desk.next(desk.messages))["body"]) == "for the desk"
    _chat(desk, str(alice.jid), "from the desk")
    assert str((await alice.next(alice.messages))["body"]) == "from the desk"
    await until(lambda: bool(received) and bool(sent), "both carbons reached the phone")
    assert str(received[0]["carbon_received"]["body"]) == "for the desk"
    assert str(sent[0]["carbon_sent"]["body"]) == "from the desk"


async def test_presence_and_subscriptions_cross_nodes(two: Nodes, slix: Slix) -> None:
    n1, n2 = two.running
    alice = await _online(slix, n1, "alice")
    bob = await _online(slix, n2, "bob")
    await until(knows(n1, str(bob.jid)), "n1 sees bob")
    await until(knows(n2, str(alice.jid)), "n2 sees alice")
    alice.xmpp.send_presence(pto="bob@carewire.test", ptype="subscribe")
    request = await bob.next(bob.subscribes)
    assert str(request["from"]) == "alice@carewire.test"
    bob.xmpp.send_presence(pto="alice@carewire.test", ptype="subscribed")
    # RFC 6121 §3.1.5: bob's current presence follows the approval, from the other node
    first = await alice.next_matching(
        alice.presences, lambda p: p["from"].bare == "bob@carewire.test"
    )
    assert str(first["from"]) == str(bob.jid)
    bob.xmpp.send_presence(pstatus="in theatre")
    changed = await alice.next_matching(alice.presences, lambda p: p["status"] == "in theatre")
    assert str(changed["from"]) == str(bob.jid)
    assert n1.assembly is not None
    item = await n1.assembly.stores.roster.get_item("alice", "bob@carewire.test")
    assert item is not None and item.subscription is Subscription.TO


async def test_an_iq_reaches_a_full_jid_on_the_other_node(two: Nodes, slix: Slix) -> None:
    n1, n2 = two.running
    alice = await _online(slix, n1, "alice")
    bob = await _online(slix, n2, "bob")
    await until(knows(n1, str(bob.jid)), "n1 sees bob")
    rtt = await alice.plugin["xep_0199"].ping(jid=bob.jid, timeout=TIMEOUT)
    assert rtt >= 0
    # a resource that exists nowhere: service-unavailable, from our own node
    with pytest.raises(slixmpp.exceptions.IqError) as err:
        await alice.plugin["xep_0199"].send_ping("bob@carewire.test/nowhere", timeout=TIMEOUT)
    assert err.value.condition == "service-unavailable"
