"""``python -m bench.fast_login``: FAST reconnects/s against full SCRAM logins/s (XEP-0484).

Reuses the login storm's machinery (:mod:`bench.run`: data directory, account
import, ``carewire serve`` pinned to ``--server-cpu``; :mod:`bench.client`:
the asyncio XMPP protocol and the SCRAM client with its PBKDF2 cache). Each
login is a new direct-TLS connection that authenticates with SASL2 and binds
a resource with Bind2 in the same exchange; sessions stay open until the
phase ends, then are closed before the next phase.

1. priming (unmeasured): every account logs in with SCRAM-SHA-256 and
   ``<request-token/>`` — the generator's PBKDF2 cache fills and every
   account's client gets its FAST token;
2. ``scram``: every account logs in again with SCRAM-SHA-256 (two round
   trips of SASL: initial response → challenge → response → success);
3. ``fast``: every account reconnects as a phone does: it resumes the TLS
   session of its previous connection (a TLS 1.3 session ticket, ``ssl``'s
   ``session=``: no certificate, no signature) and authenticates with
   HT-SHA-256-NONE and its token with Bind2 inline (one round trip; the
   server rotates the token when due and sends the next one).
   ``--no-resume`` makes every FAST reconnect a full TLS handshake too.

Every SCRAM login is a full TLS handshake (certificate and key exchange),
as a first login is. How many handshakes were resumptions is reported per
phase (``tls_resumed``).

Reported per phase: logins/s (completed / wall time of the phase) and the
latency of one login (connect → ``<success/>`` with the bound resource).

Two setups: by default the server has ``--server-cpu`` to itself and the
generator caches every account's PBKDF2 result (as the login storm does), so
the figures are the server's; with ``--one-core`` server and generator share
one CPU and the cache is emptied before each SCRAM phase, so every SCRAM
login pays the client's key derivation too (``--scram-iterations`` rounds),
as a phone that does not keep its salted password does.

``--in-process`` measures the protocol and the server's work without TLS and
sockets: the real kernel on SQLite (the feature tests' harness) and the
simulated SASL2 client of the tests, both on the calling core; every SCRAM
login derives the client's keys with scramp (``--scram-iterations``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextvars
import hashlib
import hmac
import json
import re
import ssl
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.client import (
    _FEATURES_END,
    _SASL_ANSWER,
    ScramClient,
    XmppError,
    XmppProtocol,
    _header,
    _snippet,
    _text,
    client_ssl_context,
    scram_keys,
)
from bench.run import (
    DEFAULT_PASSWORD,
    ManagedServer,
    account_names,
    pin_self,
    prepare_data_dir,
    server_env,
)
from bench.stats import proc_cpu_seconds

SASL2 = "urn:xmpp:sasl:2"
FAST = "urn:xmpp:fast:0"
BIND = "<bind xmlns='urn:xmpp:bind:0'><tag>bench</tag></bind>"
_TOKEN = re.compile(rb"""\btoken=(['"])([^'"]+)\1""")


#: The TLS session the connection being opened resumes (read in :meth:`_Tls.wrap_bio`).
_RESUME: contextvars.ContextVar[ssl.SSLSession | None] = contextvars.ContextVar(
    "resume", default=None
)


class _Tls(ssl.SSLContext):
    """The generator's one client context, resuming the session in :data:`_RESUME`.

    asyncio creates the ``SSLObject`` itself and has no ``session=`` argument;
    a session can only be resumed with the context that made it, so every
    connection of a run shares this one.
    """

    def wrap_bio(  # type: ignore[override]
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return super().wrap_bio(
            incoming, outgoing, server_side, server_hostname, session or _RESUME.get()
        )


def tls_context() -> ssl.SSLContext:
    """What :func:`bench.client.client_ssl_context` sets, on a :class:`_Tls`."""
    base = client_ssl_context()
    ctx = _Tls(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = base.check_hostname
    ctx.verify_mode = base.verify_mode
    ctx.minimum_version = base.minimum_version
    return ctx


class Phone:
    """One account's client: its user-agent id, its latest FAST token and TLS session."""

    def __init__(self, login: str) -> None:
        self.login = login
        self.agent = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench:{login}"))
        self.token = ""
        self.session: ssl.SSLSession | None = None
        self.resumed = False  # whether the last connection resumed a session


async def _connect(
    host: str, port: int, domain: str, tls: ssl.SSLContext, phone: Phone, *, resume: bool
) -> XmppProtocol:
    """Direct TLS (resuming ``phone.session`` if ``resume``), stream header, features.

    The features arrive after the server's TLS 1.3 ticket, so the session kept
    for the next connection holds it.
    """
    loop = asyncio.get_running_loop()
    token = _RESUME.set(phone.session if resume else None)
    try:
        _, proto = await loop.create_connection(
            XmppProtocol, host, port, ssl=tls, server_hostname=domain
        )
    finally:
        _RESUME.reset(token)
    proto.write(_header(domain))
    await proto.expect(_FEATURES_END)
    assert proto.transport is not None
    tls_object: ssl.SSLObject | None = proto.transport.get_extra_info("ssl_object")
    if tls_object is not None:
        phone.resumed = tls_object.session_reused
        phone.session = tls_object.session
    return proto


def _authenticate(mechanism: str, initial: bytes, phone: Phone, extra: str = "") -> bytes:
    return (
        f"<authenticate xmlns='{SASL2}' mechanism='{mechanism}'><initial-response>"
        f"{base64.b64encode(initial).decode()}</initial-response>"
        f"<user-agent id='{phone.agent}'/>{BIND}{extra}</authenticate>"
    ).encode()


async def scram_login(
    host: str, port: int, domain: str, tls: ssl.SSLContext, phone: Phone, *, request_token: bool
) -> XmppProtocol:
    """A full login: full TLS handshake, SASL2 SCRAM-SHA-256 with Bind2 (and a token request)."""
    proto = await _connect(host, port, domain, tls, phone, resume=False)
    scram = ScramClient("SCRAM-SHA-256", phone.login, DEFAULT_PASSWORD)
    extra = f"<request-token xmlns='{FAST}' mechanism='HT-SHA-256-NONE'/>" if request_token else ""
    proto.write(_authenticate("SCRAM-SHA-256", scram.first(), phone, extra))
    kind, chunk = await proto.expect(_SASL_ANSWER)
    if kind != b"challenge":
        raise XmppError(f"SCRAM: {_snippet(chunk)}")
    final = scram.final(base64.b64decode(_text(chunk, "challenge")))
    proto.write(f"<response xmlns='{SASL2}'>{base64.b64encode(final).decode()}</response>".encode())
    kind, chunk = await proto.expect(_SASL_ANSWER)
    if kind != b"success":
        raise XmppError(f"SCRAM: {_snippet(chunk)}")
    scram.verify(base64.b64decode(_text(chunk, "additional-data")))
    _keep_token(phone, chunk)
    await proto.expect(_FEATURES_END)
    return proto


async def fast_login(
    host: str, port: int, domain: str, tls: ssl.SSLContext, phone: Phone, *, resume: bool
) -> XmppProtocol:
    """A reconnect: TLS resumed; SASL2 HT-SHA-256-NONE, token and Bind2 in one round trip."""
    proto = await _connect(host, port, domain, tls, phone, resume=resume)
    key = phone.token.encode()
    proof = hmac.digest(key, b"Initiator", hashlib.sha256)
    initial = phone.login.encode() + b"\x00" + proof
    proto.write(_authenticate("HT-SHA-256-NONE", initial, phone, f"<fast xmlns='{FAST}'/>"))
    kind, chunk = await proto.expect(_SASL_ANSWER)
    if kind != b"success":
        raise XmppError(f"FAST: {_snippet(chunk)}")
    server_proof = base64.b64decode(_text(chunk, "additional-data"))
    if not hmac.compare_digest(server_proof, hmac.digest(key, b"Responder", hashlib.sha256)):
        raise XmppError("FAST: the server does not know the token")
    _keep_token(phone, chunk)
    await proto.expect(_FEATURES_END)
    return proto


async def _idle_cpu_rate(pid: int, seconds: float = 2.0) -> float | None:
    """The server's CPU use (in cores) over ``seconds`` in which no login runs."""
    before = proc_cpu_seconds(pid)
    start = time.perf_counter()
    await asyncio.sleep(seconds)
    after = proc_cpu_seconds(pid)
    if before is None or after is None:
        return None
    return (after - before) / (time.perf_counter() - start)


def _keep_token(phone: Phone, success: bytes) -> None:
    found = _TOKEN.search(success)
    if found is not None:
        phone.token = found.group(2).decode()


async def storm(
    name: str,
    phones: list[Phone],
    concurrency: int,
    login: Any,
    timeout: float,
    server_pid: int | None = None,
) -> dict[str, Any]:
    """Every phone logs in once, ``concurrency`` at a time; sessions close at the end.

    CPU per login (``cpu_ms_per_login``): the server's (all its threads, from
    /proc) and the generator's, over the storm. Background work a login causes
    and that runs after the storm (clinical presence records) is not in it.
    Each phase starts after 2 s in which the previous one's backlog drains.
    """
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    errors: list[str] = []
    open_protos: list[XmppProtocol] = []
    resumed = 0

    async def one(phone: Phone) -> None:
        nonlocal resumed
        async with sem:
            t = time.perf_counter()
            try:
                proto = await asyncio.wait_for(login(phone), timeout)
            except (XmppError, OSError, TimeoutError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
                return
            latencies.append((time.perf_counter() - t) * 1000)
            open_protos.append(proto)
            resumed += phone.resumed

    idle_rate = await _idle_cpu_rate(server_pid) if server_pid else None
    server_cpu = proc_cpu_seconds(server_pid) if server_pid else None
    client_cpu = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(one(p) for p in phones))
    wall = time.perf_counter() - start
    client_cpu = time.process_time() - client_cpu
    if server_cpu is not None and server_pid:
        server_cpu = (proc_cpu_seconds(server_pid) or server_cpu) - server_cpu
    for proto in open_protos:
        if proto.transport is not None:
            proto.transport.abort()
    await asyncio.sleep(1.0)  # let the server end the sessions before the next phase
    latencies.sort()
    result = {
        "phase": name,
        "completed": len(latencies),
        "errors": len(errors),
        "first_errors": errors[:3],
        "wall_s": round(wall, 3),
        "logins_per_s": round(len(latencies) / wall, 1) if wall else 0.0,
        "tls_resumed": resumed,
    }
    if latencies:
        per = 1000 / len(latencies)
        cpu: dict[str, float | None] = {
            "server": round(server_cpu * per, 3) if server_cpu is not None else None,
            "generator": round(client_cpu * per, 3),
        }
        result["cpu_ms_per_login"] = cpu
    if idle_rate is not None:
        # What the server still did in the 2 s before the phase: the previous phase's
        # background writes (clinical presence records, audit) catching up.
        result["server_cpu_pct_before"] = round(idle_rate * 100, 1)
    if latencies:
        result["latency_ms"] = {
            "p50": round(statistics.median(latencies), 2),
            "p99": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        }
    return result


async def run(args: argparse.Namespace, ports: dict[str, int], domain: str) -> dict[str, Any]:
    """The three phases against a running server."""
    host, port = "127.0.0.1", ports["c2s_tls"]
    pid = ports.get("pid")
    phones = [Phone(login) for login in account_names(args.accounts)]
    tls = tls_context()

    async def prime(p: Phone) -> XmppProtocol:
        return await scram_login(host, port, domain, tls, p, request_token=True)

    async def scram(p: Phone) -> XmppProtocol:
        return await scram_login(host, port, domain, tls, p, request_token=False)

    async def fast(p: Phone) -> XmppProtocol:
        return await fast_login(host, port, domain, tls, p, resume=args.resume)

    primed = await storm("priming", phones, args.concurrency, prime, args.login_timeout, pid)
    phones = [p for p in phones if p.token]
    runs: dict[str, list[dict[str, Any]]] = {"scram": [], "fast": []}
    for _ in range(args.rounds):
        if args.one_core:
            scram_keys.cache_clear()  # every SCRAM login derives the client's keys
        runs["scram"].append(
            await storm("scram", phones, args.concurrency, scram, args.login_timeout, pid)
        )
        runs["fast"].append(
            await storm("fast", phones, args.concurrency, fast, args.login_timeout, pid)
        )
    return {"priming": primed, "accounts_with_token": len(phones), **runs}


async def in_process(args: argparse.Namespace) -> dict[str, Any]:
    """SCRAM logins/s and FAST logins/s through the real kernel, no sockets, one core."""
    from tests.core.sasl2_client import AGENT_XML, REQUEST_TOKEN, Client, token_of
    from tests.features.harness import make_harness

    from carewire.config import parse_duration
    from carewire.core.auth import Authenticator, LoginAuditor
    from carewire.core.feature import FeatureConfig

    bind = BIND
    h = await make_harness(
        Path(tempfile.mkdtemp(prefix="carewire-fast-")),
        features=["c2s", "message", "presence", "carbons", "csi", "smacks"],
        config=FeatureConfig(fast_rotate_after=parse_duration(args.rotate_after, "rotate-after")),
    )
    try:
        h.kernel.accounts.iterations = args.scram_iterations
        logins = account_names(args.accounts)
        for login in logins:
            await h.account(login, DEFAULT_PASSWORD)
        auth = Authenticator(h.kernel.stores, h.clock, LoginAuditor(h.kernel.stores))
        tokens = {}
        for login in logins:
            text = await Client(h, auth).scram(login, DEFAULT_PASSWORD, AGENT_XML + REQUEST_TOKEN)
            tokens[login] = token_of(text)
        out: dict[str, Any] = {}
        for _ in range(args.rounds):
            for phase in ("scram", "fast"):
                start = time.perf_counter()
                for login in logins:
                    client = Client(h, auth)
                    if phase == "scram":
                        text = await client.scram(login, DEFAULT_PASSWORD, AGENT_XML + bind)
                    else:
                        text = await client.fast(login, tokens[login], bind)
                    if "<success" not in text:
                        raise XmppError(f"{phase}: {text[:300]}")
                wall = time.perf_counter() - start
                out.setdefault(phase, []).append(
                    {
                        "phase": phase,
                        "wall_s": round(wall, 3),
                        "logins_per_s": round(len(logins) / wall, 1),
                    }
                )
        return out
    finally:
        await h.close()


def main(argv: list[str] | None = None) -> int:
    """Prepare a data directory, start the server on one core, run the phases, print."""
    p = argparse.ArgumentParser(prog="python -m bench.fast_login", description=__doc__)
    p.add_argument("--accounts", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--rounds", type=int, default=2, help="scram/fast pairs, alternated (2)")
    p.add_argument("--login-timeout", type=float, default=30.0)
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--scram-iterations", type=int, default=10_000)
    p.add_argument("--server-log-level", default="WARNING")
    p.add_argument("--encryption", choices=("on", "off"), default="on")
    p.add_argument(
        "--one-core",
        action="store_true",
        help="server and generator on --server-cpu, client key derivation in every SCRAM login",
    )
    p.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="FAST reconnects make a full TLS handshake instead of resuming the session",
    )
    p.add_argument("--rotate-after", default="1d", help="xmpp.fast_rotate_after (1d; 0s: always)")
    p.add_argument(
        "--in-process", action="store_true", help="no TLS or sockets: the kernel and the client"
    )
    args = p.parse_args(argv)
    if args.in_process:
        print(f"• {pin_self(args.server_cpu)}", flush=True)
        result = asyncio.run(in_process(args))
        print(json.dumps(result, indent=2))
        return _summary(result, "in process, one core, client key derivation included")
    if args.one_core:
        args.client_cpu = args.server_cpu
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="carewire-fast-"))
    env = server_env(args)
    env["CAREWIRE_XMPP_FAST_ROTATE_AFTER"] = args.rotate_after
    domain = prepare_data_dir(data_dir, "bench.test", args.accounts, DEFAULT_PASSWORD, env)
    print(f"• generator {pin_self(args.client_cpu)}", flush=True)
    server = ManagedServer(data_dir, args.server_cpu, env, data_dir / "bench-server.log")
    ports = server.start()
    try:
        result = asyncio.run(run(args, ports, domain))
    finally:
        result_stop = server.stop()
    result["server_stop"] = result_stop
    print(json.dumps(result, indent=2))
    how = f"server on cpu {args.server_cpu}, generator on cpu {args.client_cpu}"
    how += ", FAST resumes TLS" if args.resume else ", FAST without TLS resumption"
    if args.one_core:
        how += " (one core, client key derivation included)"
    return _summary(result, f"{how}, TLS, rotate after {args.rotate_after}")


def _summary(result: dict[str, Any], how: str) -> int:
    best = {k: max(r["logins_per_s"] for r in result[k]) for k in ("scram", "fast")}
    ratio = best["fast"] / best["scram"] if best["scram"] else 0.0
    print(
        f"\nSCRAM logins/s {best['scram']:.0f}, FAST reconnects/s {best['fast']:.0f} "
        f"(x{ratio:.2f}); {how}"
    )
    cpu: dict[str, list[float]] = {}
    for kind in ("scram", "fast"):
        for n, r in enumerate(result[kind], 1):
            per = r.get("cpu_ms_per_login") or {}
            line = f"  {kind:5s} round {n}: {r['logins_per_s']:7.1f}/s"
            if per.get("server") is not None:
                line += f", server {per['server']:.2f} ms CPU per login"
                cpu.setdefault(kind, []).append(per["server"])
            if "generator" in per:
                line += f", generator {per['generator']:.2f} ms"
            if "tls_resumed" in r:
                line += f", TLS resumed {r['tls_resumed']}/{r['completed']}"
            if r.get("errors"):
                line += f", {r['errors']} FAILED"
            if "server_cpu_pct_before" in r:
                line += f" (server busy {r['server_cpu_pct_before']} % before)"
            print(line)
    if cpu.get("scram") and cpu.get("fast"):
        scram_cpu, fast_cpu = statistics.median(cpu["scram"]), statistics.median(cpu["fast"])
        print(
            f"server CPU per login (median of rounds): SCRAM {scram_cpu:.2f} ms, "
            f"FAST {fast_cpu:.2f} ms (SCRAM / FAST x{scram_cpu / fast_cpu:.2f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
