"""``python -m bench.s2s``: federation figures on loopback (issue 19).

Started here, all on 127.0.0.1 with ephemeral ports: the tests' DNS server
(``tests/dnsserver.py``), the test CA (``tests/peers/pki.py``), two federating
Carewire servers (``cw-a.example``, ``cw-b.example``, ``tests/peers/carewire.py``)
and a Prosody (``prosody.example``, ``tests/peers/prosody.py``). Then:

1. **Throughput over one federated stream**: one sender on Carewire A, one
   receiver on the peer (Prosody, then Carewire B); ``--messages`` chat
   messages sent with at most ``--window`` unacknowledged in flight (the
   receiver's count is the acknowledgement), figure = messages / second from
   the first send to the last delivery. Every message crosses the one s2s
   stream A → peer.
2. **Latency at ``--rate`` msg/s offered** (1,000 by default) for
   ``--seconds``: the sender paces its sends; each body carries its send time;
   p50/p99/max of send → delivery, and how many arrived.
   A phase that stalls (nothing delivered for ``--timeout``) is reported as such.
3. **Connection set-up with SASL EXTERNAL**: ``--setups`` times, a fresh
   raw s2s connection to Carewire A from ``bench-peer.example`` (CA-signed
   client certificate): TCP, stream header, STARTTLS, TLS handshake, stream
   restart, ``<auth mechanism='EXTERNAL'>``, ``<success/>``, restart, features.

Every phase is bounded (``--timeout`` per wait). Figures are wall-clock on a
shared machine; the client and all servers share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import re
import ssl
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from tests.dnsserver import DnsServer, running
from tests.peers.carewire import start_carewire
from tests.peers.common import Peer
from tests.peers.pki import FederationPki, Issued
from tests.peers.prosody import missing_reason, start_prosody
from tests.serverproc import RunningServer

from bench.client import ClientConfig, Session, login
from bench.stats import summary_ms

NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
_BODY = re.compile(rb"<body>(\d+) (\d+\.\d+)</body>")
_FEATURES_END = re.compile(rb"</stream:features>")
_PROCEED = re.compile(rb"<(proceed|failure)\b[^>]*/?>")
_SASL_END = re.compile(rb"<(success|failure)\b[^>]*(/>|>.*?</\1>)", re.S)


def _client(server: RunningServer | Peer, mechanism: str) -> ClientConfig:
    return ClientConfig(
        host="127.0.0.1", port=server.ports["c2s"], domain=server.domain, mechanism=mechanism
    )


async def _pair(
    sender_at: RunningServer, receiver_at: RunningServer | Peer, timeout: float
) -> tuple[Session, Session]:
    s_login, s_pw = sender_at.account()
    r_login, r_pw = receiver_at.account()
    mechanism = "PLAIN" if isinstance(receiver_at, Peer) else "SCRAM-SHA-1"
    sender = await asyncio.wait_for(
        login(_client(sender_at, "SCRAM-SHA-1"), s_login, s_pw, presence=True, sync=True), timeout
    )
    receiver = await asyncio.wait_for(
        login(_client(receiver_at, mechanism), r_login, r_pw, presence=True, sync=True), timeout
    )
    return sender, receiver


def _message(to: str, seq: int) -> bytes:
    return (
        f"<message type='chat' to='{to}' id='m{seq}'>"
        f"<body>{seq} {time.perf_counter():.6f}</body></message>"
    ).encode()


async def _warm(sender: Session, receiver: Session, timeout: float) -> float:
    """Send one message and wait for it: the s2s stream is set up (returns the seconds)."""
    arrived: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_message(_data: bytes) -> None:
        if not arrived.done():
            arrived.set_result(None)

    receiver.on_message = on_message
    start = time.perf_counter()
    sender.send(_message(receiver.bare, 0))
    await asyncio.wait_for(arrived, timeout)
    return time.perf_counter() - start


async def throughput(
    sender_at: RunningServer, receiver_at: RunningServer | Peer, args: argparse.Namespace
) -> dict[str, Any]:
    """Messages per second over the one stream, ``args.window`` in flight at most."""
    sender, receiver = await _pair(sender_at, receiver_at, args.timeout)
    try:
        first = await _warm(sender, receiver, args.timeout)
        got = 0
        progress = asyncio.Event()

        def on_message(data: bytes) -> None:
            nonlocal got
            got += data.count(b"<body>")
            progress.set()

        receiver.on_message = on_message
        start = time.perf_counter()
        sent = 0
        while got < args.messages:
            while sent < args.messages and sent - got < args.window:
                sent += 1
                sender.send(_message(receiver.bare, sent))
            progress.clear()
            try:
                await asyncio.wait_for(progress.wait(), args.timeout)
            except TimeoutError:
                return {"stalled": f"{got} of {sent} sent delivered, nothing for {args.timeout} s"}
        elapsed = time.perf_counter() - start
        return {
            "first_message_s": round(first, 3),
            "messages": got,
            "seconds": round(elapsed, 3),
            "msg_per_s": round(got / elapsed, 1),
        }
    finally:
        sender.close()
        receiver.close()


async def latency(
    sender_at: RunningServer, receiver_at: RunningServer | Peer, args: argparse.Namespace
) -> dict[str, Any]:
    """Send → delivery latency at a paced ``args.rate`` for ``args.seconds``."""
    sender, receiver = await _pair(sender_at, receiver_at, args.timeout)
    try:
        await _warm(sender, receiver, args.timeout)
        delays: list[float] = []
        total = int(args.rate * args.seconds)

        def on_message(data: bytes) -> None:
            now = time.perf_counter()
            delays.extend(now - float(m.group(2)) for m in _BODY.finditer(data))

        receiver.on_message = on_message
        start = time.perf_counter()
        for seq in range(1, total + 1):
            due = start + seq / args.rate
            pause = due - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
            sender.send(_message(receiver.bare, seq))
        deadline = time.perf_counter() + args.timeout
        while len(delays) < total and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        achieved = total / (time.perf_counter() - start)
        return {
            "offered_per_s": args.rate,
            "sent": total,
            "delivered": len(delays),
            "achieved_per_s": round(achieved, 1),
            "latency_ms": summary_ms(delays),
        }
    finally:
        sender.close()
        receiver.close()


class RawS2s(asyncio.Protocol):
    """Just enough of an initiating s2s stream to time STARTTLS + SASL EXTERNAL."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"closed: {exc}"))

    async def expect(self, pattern: re.Pattern[bytes], timeout: float) -> re.Match[bytes]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # Matched on a copy: groups of a match on the bytearray would read it after the cut.
        while (match := pattern.search(bytes(self.buf))) is None:
            self.waiter = loop.create_future()
            await asyncio.wait_for(self.waiter, max(0.001, deadline - loop.time()))
        del self.buf[: match.end()]
        return match

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


