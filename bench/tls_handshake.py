"""``python -m bench.tls_handshake``: the server's CPU for one c2s TLS handshake, full vs resumed.

In process, one core, no sockets: the server side is an ``SSLObject`` from the
c2s listener's own context (:func:`carewire.net.tls.server_context`, with the
certificate ``carewire init`` makes: ECDSA P-256), the client a TLS 1.3
context; records go between them through memory BIOs. Only the server's
calls are timed (``time.thread_time``): ``wrap_bio``, every ``do_handshake``
and the write that flushes the session ticket. ``full`` makes a new session
each time; ``resumed`` resumes the ticket of the previous connection, as a
reconnecting phone does. ``--no-ticket`` also times full handshakes of a
context that issues no ticket (what minting the ticket costs).
"""

from __future__ import annotations

import argparse
import ssl
import tempfile
import time
from pathlib import Path

from carewire.net.tls import ALPN_XMPP_CLIENT, server_context
from carewire.security.certificates import create_self_signed


def _client() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # self-signed, in process
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, session: ssl.SSLSession | None
) -> tuple[float, ssl.SSLSession | None, bool]:
    """One handshake: (server CPU seconds, the client's new session, whether it resumed)."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    t = time.thread_time()
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    spent = time.thread_time() - t
    cli = client.wrap_bio(c_in, c_out, server_hostname="bench.test", session=session)
    client_done = server_done = False
    for _ in range(10):
        if not client_done:
            try:
                cli.do_handshake()
                client_done = True
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        if not server_done:
            t = time.thread_time()
            try:
                srv.do_handshake()
                server_done = True
            except ssl.SSLWantReadError:
                pass
            spent += time.thread_time() - t
        c_in.write(s_out.read())
        if client_done and server_done:
            break
    else:
        raise RuntimeError("the handshake did not complete")
    t = time.thread_time()
    srv.write(b" ")  # TLS 1.3: the ticket goes out with the first write after the handshake
    spent += time.thread_time() - t
    c_in.write(s_out.read())
    cli.read(1)  # the client takes the ticket in
    return spent, cli.session, cli.session_reused


def measure(server: ssl.SSLContext, n: int, *, resume: bool) -> tuple[float, int]:
    """Mean server CPU (µs) over ``n`` handshakes, and how many resumed."""
    client = _client()
    _, session, _ = handshake(server, client, None)
    total, resumed = 0.0, 0
    for _ in range(n):
        spent, new, reused = handshake(server, client, session if resume else None)
        total += spent
        resumed += reused
        if resume:
            session = new  # a fresh ticket per connection, as a phone keeps it
    return total / n * 1e6, resumed


def main(argv: list[str] | None = None) -> int:
    """Print the server's CPU per handshake, alternating full and resumed."""
    p = argparse.ArgumentParser(prog="python -m bench.tls_handshake", description=__doc__)
    p.add_argument("--handshakes", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-ticket", action="store_true")
    args = p.parse_args(argv)
    n = max(1, min(args.handshakes, 100_000))
    with tempfile.TemporaryDirectory(prefix="carewire-tls-") as tmp:
        cert, key = Path(tmp) / "xmpp.pem", Path(tmp) / "xmpp.key"
        create_self_signed("bench.test", cert, key)
        server = server_context(cert, key, alpn=[ALPN_XMPP_CLIENT])
        for r in range(1, max(1, min(args.rounds, 20)) + 1):
            for resume in (False, True):
                us, resumed = measure(server, n, resume=resume)
                kind = "resumed" if resume else "full"
                print(f"round {r} {kind:7s}: server {us:6.1f} µs CPU per handshake ({resumed}/{n})")
        if args.no_ticket:
            server.num_tickets = 0
            us, _ = measure(server, n, resume=False)
            print(f"full, no ticket issued: server {us:6.1f} µs CPU per handshake")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
