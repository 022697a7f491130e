"""What Carewire and a real peer (Prosody, ejabberd) must do with each other over s2s.

Shared by tests/interop/test_s2s_prosody.py and test_s2s_ejabberd.py: each case
takes the federating Carewire (tests/peers/carewire.py), the peer and the slixmpp
factory, and uses fresh accounts on both sides. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from typing import Any

import httpx
import slixmpp
from slixmpp import JID

from tests.interop.slix import SlixClient
from tests.peers.clients import Slix, online
from tests.peers.common import Peer
from tests.serverproc import RunningServer

#: Generous: the first stanza to a domain waits for DNS, TCP, TLS and authentication.
S2S_TIMEOUT = 20.0


def muc_plugins(xmpp: slixmpp.ClientXMPP) -> None:
    xmpp.register_plugin("xep_0004")
    xmpp.register_plugin("xep_0045")


async def pair(
    cw: RunningServer, peer: Peer, slix: Slix, *, muc: bool = False
) -> tuple[SlixClient, SlixClient]:
    """A Carewire user and a peer user, both online."""
    kwargs: dict[str, Any] = {"configure": muc_plugins} if muc else {}
    c_login, c_pw = cw.account()
    p_login, p_pw = peer.account()
    ours = await online(slix, cw, c_login, c_pw, mechanism="SCRAM-SHA-256", **kwargs)
    theirs = await online(slix, peer, p_login, p_pw, **kwargs)
    return ours, theirs


async def message_both_ways(cw: RunningServer, peer: Peer, slix: Slix) -> None:
    ours, theirs = await pair(cw, peer, slix)
    tag = uuid.uuid4().hex[:8]
    ours.xmpp.send_message(mto=JID(theirs.jid.bare), mbody=f"out-{tag}", mtype="chat")
    got = await theirs.next_matching(
        theirs.messages, lambda m: m["body"] == f"out-{tag}", S2S_TIMEOUT
    )
    assert got["from"].bare == ours.jid.bare
    theirs.xmpp.send_message(mto=JID(ours.jid.bare), mbody=f"in-{tag}", mtype="chat")
    back = await ours.next_matching(ours.messages, lambda m: m["body"] == f"in-{tag}", S2S_TIMEOUT)
    assert back["from"].bare == theirs.jid.bare


async def subscribe(asker: SlixClient, owner: SlixClient) -> None:
    """``asker`` subscribes to ``owner``'s presence; ``owner`` approves; presence follows."""
    asker.xmpp.send_presence(pto=JID(owner.jid.bare), ptype="subscribe")
    request = await owner.next_matching(
        owner.subscribes, lambda p: p["from"].bare == asker.jid.bare, S2S_TIMEOUT
    )
    assert request["type"] == "subscribe"
    owner.xmpp.send_presence(pto=JID(asker.jid.bare), ptype="subscribed")
    await asker.next_matching(
        asker.subscribeds, lambda p: p["from"].bare == owner.jid.bare, S2S_TIMEOUT
    )
    # The owner's presence reaches the new subscriber (the server's probe or its broadcast).
    owner.xmpp.send_presence(pstatus="on shift")
    await asker.next_matching(
        asker.presences, lambda p: p["from"].bare == owner.jid.bare, S2S_TIMEOUT
    )


async def subscriptions_both_ways(cw: RunningServer, peer: Peer, slix: Slix) -> None:
    ours, theirs = await pair(cw, peer, slix)
    await subscribe(ours, theirs)
    await subscribe(theirs, ours)


async def _join(client: SlixClient, room: JID, nick: str) -> None:
    await client.plugin["xep_0045"].join_muc_wait(room, nick, timeout=S2S_TIMEOUT)


async def _instant(client: SlixClient, room: JID) -> None:
    """Accept the default configuration of a room just created (XEP-0045 §10.1.2)."""
    form = client.xmpp.plugin["xep_0004"].make_form(ftype="submit")  # type: ignore[no-untyped-call]
    await client.plugin["xep_0045"].set_room_config(room, form, timeout=S2S_TIMEOUT)


