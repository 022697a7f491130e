"""Federation policy and bad input against one real server, with raw TLS peers in the test process.

The server p.test runs with a tight policy: an allow-list, certificates only
(no dialback), one pinned self-signed certificate, a small stanza size and a
low per-domain rate. Each misbehaving peer (tests/interop/s2speer.py) must see
its stream closed with the right error, and afterwards a well-behaved peer and
a local client still exchange messages (:func:`still_works`).
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from slixmpp import JID

from tests.dnsserver import DnsServer
from tests.dnsserver import running as running_dns
from tests.interop.s2speer import S2SPeer, close_leftover_peers
from tests.interop.slix import SlixClient
from tests.security.pki import NOW, Issued, Pki, issue
from tests.serverproc import RunningServer, init_data_dir, server_env, serving

pytestmark = pytest.mark.timeout(300)  # the first test waits for the server's start-up
Slix = Callable[..., Awaitable[SlixClient]]
DOMAIN = "p.test"
GOOD = ("trusted.test", "flood.test", "slow.test", "big.test", "evil.test")
PEERS = (*GOOD, "pinned.test", "selfsigned.test", "expired.test", "stranger.test")


@dataclass
class Env:
    server: RunningServer
    files: dict[str, tuple[Path, Path]]  # domain → (certificate chain, key)
    dns: DnsServer
    srv_listener: socket.socket  # where srv.test's SRV record points


def _write(directory: Path, name: str, issued: Issued, chain: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    cert.write_text(chain)
    key.write_text(issued.key_pem())
    return cert, key


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    stack = ExitStack()
    pki = Pki()
    certs = tmp_path_factory.mktemp("peers")
    root = certs / "root.pem"
    root.write_text(pki.root.cert_pem())
    files: dict[str, tuple[Path, Path]] = {}
    for domain in GOOD:
        leaf = pki.leaf([domain], subject=domain)
        files[domain] = _write(certs, domain, leaf, pki.chain_pem(leaf, with_key=False))
    for domain in ("pinned.test", "selfsigned.test"):
        own = issue(domain, names=[domain])
        files[domain] = _write(certs, domain, own, own.cert_pem())
    old = pki.leaf(["expired.test"], subject="expired.test", not_after=NOW + timedelta(days=1))
    files["expired.test"] = _write(certs, "expired.test", old, pki.chain_pem(old, with_key=False))
    other = Pki()
    leaf = other.leaf(["stranger.test"], subject="stranger.test")
    files["stranger.test"] = _write(
        certs, "stranger.test", leaf, other.chain_pem(leaf, with_key=False)
    )
    pinned = files["pinned.test"][0].read_text()
    fingerprint = hashlib.sha256(
        x509.load_pem_x509_certificate(pinned.encode()).public_bytes(Encoding.DER)
    ).hexdigest()
    with socket.socket() as s:  # nothing listens: dials to the peers fail fast
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    dns = stack.enter_context(running_dns())
    listener = stack.enter_context(socket.socket())
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    dns.xmpp_domain("srv.test", s2s_port=listener.getsockname()[1])
    data_dir = tmp_path_factory.mktemp(DOMAIN)
    server_vars = server_env(
        {
            "CAREWIRE_S2S_ENABLED": "true",
            "CAREWIRE_S2S_TLS_PORT": "0",
            "CAREWIRE_S2S_CA_FILE": str(root),
            "CAREWIRE_S2S_ALLOW": ",".join(d for d in (*PEERS, "srv.test") if d != "evil.test"),
            "CAREWIRE_S2S_DNS_SERVER": dns.address,  # srv.test: SRV records, no static route
            "CAREWIRE_S2S_CERTIFICATES_ONLY": "true",
            "CAREWIRE_S2S_PINS": f"pinned.test={fingerprint}",
            "CAREWIRE_S2S_MAX_STANZA_SIZE": "8192",
            "CAREWIRE_S2S_RATE": "5",
            "CAREWIRE_S2S_BURST": "20",
            "CAREWIRE_S2S_CONNECT_TIMEOUT": "3s",
            "CAREWIRE_S2S_ROUTES": ",".join(f"{d}=127.0.0.1:{dead}" for d in PEERS),
            "CAREWIRE_XMPP_MAX_READ_RATE": "0",  # the slow-reader test sends megabytes
        }
    )
    init_data_dir(data_dir, accounts=40, env=server_vars, domain=DOMAIN)
    leaf = pki.leaf([DOMAIN], subject=DOMAIN)
    (data_dir / "certs" / "xmpp.pem").write_text(pki.chain_pem(leaf, with_key=False))
    (data_dir / "certs" / "xmpp.key").write_text(leaf.key_pem())
    server = stack.enter_context(
        serving(data_dir, accounts=40, env=server_vars, domain=DOMAIN, start_timeout=150)
    )
    with stack:
        yield Env(server, files, dns, listener)


@pytest.fixture(autouse=True)
def _close_peers() -> Iterator[None]:
    yield
    close_leftover_peers()


async def peer(env: Env, domain: str, **kwargs: int) -> tuple[S2SPeer, str]:
    """A peer past STARTTLS (its certificate presented); returns it and the server's features."""
    p = await S2SPeer.connect(env.server.ports["s2s"], domain=domain, to=DOMAIN, **kwargs)
    cert, key = env.files[domain]
    return p, await p.starttls(cert, key)