def _s2s_header(ours: str, theirs: str) -> bytes:
    return (
        f"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
        f"xmlns:stream='http://etherx.jabber.org/streams' from='{ours}' to='{theirs}' "
        "version='1.0'>"
    ).encode()


def _tls_context(cert_dir: Path, ca: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(ca)
    ctx.load_cert_chain(cert_dir / "bench-peer.example.crt", cert_dir / "bench-peer.example.key")
    return ctx


async def one_setup(target: RunningServer, ctx: ssl.SSLContext, timeout: float) -> dict[str, float]:
    """One SASL EXTERNAL set-up; the seconds of each phase, cumulative from the connect."""
    loop = asyncio.get_running_loop()
    ours = "bench-peer.example"
    t0 = time.perf_counter()
    transport, proto = await asyncio.wait_for(
        loop.create_connection(RawS2s, "127.0.0.1", target.ports["s2s"]), timeout
    )
    try:
        proto.write(_s2s_header(ours, target.domain))
        await proto.expect(_FEATURES_END, timeout)
        proto.write(f"<starttls xmlns='{NS_TLS}'/>".encode())
        if (await proto.expect(_PROCEED, timeout)).group(1) != b"proceed":
            raise RuntimeError("STARTTLS refused")
        tls = await asyncio.wait_for(
            loop.start_tls(transport, proto, ctx, server_hostname=target.domain), timeout
        )
        assert tls is not None
        proto.transport = tls
        t_tls = time.perf_counter()
        proto.write(_s2s_header(ours, target.domain))
        features = (await proto.expect(_FEATURES_END, timeout)).string
        if b"EXTERNAL" not in features:
            raise RuntimeError("SASL EXTERNAL not offered")
        authzid = base64.b64encode(ours.encode()).decode()
        proto.write(f"<auth xmlns='{NS_SASL}' mechanism='EXTERNAL'>{authzid}</auth>".encode())
        if (await proto.expect(_SASL_END, timeout)).group(1) != b"success":
            raise RuntimeError("SASL EXTERNAL failed")
        t_auth = time.perf_counter()
        proto.write(_s2s_header(ours, target.domain))
        await proto.expect(_FEATURES_END, timeout)
        t_ready = time.perf_counter()
        proto.write(b"</stream:stream>")
        return {"tls": t_tls - t0, "authed": t_auth - t0, "ready": t_ready - t0}
    finally:
        (proto.transport or transport).close()


async def setups(
    target: RunningServer, ctx: ssl.SSLContext, args: argparse.Namespace
) -> dict[str, Any]:
    phases: dict[str, list[float]] = {"tls": [], "authed": [], "ready": []}
    for _ in range(args.setups):
        for name, seconds in (await one_setup(target, ctx, args.timeout)).items():
            phases[name].append(seconds)
    return {name: summary_ms(values) for name, values in phases.items()}


@contextmanager
def federation(
    work: Path, pki: FederationPki, dns: DnsServer, s2s_rate: int
) -> Iterator[dict[str, Any]]:
    """Carewire A and B, Prosody, and the benchmark's own client certificate."""
    env = {"CAREWIRE_S2S_RATE": str(s2s_rate)}
    with ExitStack() as stack:
        a = stack.enter_context(
            start_carewire(work / "a", pki, dns, domain="cw-a.example", accounts=8, env=env)
        )
        b = stack.enter_context(
            start_carewire(work / "b", pki, dns, domain="cw-b.example", accounts=8, env=env)
        )
        prosody = stack.enter_context(start_prosody(pki, dns, accounts=8))
        bench_cert: Issued = pki.server("bench-peer.example")
        bench_cert.write(work / "bench-cert", "bench-peer.example")
        ca = pki.write_ca(work / "bench-cert")
        dns.xmpp_domain("bench-peer.example")  # resolvable, never connected to
        yield {"a": a, "b": b, "prosody": prosody, "cert_dir": work / "bench-cert", "ca": ca}


def _print(title: str, result: dict[str, Any]) -> None:
    print(f"\n== {title}")
    for key, value in result.items():
        print(f"  {key:>16}: {value}")


async def _run(servers: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    a: RunningServer = servers["a"]
    results: dict[str, Any] = {}
    for label, peer in (
        ("Carewire → Prosody", servers["prosody"]),
        ("Carewire → Carewire", servers["b"]),
    ):
        results[f"throughput {label}"] = await throughput(a, peer, args)
        _print(f"throughput, one stream, {label}", results[f"throughput {label}"])
        results[f"latency {label}"] = await latency(a, peer, args)
        _print(f"latency at {args.rate:g} msg/s offered, {label}", results[f"latency {label}"])
    ctx = _tls_context(servers["cert_dir"], servers["ca"])
    results["setup"] = await setups(a, ctx, args)
    _print(f"connection set-up with SASL EXTERNAL ({args.setups} times), ms", results["setup"])
    return results


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.s2s", description=__doc__.split("\n")[0])
    p.add_argument("--messages", type=int, default=5000, help="throughput: messages (5000)")
    p.add_argument("--window", type=int, default=200, help="throughput: in flight at most (200)")
    p.add_argument("--rate", type=float, default=1000.0, help="latency: offered msg/s (1000)")
    p.add_argument("--seconds", type=float, default=5.0, help="latency: duration (5 s)")
    p.add_argument("--setups", type=int, default=50, help="SASL EXTERNAL set-ups (50)")
    p.add_argument("--timeout", type=float, default=30.0, help="bound of every wait (30 s)")
    p.add_argument(
        "--s2s-rate",
        type=int,
        default=0,
        help="the Carewire servers' [s2s] rate, stanzas/s per domain (0: unlimited, the "
        "default here; the product's 500/s closes a faster stream with policy-violation)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (reason := missing_reason()) is not None:
        print(f"Prosody cannot run here: {reason}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-s2s-") as tmp, running() as dns:
        pki = FederationPki()
        with federation(Path(tmp), pki, dns, args.s2s_rate) as servers:
            print(f"servers up in {time.perf_counter() - started:.1f} s")
            asyncio.run(_run(servers, args))
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