async def _groupchat_both_ways(room: JID, a: SlixClient, b: SlixClient) -> None:
    tag = uuid.uuid4().hex[:8]
    a_in: asyncio.Queue[Any] = asyncio.Queue()
    b_in: asyncio.Queue[Any] = asyncio.Queue()
    a.xmpp.add_event_handler("groupchat_message", a_in.put_nowait)
    b.xmpp.add_event_handler("groupchat_message", b_in.put_nowait)
    a.xmpp.send_message(mto=room, mbody=f"from-a-{tag}", mtype="groupchat")
    await b.next_matching(b_in, lambda m: m["body"] == f"from-a-{tag}", S2S_TIMEOUT)
    b.xmpp.send_message(mto=room, mbody=f"from-b-{tag}", mtype="groupchat")
    await a.next_matching(a_in, lambda m: m["body"] == f"from-b-{tag}", S2S_TIMEOUT)


async def our_user_in_their_room(cw: RunningServer, peer: Peer, slix: Slix) -> None:
    """A Carewire user joins a room on the peer's MUC service and talks with its owner."""
    ours, theirs = await pair(cw, peer, slix, muc=True)
    room = JID(f"r{uuid.uuid4().hex[:10]}@{peer.muc}")
    await _join(theirs, room, "owner")
    await _instant(theirs, room)
    await _join(ours, room, "visitor")
    await _groupchat_both_ways(room, ours, theirs)


async def their_user_in_our_room(cw: RunningServer, peer: Peer, slix: Slix) -> None:
    """A peer user joins a room on ``chat.<carewire domain>`` and talks with its owner."""
    ours, theirs = await pair(cw, peer, slix, muc=True)
    room = JID(f"r{uuid.uuid4().hex[:10]}@chat.{cw.domain}")
    await _join(ours, room, "owner")
    await _instant(ours, room)
    await _join(theirs, room, "guest")
    await _groupchat_both_ways(room, ours, theirs)


async def refused(sender: SlixClient, to: JID) -> str:
    """Send a message to ``to`` and return the condition of the error that comes back."""
    tag = uuid.uuid4().hex[:8]
    sender.xmpp.send_message(mto=to, mbody=f"refused-{tag}", mtype="chat")
    error = await sender.next(sender.errors, S2S_TIMEOUT)
    return str(error["error"]["condition"])


def _has_body(body: str, message: Any) -> bool:
    return bool(message["body"] == body)


async def until_delivered(sender: SlixClient, receiver: SlixClient) -> None:
    """Send ``sender`` → ``receiver`` until one arrives (bounded): after a refusal the
    sending server bounces at once for its back-off period (docs/federation.md)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3 * S2S_TIMEOUT
    while True:
        body = f"retry-{uuid.uuid4().hex[:8]}"
        sender.xmpp.send_message(mto=JID(receiver.jid.bare), mbody=body, mtype="chat")
        arrived = asyncio.ensure_future(
            receiver.next_matching(receiver.messages, functools.partial(_has_body, body))
        )
        bounced = asyncio.ensure_future(sender.next(sender.errors))
        done, pending = await asyncio.wait(
            {arrived, bounced}, timeout=S2S_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if arrived in done and arrived.exception() is None:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{sender.jid} → {receiver.jid}: never delivered")
        await asyncio.sleep(1)


async def wait_log(peer: Peer, text: str, timeout: float = S2S_TIMEOUT) -> str:
    """The peer's log once it contains ``text`` (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while text not in (log := peer.log()):
        if loop.time() > deadline:
            raise AssertionError(f"{peer.name} never logged {text!r}:\n{log[-3000:]}")
        await asyncio.sleep(0.1)
    return log


async def wait_status(api: httpx.AsyncClient, domain: str) -> dict[str, Any]:
    """``domain``'s entry of ``/federation/status`` once a stream with it shows connected."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + S2S_TIMEOUT
    while True:
        r = await api.get("/federation/status")
        assert r.status_code == 200, r.text
        entries = [d for d in r.json()["domains"] if d["domain"] == domain]
        if entries and any(s["connected"] for s in entries[0]["streams"]):
            entry: dict[str, Any] = entries[0]
            return entry
        if loop.time() > deadline:
            raise AssertionError(f"{domain} never showed a connected stream: {r.text}")
        await asyncio.sleep(0.2)