async def authenticated(env: Env, domain: str, **kwargs: int) -> S2SPeer:
    p, features = await peer(env, domain, **kwargs)
    assert "EXTERNAL" in features, features
    answer = await p.external()
    assert "</stream:features>" in answer or "<stream:features/>" in answer, answer
    return p


_round = iter(range(1000))


async def still_works(env: Env, slix: Slix) -> None:
    """A certificate-authenticated peer and a local client exchange messages both ways."""
    n = next(_round)
    good = await authenticated(env, "trusted.test")
    try:
        client = await slix(env.server, *env.server.account())
        await good.message("t@trusted.test", str(client.jid), f"ping-{n}")
        await client.next_matching(client.messages, lambda m: m["body"] == f"ping-{n}", 20)
        client.xmpp.send_message(mto=JID("t@trusted.test"), mbody=f"pong-{n}", mtype="chat")
        await good.read_until(f"pong-{n}")
    finally:
        good.close()


def error_in(text: str, condition: str) -> bool:
    return "<stream:error>" in text and f"<{condition} " in text


async def test_a_trusted_certificate_authenticates(env: Env, slix: Slix) -> None:
    await still_works(env, slix)


async def test_a_pinned_self_signed_certificate_authenticates(env: Env, slix: Slix) -> None:
    p = await authenticated(env, "pinned.test")
    client = await slix(env.server, *env.server.account())
    await p.message("x@pinned.test", str(client.jid), "pinned hello")
    await client.next_matching(client.messages, lambda m: m["body"] == "pinned hello", 20)
    p.close()


async def test_a_domain_off_the_allow_list_is_refused(env: Env, slix: Slix) -> None:
    p, answer = await peer(env, "evil.test")  # its certificate is fine; the policy is not
    assert error_in(answer, "policy-violation"), answer
    p.close()
    await still_works(env, slix)


async def test_certificates_only_refuses_dialback(env: Env, slix: Slix) -> None:
    p, features = await peer(env, "selfsigned.test")
    assert "<dialback" not in features and "EXTERNAL" not in features
    await p.send("<db:result from='selfsigned.test' to='p.test'>0123abcd</db:result>")
    assert error_in(await p.closed_with(), "not-authorized")
    p.close()
    await still_works(env, slix)


@pytest.mark.parametrize("domain", ["expired.test", "stranger.test", "selfsigned.test"])
async def test_an_invalid_certificate_does_not_authenticate(
    env: Env, slix: Slix, domain: str
) -> None:
    p, features = await peer(env, domain)
    assert "EXTERNAL" not in features
    answer = await p.external(bidi=False)
    assert "<failure" in answer
    p.close()
    await still_works(env, slix)


async def test_a_stanza_before_authentication_is_not_authorized(env: Env, slix: Slix) -> None:
    p, _ = await peer(env, "trusted.test")
    await p.message("t@trusted.test", f"user0@{DOMAIN}", "too early")
    assert error_in(await p.closed_with(), "not-authorized")
    p.close()
    await still_works(env, slix)


