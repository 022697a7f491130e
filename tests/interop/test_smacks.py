"""XEP-0198 stream management against real clients: acks, and resumption after a dropped socket."""

from __future__ import annotations

import asyncio
import re
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from types import SimpleNamespace
from typing import Any

import pytest
import slixmpp

from tests.interop.rawclient import HOST, RawClient
from tests.interop.slix import TIMEOUT, SlixClient
from tests.interop.test_aioxmpp import _security_layer
from tests.interop.wsclient import WsXmpp
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop

Factory = Callable[..., Awaitable[SlixClient]]
SM = "urn:xmpp:sm:3"


def with_sm(events: dict[str, asyncio.Event]) -> Callable[[slixmpp.ClientXMPP], None]:
    """Register xep_0198 and turn its events into asyncio events."""

    def configure(xmpp: slixmpp.ClientXMPP) -> None:
        xmpp.register_plugin("xep_0198")
        for name in ("sm_enabled", "session_resumed", "sm_failed"):
            event = events.setdefault(name, asyncio.Event())
            xmpp.add_event_handler(name, lambda _e, ev=event: ev.set())

    return configure


async def authenticated(server: RunningServer, login: str, password: str) -> RawClient:
    """A raw connection, authenticated and not bound (where <resume/> is allowed)."""
    client = await RawClient.connect(server.ports["c2s"], domain=server.domain)
    await client.open_stream()
    await client.starttls()
    assert (await client.authenticate(login, password, "PLAIN")).startswith("<success")
    await client.open_stream()
    return client


async def bodies_until(client: SlixClient, last: str) -> list[str]:
    """Message bodies received up to and including ``last``."""
    got: list[str] = []
    while not got or got[-1] != last:
        msg = await client.next(client.messages)
        got.append(str(msg["body"]))
    return got


async def test_slixmpp_resumes_after_the_socket_drops(server: RunningServer, slix: Factory) -> None:
    """Messages sent while the socket is gone arrive once after resumption, both ways."""
    a_login, a_pw = server.account()
    b_login, b_pw = server.account()
    events: dict[str, asyncio.Event] = {}
    alice = await slix(server, a_login, a_pw, resource="phone", configure=with_sm(events))
    await asyncio.wait_for(events["sm_enabled"].wait(), TIMEOUT)
    bob = await slix(server, b_login, b_pw)
    tag = uuid.uuid4().hex[:6]

    bob.xmpp.send_message(mto=alice.jid, mbody=f"before-{tag}", mtype="chat")
    assert await bodies_until(alice, f"before-{tag}") == [f"before-{tag}"]
    # Sent just before the socket dies: the server may or may not have handled it;
    # either way the counts exchanged at resumption make it arrive once.
    alice.xmpp.send_message(mto=bob.jid, mbody=f"last-words-{tag}", mtype="chat")
    alice.xmpp.abort()
    for i in (1, 2):
        bob.xmpp.send_message(mto=alice.jid, mbody=f"away-{i}-{tag}", mtype="chat")
    # bob's stanzas are handled in order: once the ping is answered, both were routed.
    await bob.plugin["xep_0199"].ping(jid=server.domain, timeout=TIMEOUT)

    alice.xmpp.connect(HOST, server.ports["c2s"])
    await asyncio.wait_for(events["session_resumed"].wait(), TIMEOUT)
    assert not events["sm_failed"].is_set()
    assert str(alice.jid) == f"{a_login}@{server.domain}/phone"
    bob.xmpp.send_message(mto=alice.jid, mbody=f"after-{tag}", mtype="chat")
    got = await bodies_until(alice, f"after-{tag}")
    assert got == [f"away-1-{tag}", f"away-2-{tag}", f"after-{tag}"]  # nothing twice
    alice.xmpp.send_message(mto=bob.jid, mbody=f"done-{tag}", mtype="chat")
    assert await bodies_until(bob, f"done-{tag}") == [f"last-words-{tag}", f"done-{tag}"]


async def test_slixmpp_acks_and_a_clean_close(server: RunningServer, slix: Factory) -> None:
    """Every few stanzas slixmpp asks for an ack; after </stream> the id is gone."""
    a_login, a_pw = server.account()
    events: dict[str, asyncio.Event] = {}
    alice = await slix(server, a_login, a_pw, configure=with_sm(events))
    await asyncio.wait_for(events["sm_enabled"].wait(), TIMEOUT)
    sm = alice.plugin["xep_0198"]
    for _ in range(5):  # the plugin's window is 5: <r/> goes out just before the fifth
        await alice.plugin["xep_0199"].ping(jid=server.domain, timeout=TIMEOUT)
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while sm.last_ack < 4:  # the server's <a h='4'/> arrives
        assert asyncio.get_running_loop().time() < deadline, "no ack from the server"
        await asyncio.sleep(0.01)
    previd = sm.sm_id
    await alice.disconnect()
    raw = await authenticated(server, a_login, a_pw)
    await raw.send(f"<resume xmlns='{SM}' previd='{previd}' h='0'/>")
    text = await raw.read_until("</failed>")
    assert "<item-not-found" in text


