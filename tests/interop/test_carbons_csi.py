"""XEP-0280 message carbons and XEP-0352 client state indication with slixmpp."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import slixmpp
from slixmpp.xmlstream.handler import Waiter
from slixmpp.xmlstream.matcher import MatchXPath

from tests.interop.slix import TIMEOUT, SlixClient
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop

Factory = Callable[..., Awaitable[SlixClient]]


def with_carbons(received: asyncio.Queue[Any], sent: asyncio.Queue[Any]) -> Callable[..., None]:
    def configure(xmpp: slixmpp.ClientXMPP) -> None:
        xmpp.register_plugin("xep_0280")
        xmpp.add_event_handler("carbon_received", received.put_nowait)
        xmpp.add_event_handler("carbon_sent", sent.put_nowait)

    return configure


def with_csi(ready: asyncio.Event) -> Callable[..., None]:
    def configure(xmpp: slixmpp.ClientXMPP) -> None:
        xmpp.register_plugin("xep_0352")
        xmpp.register_plugin("xep_0198")
        # slixmpp handles <csi/> after <sm/>: stream management is enabled by then.
        xmpp.add_event_handler("csi_enabled", lambda _e: ready.set())

    return configure


async def round_trip(client: SlixClient) -> None:
    """An XEP-0198 <r/>/<a/> exchange: every earlier nonza and stanza was handled.

    A ping would not do: an IQ result is urgent and flushes what CSI holds back.
    """
    waiter = Waiter(f"ack-{uuid.uuid4().hex}", MatchXPath("{urn:xmpp:sm:3}a"))
    client.xmpp.register_handler(waiter)
    client.plugin["xep_0198"].request_ack()
    assert await waiter.wait(int(TIMEOUT)) is not None


async def test_carbons_between_two_resources(server: RunningServer, slix: Factory) -> None:
    """Each resource sees what the other sent and received; never a copy of its own."""
    a_login, a_pw = server.account()
    b_login, b_pw = server.account()
    queues = {name: asyncio.Queue[Any]() for name in ("p_recv", "p_sent", "d_recv", "d_sent")}
    phone = await slix(
        server,
        a_login,
        a_pw,
        resource="phone",
        configure=with_carbons(queues["p_recv"], queues["p_sent"]),
    )
    desk = await slix(
        server,
        a_login,
        a_pw,
        resource="desk",
        configure=with_carbons(queues["d_recv"], queues["d_sent"]),
    )
    info = await phone.plugin["xep_0030"].get_info(jid=server.domain, timeout=TIMEOUT)
    assert "urn:xmpp:carbons:2" in info["disco_info"]["features"]
    for client in (phone, desk):
        await client.plugin["xep_0280"].enable(timeout=TIMEOUT)
    bob = await slix(server, b_login, b_pw)
    tag = uuid.uuid4().hex[:6]

    bob.xmpp.send_message(mto=phone.jid, mbody=f"in-{tag}", mtype="chat")
    got = await phone.next(phone.messages)
    assert str(got["body"]) == f"in-{tag}"
    copy = await desk.next(queues["d_recv"])
    inner = copy["carbon_received"]
    assert str(inner["body"]) == f"in-{tag}" and inner["from"] == bob.jid
    assert copy["from"] == desk.jid.bare

    phone.xmpp.send_message(mto=bob.jid, mbody=f"out-{tag}", mtype="chat")
    assert str((await bob.next(bob.messages))["body"]) == f"out-{tag}"
    copy = await desk.next(queues["d_sent"])
    assert str(copy["carbon_sent"]["body"]) == f"out-{tag}"
    assert copy["carbon_sent"]["from"] == phone.jid

    # A round trip on each connection: had a copy of its own gone to the phone, it would be here.
    await phone.plugin["xep_0199"].ping(jid=server.domain, timeout=TIMEOUT)
    assert queues["p_recv"].empty() and queues["p_sent"].empty()

    await desk.plugin["xep_0280"].disable(timeout=TIMEOUT)
    bob.xmpp.send_message(mto=phone.jid, mbody=f"quiet-{tag}", mtype="chat")
    assert str((await phone.next(phone.messages))["body"]) == f"quiet-{tag}"
    await desk.plugin["xep_0199"].ping(jid=server.domain, timeout=TIMEOUT)
    assert queues["d_recv"].empty()


async def test_inactive_client_gets_presence_when_active(
    server: RunningServer, slix: Factory
) -> None:
    """Presence waits while the client is inactive; <active/> delivers it before what follows."""
    a_login, a_pw = server.account()
    b_login, b_pw = server.account()
    ready = asyncio.Event()
    alice = await slix(server, a_login, a_pw, resource="phone", configure=with_csi(ready))
    await asyncio.wait_for(ready.wait(), TIMEOUT)
    assert alice.plugin["xep_0352"].enabled  # the server advertised CSI
    bob = await slix(server, b_login, b_pw)
    alice.plugin["xep_0352"].send_inactive()
    await round_trip(alice)  # the server handled <inactive/>
    bob.xmpp.send_presence(pto=alice.jid, pstatus="on shift")
    await bob.plugin["xep_0199"].ping(jid=server.domain, timeout=TIMEOUT)  # it was routed
    await round_trip(alice)  # had it been written, it would have come before the <a/>
    assert alice.presences.empty()  # held
    alice.plugin["xep_0352"].send_active()
    # XEP-0352 §5: the held stanzas are written before the answer to the next request.
    await alice.plugin["xep_0199"].ping(jid=server.domain, timeout=TIMEOUT)
    got = alice.presences.get_nowait()
    assert got["from"] == bob.jid and got["status"] == "on shift"

    alice.plugin["xep_0352"].send_inactive()
    await round_trip(alice)
    bob.xmpp.send_presence(pto=alice.jid, pstatus="busy")
    bob.xmpp.send_message(mto=alice.jid, mbody="urgent", mtype="chat")
    msg = await alice.next(alice.messages)  # a message with a body is not held …
    assert str(msg["body"]) == "urgent"
    assert alice.presences.get_nowait()["status"] == "busy"  # … and goes after what was held
