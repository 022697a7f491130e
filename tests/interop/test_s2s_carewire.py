"""Two (three) Carewire servers federating over real TLS, with real slixmpp clients.

a.test and b.test hold certificates from a test CA (SASL EXTERNAL, XEP-0178);
c.test keeps its self-signed certificate and authenticates with dialback
(XEP-0220). Static routes make them find each other on ephemeral ports. The
servers are the session fixture ``federation`` (tests/interop/federated.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from slixmpp import JID

from tests.interop.s2speer import S2SPeer
from tests.interop.slix import SlixClient
from tests.serverproc import RunningServer

pytestmark = pytest.mark.timeout(300)  # the first test on a worker waits for three start-ups
Slix = Callable[..., Awaitable[SlixClient]]


async def _message(sender: SlixClient, to: str, body: str) -> None:
    sender.xmpp.send_message(mto=JID(to), mbody=body, mtype="chat")


async def test_messages_both_ways_with_certificates(federation: dict[str, Any], slix: Slix) -> None:
    a: RunningServer = federation["a.test"]
    b: RunningServer = federation["b.test"]
    alice = await slix(a, *a.account())
    bob = await slix(b, *b.account())
    await _message(alice, str(bob.jid), "hello from a")
    got = await bob.next_matching(bob.messages, lambda m: m["body"] == "hello from a")
    assert got["from"].bare == alice.jid.bare
    await _message(bob, str(alice.jid), "hello from b")
    got = await alice.next_matching(alice.messages, lambda m: m["body"] == "hello from b")
    assert got["from"].bare == bob.jid.bare
    assert "s2s" in a.log() and "established (certificate)" in a.log()


async def test_disco_both_ways(federation: dict[str, Any], slix: Slix) -> None:
    a: RunningServer = federation["a.test"]
    b: RunningServer = federation["b.test"]
    alice = await slix(a, *a.account())
    bob = await slix(b, *b.account())
    info = await asyncio.wait_for(alice.plugin["xep_0030"].get_info(jid="b.test"), 10)
    assert info["disco_info"]["identities"]
    info = await asyncio.wait_for(bob.plugin["xep_0030"].get_info(jid="a.test"), 10)
    assert info["disco_info"]["identities"]


async def test_dialback_for_a_self_signed_peer(federation: dict[str, Any], slix: Slix) -> None:
    a: RunningServer = federation["a.test"]
    c: RunningServer = federation["c.test"]
    carol = await slix(c, *c.account())
    alice = await slix(a, *a.account())
    await _message(carol, str(alice.jid), "dialback works")
    got = await alice.next_matching(alice.messages, lambda m: m["body"] == "dialback works")
    assert got["from"].bare == carol.jid.bare
    assert "established (dialback)" in a.log()
    # The answer needs a stream from a.test to c.test: a.test cannot trust c.test's
    # certificate, so it authenticates with dialback too, verified by c.test calling back.
    await _message(alice, str(carol.jid), "dialback back")
    got = await carol.next_matching(carol.messages, lambda m: m["body"] == "dialback back")
    assert got["from"].bare == alice.jid.bare
    assert "s2s out stream with c.test established (dialback)" in a.log()


@pytest.mark.parametrize(
    ("domain", "condition"),
    [("nowhere.test", "remote-server-not-found"), ("silent.test", "remote-server-timeout")],
)
async def test_bounces(federation: dict[str, Any], slix: Slix, domain: str, condition: str) -> None:
    a: RunningServer = federation["a.test"]
    alice = await slix(a, *a.account())
    alice.xmpp.send_message(mto=JID(f"someone@{domain}"), mbody="anyone?", mtype="chat")
    err = await alice.next(alice.errors, timeout=15)
    assert err["error"]["condition"] == condition


async def test_stanza_before_authentication_closes_only_that_stream(
    federation: dict[str, Any], slix: Slix
) -> None:
    a: RunningServer = federation["a.test"]
    reader, writer = await asyncio.open_connection("127.0.0.1", a.ports["s2s"])
    writer.write(
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
        b"xmlns:stream='http://etherx.jabber.org/streams' from='evil.test' to='a.test' "
        b"version='1.0'><message from='x@evil.test' to='user0@a.test'><body>hi</body></message>"
    )
    await writer.drain()
    data = b""
    while b"</stream:stream>" not in data:
        chunk = await asyncio.wait_for(reader.read(4096), 10)
        if not chunk:
            break
        data += chunk
    assert b"not-authorized" in data or b"policy-violation" in data
    writer.close()
    # Other streams keep working.
    await test_messages_both_ways_with_certificates(federation, slix)


async def test_a_dialback_key_that_does_not_verify_closes_that_stream(
    federation: dict[str, Any], slix: Slix
) -> None:
    """A peer claims to be c.test with a made-up key: a.test asks the real c.test, which says no."""
    a: RunningServer = federation["a.test"]
    impostor = await S2SPeer.connect(a.ports["s2s"], domain="c.test", to="a.test")
    try:
        features = await impostor.starttls(None, None)  # no certificate: dialback only
        assert "<dialback" in features
        await impostor.send("<db:result from='c.test' to='a.test'>" + "0" * 64 + "</db:result>")
        answer = await impostor.closed_with(timeout=30)
        assert "type='invalid'" in answer or 'type="invalid"' in answer, answer
        assert "not-authorized" in answer
    finally:
        impostor.close()
    await test_messages_both_ways_with_certificates(federation, slix)
