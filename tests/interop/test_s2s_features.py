"""What federates, between two real Carewire servers over TLS with real slixmpp clients.

Subscriptions both ways with presence seen, a remote user in a ``chat.DOMAIN``
room (its stanzas go out on a stream opened as ``chat.DOMAIN``), delivery
tracking of a remote recipient (sent, received) and of a bounce (failed). The
federated servers are the session fixture ``federation``
(tests/interop/federated.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from xml.etree.ElementTree import fromstring

import pytest
from slixmpp import JID

from tests.interop.slix import SlixClient
from tests.serverproc import RunningServer

pytestmark = pytest.mark.timeout(300)  # the first test on a worker waits for three start-ups
Slix = Callable[..., Awaitable[SlixClient]]


def records(server: RunningServer, dataset: str, *filters: str) -> list[dict[str, Any]]:
    """The values of the records matching ``filters`` (field:op:value), read with the CLI."""
    args = [a for f in filters for a in ("--filter", f)]
    r = server.cli("records", "list", dataset, *args, "--json")
    assert r.returncode == 0, r.stderr
    return [rec["values"] | {"id": rec["id"]} for rec in json.loads(r.stdout)["records"]]


def delivery(server: RunningServer, recipient: str) -> dict[str, Any] | None:
    """The MESSAGE_DELIVERIES row of the only message to ``recipient`` (a bare JID), if any."""
    who = records(server, "IDENTITIES", f"name:eq:{recipient}")
    if not who:
        return None
    rows = records(server, "MESSAGE_DELIVERIES", f"recipient:eq:{who[0]['id']}")
    return rows[0] if rows else None


async def online(*clients: SlixClient) -> None:
    """Each client fetches its roster and sends initial presence (RFC 6121 §2.1.3, §4.2)."""
    for client in clients:
        await asyncio.wait_for(client.xmpp.get_roster(), 10)
        client.xmpp.send_presence()


def room_presences(client: SlixClient) -> asyncio.Queue[Any]:
    """Every presence the client receives (slixmpp's own events skip some room presences)."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    client.xmpp.add_event_handler("presence", queue.put_nowait)
    return queue


async def eventually(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never happened")
        await asyncio.sleep(0.2)


async def test_subscription_both_ways_and_presence(federation: dict[str, Any], slix: Slix) -> None:
    a: RunningServer = federation["a.test"]
    b: RunningServer = federation["b.test"]
    alice = await slix(a, *a.account())
    bob = await slix(b, *b.account())
    alice_bare, bob_bare = str(alice.jid.bare), str(bob.jid.bare)
    await online(alice, bob)
    alice.xmpp.send_presence(pto=bob_bare, ptype="subscribe")
    request = await bob.next(bob.subscribes, timeout=20)
    assert request["from"].bare == alice_bare
    bob.xmpp.send_presence(pto=alice_bare, ptype="subscribed")
    await alice.next_matching(alice.subscribeds, lambda p: p["from"].bare == bob_bare)
    # RFC 6121 §3.1.5: bob's server sends bob's presence once the subscription is approved.
    await alice.next_matching(alice.presences, lambda p: p["from"].bare == bob_bare)
    # And the other way round, started from b.test.
    bob.xmpp.send_presence(pto=alice_bare, ptype="subscribe")
    await alice.next_matching(alice.subscribes, lambda p: p["from"].bare == bob_bare)
    alice.xmpp.send_presence(pto=bob_bare, ptype="subscribed")
    await bob.next_matching(bob.presences, lambda p: p["from"].bare == alice_bare)
    # A presence change reaches the remote subscriber.
    bob.xmpp.send_presence(pstatus="in theatre")
    await alice.next_matching(
        alice.presences, lambda p: p["from"].bare == bob_bare and p["status"] == "in theatre"
    )


async def test_a_remote_user_in_a_room(federation: dict[str, Any], slix: Slix) -> None:
    a: RunningServer = federation["a.test"]
    b: RunningServer = federation["b.test"]
    alice = await slix(a, *a.account())
    bob = await slix(b, *b.account())
    await online(alice, bob)
    seen_by_alice, seen_by_bob = room_presences(alice), room_presences(bob)
    room = "handover@chat.a.test"
    alice.xmpp.send_presence(pto=f"{room}/alice")
    await alice.next_matching(seen_by_alice, lambda p: str(p["from"]) == f"{room}/alice")
    bob.xmpp.send_presence(pto=f"{room}/bob")
    await bob.next_matching(seen_by_bob, lambda p: str(p["from"]) == f"{room}/alice")
    await bob.next_matching(seen_by_bob, lambda p: str(p["from"]) == f"{room}/bob")
    await alice.next_matching(seen_by_alice, lambda p: str(p["from"]) == f"{room}/bob")
    alice.xmpp.send_message(mto=JID(room), mbody="bed 3 needs a review", mtype="groupchat")
    got = await bob.next_matching(bob.messages, lambda m: m["body"] == "bed 3 needs a review")
    assert str(got["from"]) == f"{room}/alice"
    bob.xmpp.send_message(mto=JID(room), mbody="on it", mtype="groupchat")
    got = await alice.next_matching(alice.messages, lambda m: m["body"] == "on it")
    assert str(got["from"]) == f"{room}/bob"
    bob.xmpp.send_presence(pto=f"{room}/bob", ptype="unavailable")
    await alice.next_matching(
        seen_by_alice, lambda p: str(p["from"]) == f"{room}/bob" and p["type"] == "unavailable"
    )
    # b.test came to the room on a stream to chat.a.test, bidirectional (XEP-0288): the
    # room answered on it as chat.a.test, which b.test accepted.
    assert "s2s in stream with b.test established (certificate) as chat.a.test" in a.log()
    assert "s2s out stream with chat.a.test established (certificate) as b.test" in b.log()
    assert "invalid-from" not in b.log()


async def test_a_rooms_broadcast_is_not_refused_as_invalid_from(
    federation: dict[str, Any], slix: Slix
) -> None:
    """A room on the self-signed c.test: its stanzas to a.test authenticate chat.c.test by dialback.

    Before streams were per pair of domains, the room's presence went out on the
    c.test stream and a.test closed it with invalid-from (RFC 6120 §4.9.3.9).
    """
    a: RunningServer = federation["a.test"]
    c: RunningServer = federation["c.test"]
    carol = await slix(c, *c.account())
    alice = await slix(a, *a.account())
    await online(carol, alice)
    seen_by_carol, seen_by_alice = room_presences(carol), room_presences(alice)
    room = "ward7@chat.c.test"
    carol.xmpp.send_presence(pto=f"{room}/carol")
    await carol.next_matching(seen_by_carol, lambda p: str(p["from"]) == f"{room}/carol")
    alice.xmpp.send_presence(pto=f"{room}/alice")
    await alice.next_matching(seen_by_alice, lambda p: str(p["from"]) == f"{room}/carol")
    await alice.next_matching(seen_by_alice, lambda p: str(p["from"]) == f"{room}/alice")
    carol.xmpp.send_message(mto=JID(room), mbody="ward round at ten", mtype="groupchat")
    got = await alice.next_matching(alice.messages, lambda m: m["body"] == "ward round at ten")
    assert str(got["from"]) == f"{room}/carol"
    alice.xmpp.send_message(mto=JID(room), mbody="joining", mtype="groupchat")
    got = await carol.next_matching(carol.messages, lambda m: m["body"] == "joining")
    assert str(got["from"]) == f"{room}/alice"
    assert "s2s out stream with a.test established (dialback) as chat.c.test" in c.log()
    assert "s2s in stream with chat.c.test established (dialback) as a.test" in a.log()
    assert "invalid-from" not in a.log()


async def test_tracking_of_a_remote_recipient(federation: dict[str, Any], slix: Slix) -> None:
    a: RunningServer = federation["a.test"]
    b: RunningServer = federation["b.test"]
    alice = await slix(a, *a.account())
    bob = await slix(b, *b.account())
    await online(alice, bob)
    bob_bare = str(bob.jid.bare)
    msg = alice.xmpp.make_message(mto=bob_bare, mbody="federated chart note", mtype="chat")
    msg["id"] = "fed-1"
    msg.append(fromstring("<request xmlns='urn:xmpp:receipts'/>"))
    msg.send()
    await bob.next_matching(bob.messages, lambda m: m["body"] == "federated chart note")

    def sent() -> bool:
        row = delivery(a, bob_bare)
        return row is not None and row.get("sent_at") is not None

    await eventually(sent, "sent_at for the remote recipient")
    receipt = bob.xmpp.make_message(mto=str(alice.jid))
    receipt.append(fromstring("<received xmlns='urn:xmpp:receipts' id='fed-1'/>"))
    receipt.send()

    def received() -> bool:
        row = delivery(a, bob_bare)
        return row is not None and row.get("received_at") is not None

    await eventually(received, "received_at from the remote receipt")


async def test_a_bounce_is_a_failed_delivery(federation: dict[str, Any], slix: Slix) -> None:
    a: RunningServer = federation["a.test"]
    alice = await slix(a, *a.account())
    alice.xmpp.send_message(mto=JID("someone@nowhere.test"), mbody="anyone there?", mtype="chat")
    err = await alice.next(alice.errors, timeout=20)
    assert err["error"]["condition"] == "remote-server-not-found"

    def failed() -> bool:
        row = delivery(a, "someone@nowhere.test")
        return row is not None and row.get("failure") == "remote-server-not-found"

    await eventually(failed, "a failed delivery row")
    row = delivery(a, "someone@nowhere.test")
    assert row is not None and row.get("failed_at") is not None