async def test_unknown_or_foreign_resumption_ids_fail(server: RunningServer, slix: Factory) -> None:
    """Another account cannot resume a detached session, and garbage ids are not found."""
    a_login, a_pw = server.account()
    m_login, m_pw = server.account()
    events: dict[str, asyncio.Event] = {}
    alice = await slix(server, a_login, a_pw, configure=with_sm(events))
    await asyncio.wait_for(events["sm_enabled"].wait(), TIMEOUT)
    previd = alice.plugin["xep_0198"].sm_id
    alice.xmpp.abort()
    raw = await authenticated(server, m_login, m_pw)
    for attempt in (previd, "not-an-id"):
        await raw.send(f"<resume xmlns='{SM}' previd='{attempt}' h='0'/>")
        assert "<item-not-found" in await raw.read_until("</failed>")
    await raw.send(f"<enable xmlns='{SM}'/>")  # before binding
    assert "<unexpected-request" in await raw.read_until("</failed>")


async def test_websocket_session_resumes_over_tcp(server: RunningServer) -> None:
    """A WebSocket that goes away without <close/> leaves a session a TCP stream can resume."""
    login, password = server.account()
    b_login, b_pw = server.account()
    async with WsXmpp.connect(server) as ws:
        jid = await ws.login(login, password, resource="web")
        await ws.send(f"<enable xmlns='{SM}' resume='true'/>")
        enabled = await ws.expect(r"^<enabled\b")
        found = re.search(r"id=[\"']([^\"']+)", enabled)
        assert found is not None, enabled
    bob = await RawClient.login(server.ports["c2s"], b_login, b_pw, domain=server.domain)
    tag = uuid.uuid4().hex[:6]
    await bob.message(jid, f"while-away-{tag}")
    await bob.ping()  # routed: queued for the detached session
    raw = await authenticated(server, login, password)
    await raw.send(f"<resume xmlns='{SM}' previd='{found.group(1)}' h='0'/>")
    assert "<resumed" in await raw.read_until("<resumed")
    assert f"while-away-{tag}" in await raw.read_until(f"while-away-{tag}")
    raw.jid = jid
    await raw.send(f"<r xmlns='{SM}'/>")
    assert 'h="0"' in await raw.read_until(re.compile(r"<a [^>]*/>"))


@pytest.fixture
def ax() -> SimpleNamespace:
    import importlib

    return SimpleNamespace(
        aioxmpp=importlib.import_module("aioxmpp"),
        connector=importlib.import_module("aioxmpp.connector"),
        dispatcher=importlib.import_module("aioxmpp.dispatcher"),
        security_layer=importlib.import_module("aioxmpp.security_layer"),
        aiosasl=importlib.import_module("aiosasl"),
    )


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as s:
        yield s


async def test_aioxmpp_resumes_its_stream(
    server: RunningServer, ax: SimpleNamespace, stack: AsyncExitStack, slix: Factory
) -> None:
    """aioxmpp enables resumable stream management by itself and resumes after a broken stream."""
    login, password = server.account()
    b_login, b_pw = server.account()
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    resumed = asyncio.Event()
    client = ax.aioxmpp.PresenceManagedClient(
        ax.aioxmpp.JID.fromstr(f"{login}@{server.domain}"),
        _security_layer(ax, password, "SCRAM-SHA-256"),
        override_peer=[(HOST, server.ports["c2s"], ax.connector.STARTTLSConnector())],
    )
    client.summon(ax.dispatcher.SimpleMessageDispatcher).register_callback(
        ax.aioxmpp.MessageType.CHAT, None, inbox.put_nowait
    )
    client.on_stream_resumed.connect(lambda: resumed.set())
    await asyncio.wait_for(stack.enter_async_context(client.connected()), TIMEOUT)
    assert client.stream.sm_enabled and client.stream.sm_resumable
    bob = await slix(server, b_login, b_pw)
    tag = uuid.uuid4().hex[:6]
    # Break the TCP connection under aioxmpp (as a network failure would): it
    # reconnects and resumes. There is no public way to reach the socket.
    transport = client.stream._xmlstream.transport
    transport.get_extra_info("socket").shutdown(socket.SHUT_RDWR)
    bob.xmpp.send_message(mto=slixmpp.JID(str(client.local_jid)), mbody=f"away-{tag}", mtype="chat")
    await asyncio.wait_for(resumed.wait(), TIMEOUT)
    bob.xmpp.send_message(
        mto=slixmpp.JID(str(client.local_jid)), mbody=f"after-{tag}", mtype="chat"
    )
    got: list[str] = []
    while not got or got[-1] != f"after-{tag}":
        msg = await asyncio.wait_for(inbox.get(), TIMEOUT)
        got.append(next(iter(msg.body.values())))
    assert got == [f"away-{tag}", f"after-{tag}"]