async def test_a_from_the_stream_did_not_authenticate_is_invalid_from(env: Env, slix: Slix) -> None:
    p = await authenticated(env, "big.test")
    await p.message("mallory@trusted.test", f"user0@{DOMAIN}", "spoofed")
    assert error_in(await p.closed_with(), "invalid-from")
    p.close()
    await still_works(env, slix)


async def test_an_oversized_stanza_is_a_policy_violation(env: Env, slix: Slix) -> None:
    p = await authenticated(env, "big.test")
    await p.message("b@big.test", f"user0@{DOMAIN}", "x" * 10_000)
    assert error_in(await p.closed_with(), "policy-violation")
    p.close()
    await still_works(env, slix)


async def test_a_flood_from_one_domain_closes_its_stream(env: Env, slix: Slix) -> None:
    p = await authenticated(env, "flood.test")
    client = await slix(env.server, *env.server.account())
    await p.send(
        "".join(
            f"<message from='f@flood.test' to='{client.jid}' type='chat'><body>f{i}</body>"
            "</message>"
            for i in range(60)
        )
    )
    assert error_in(await p.closed_with(), "policy-violation")
    p.close()
    await still_works(env, slix)


async def test_a_peer_that_stops_reading_is_cut_off(env: Env, slix: Slix) -> None:
    slow = await authenticated(env, "slow.test", recv_buffer=4096)  # then never reads again
    client = await slix(env.server, *env.server.account())
    body = "y" * 6000
    for _batch in range(60):
        for _ in range(50):
            client.xmpp.send_message(mto=JID("s@slow.test"), mbody=body, mtype="chat")
        await asyncio.sleep(0.5)
        if "the peer stopped reading" in env.server.log():
            break
    else:
        pytest.fail("the stream to the peer that stopped reading was never closed")
    slow.close()
    await still_works(env, slix)


async def test_srv_records_lead_to_the_peer(env: Env, slix: Slix) -> None:
    """No static route for srv.test: the server asks the DNS server and dials the SRV target."""
    client = await slix(env.server, *env.server.account())
    client.xmpp.send_message(mto=JID("x@srv.test"), mbody="via SRV", mtype="chat")
    loop = asyncio.get_running_loop()
    env.srv_listener.setblocking(False)
    conn, _ = await asyncio.wait_for(loop.sock_accept(env.srv_listener), 30)
    with conn:
        header = await asyncio.wait_for(loop.sock_recv(conn, 4096), 20)
        assert b"to='srv.test'" in header and b"jabber:server" in header
    assert ("_xmpps-server._tcp.srv.test", "SRV") in env.dns.queries
    assert ("_xmpp-server._tcp.srv.test", "SRV") in env.dns.queries
    assert ("xmpp.srv.test", "A") in env.dns.queries
    # The peer hung up: the message comes back as remote-server-not-found.
    err = await client.next(client.errors, timeout=20)
    assert err["error"]["condition"] == "remote-server-not-found"


async def test_refusals_are_audited(env: Env, slix: Slix) -> None:
    # Its own refusals and an established link: the test does not rely on the others' order.
    p, answer = await peer(env, "evil.test")
    assert error_in(answer, "policy-violation"), answer
    p.close()
    p, _ = await peer(env, "selfsigned.test")
    await p.send("<db:result from='selfsigned.test' to='p.test'>0123abcd</db:result>")
    assert error_in(await p.closed_with(), "not-authorized")
    p.close()
    p, _ = await peer(env, "expired.test")
    assert "<failure" in await p.external(bidi=False)
    p.close()
    await still_works(env, slix)
    # The audit trail is written in batches: poll (bounded) until every entry is there.
    wanted = ("evil.test", "selfsigned.test", "expired.test", "s2s.established", "s2s.refused")
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        r = await asyncio.to_thread(
            env.server.cli, "audit", "list", "--action", "s2s", "--limit", "200"
        )
        assert r.returncode == 0, r.stderr
        missing = [w for w in wanted if w not in r.stdout]
        if not missing:
            break
        assert asyncio.get_running_loop().time() < deadline, f"not audited: {missing}\n{r.stdout}"
        await asyncio.sleep(0.5)
