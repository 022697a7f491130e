"""Two (three) Carewire servers federating over real TLS, with real slixmpp clients.

a.test and b.test hold certificates from a test CA (SASL EXTERNAL, XEP-0178);
c.test keeps its self-signed certificate and authenticates with dialback
(XEP-0220). Static routes make them find each other on ephemeral ports.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from tests.interop.slix import SlixClient
from tests.security.pki import Pki
from tests.serverproc import RunningServer, init_data_dir, server_env, serving

pytestmark = pytest.mark.timeout(120)
Slix = Callable[..., Awaitable[SlixClient]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    pki = Pki()
    root = tmp_path_factory.mktemp("ca") / "root.pem"
    root.write_text(pki.root.cert_pem())
    silent = socket.socket()  # accepts connections (backlog) and never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    dead = _free_port()  # nothing listens here
    ports = {d: _free_port() for d in ("a.test", "b.test", "c.test")}
    routes = {d: f"127.0.0.1:{p}" for d, p in ports.items()}
    routes["silent.test"] = f"127.0.0.1:{silent.getsockname()[1]}"
    routes["nowhere.test"] = f"127.0.0.1:{dead}"
    servers: dict[str, Any] = {"pki": pki}
    from contextlib import ExitStack

    with ExitStack() as stack:
        for domain in ports:
            data_dir = tmp_path_factory.mktemp(domain)
            env = server_env(
                {
                    "CAREWIRE_S2S_ENABLED": "true",
                    "CAREWIRE_S2S_TLS_PORT": "0",
                    "CAREWIRE_S2S_CA_FILE": str(root),
                    "CAREWIRE_S2S_CONNECT_TIMEOUT": "2s",
                    "CAREWIRE_S2S_ROUTES": ",".join(
                        f"{d}={r}" for d, r in routes.items() if d != domain
                    ),
                }
            )
            init_data_dir(data_dir, accounts=10, env=env, domain=domain)
            if domain != "c.test":  # c.test keeps its self-signed certificate: dialback
                leaf = pki.leaf([domain, f"chat.{domain}"], subject=domain)
                (data_dir / "certs" / "xmpp.pem").write_text(pki.chain_pem(leaf, with_key=False))
                (data_dir / "certs" / "xmpp.key").write_text(leaf.key_pem())
            servers[domain] = stack.enter_context(
                serving(data_dir, accounts=10, env=env, domain=domain, s2s_port=ports[domain])
            )
        yield servers
    silent.close()


async def _message(sender: SlixClient, to: str, body: str) -> None:
    sender.xmpp.send_message(mto=to, mbody=body, mtype="chat")


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


@pytest.mark.parametrize(
    ("domain", "condition"),
    [("nowhere.test", "remote-server-not-found"), ("silent.test", "remote-server-timeout")],
)
async def test_bounces(federation: dict[str, Any], slix: Slix, domain: str, condition: str) -> None:
    a: RunningServer = federation["a.test"]
    alice = await slix(a, *a.account())
    alice.xmpp.send_message(mto=f"someone@{domain}", mbody="anyone?", mtype="chat")
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
