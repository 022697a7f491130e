"""Cross-node 1:1 chat on a two-node cluster: ``python -m bench.cluster_chat`` (docs/cluster.md).

Two ``carewire serve`` subprocesses (nodes ``n1`` and ``n2``) share one fresh
PostgreSQL database and one Redis (a key prefix of their own). Half the
clients log in to each node; every sender writes to a receiver on the
*other* node, so every message crosses Redis. Senders pace themselves to the
aggregate ``--rate`` for ``--duration`` seconds; each body carries its send
time, so the receiver measures the latency. Printed: delivered msg/s, p50
and p99 latency, and each node's process CPU time per delivered message
(all messages cross, so each node's CPU covers one side of each: the
sender's node parses, routes and publishes, the receiver's node reads the
channel and writes to the client).

Bounded: 100 clients and 20 s by default, on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

from bench.client import ClientConfig, Session, login
from bench.stats import proc_cpu_split, summary_ms

DOMAIN = "bench.carewire.localhost"
PASSWORD = "bench-password"
CAREWIRE = [sys.executable, "-m", "carewire"]


def _cli(*args: str, env: dict[str, str]) -> None:
    r = subprocess.run([*CAREWIRE, *args], capture_output=True, text=True, env=env, timeout=300)
    if r.returncode != 0:
        raise SystemExit(f"carewire {args[0]} failed: {r.stderr.strip()}")


@contextlib.contextmanager
def _node(data: Path, node: str, env: dict[str, str]) -> Iterator[tuple[int, dict[str, int]]]:
    """A ``carewire serve`` node; yields (pid, ports) once it listens."""
    ports_file = data / "run" / "ports.json"
    node_env = {**env, "CAREWIRE_CLUSTER_NODE_ID": node}
    log = open(data / f"{node}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            *CAREWIRE,
            *("serve", "--data-dir", str(data), "--bind", "127.0.0.1"),
            *("--c2s-port", "0", "--c2s-tls-port", "0", "--https-port", "0"),
            *("--log-level", "warning"),
        ],
        env=node_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"node {node} did not start (see {data / f'{node}.log'})")
            with contextlib.suppress(OSError, ValueError):
                ports = json.loads(ports_file.read_text())
                if ports.get("pid") == proc.pid:
                    break
            time.sleep(0.1)
        yield proc.pid, ports
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


async def _database(pg: str, name: str, *, drop: bool = False) -> None:
    conn = await asyncpg.connect(pg)
    try:
        if drop:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _run(args: argparse.Namespace, ports: list[dict[str, int]], pids: list[int]) -> None:
    pairs = args.clients // 2
    configs = [ClientConfig(host="127.0.0.1", port=p["c2s"], domain=DOMAIN) for p in ports]
    senders: list[Session] = []
    receivers: list[Session] = []
    for i in range(pairs):
        # pair i: the sender on one node, the receiver on the other (alternating)
        a, b = (0, 1) if i % 2 == 0 else (1, 0)
        senders.append(await login(configs[a], f"s{i}", PASSWORD, presence=True, sync=True))
        receivers.append(await login(configs[b], f"r{i}", PASSWORD, presence=True, sync=True))
    latencies: list[float] = []
    delivered = [0]
    measuring = [False]
    warm: list[asyncio.Event] = [asyncio.Event() for _ in range(pairs)]

    def receiver(i: int) -> object:
        def on_message(data: bytes) -> None:
            start = data.find(b"<body>")
            if start < 0:
                return
            text = data[start + 6 : data.find(b"</body>", start)]
            if text == b"warm":
                warm[i].set()
                return
            if measuring[0]:
                latencies.append(time.perf_counter() - float(text))
                delivered[0] += 1

        return on_message

    for i, r in enumerate(receivers):
        r.on_message = receiver(i)  # type: ignore[assignment]
    # Registration travels to the other node before the first message: wait for one each.
    for i, s in enumerate(senders):
        s.send(
            f"<message to='r{i}@{DOMAIN}/bench' type='chat'><body>warm</body></message>".encode()
        )
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in warm)), 30)

    interval = pairs / args.rate
    cpu0 = [proc_cpu_split(pid) for pid in pids]
    measuring[0] = True
    t0 = time.perf_counter()
    sent = 0

    async def pace(i: int) -> None:
        nonlocal sent
        to = f"r{i}@{DOMAIN}/bench".encode()
        await asyncio.sleep(interval * i / pairs)
        next_at = time.perf_counter()
        while time.perf_counter() - t0 < args.duration:
            body = repr(time.perf_counter()).encode()
            senders[i].send(
                b"<message to='" + to + b"' type='chat'><body>" + body + b"</body></message>"
            )
            sent += 1
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    await asyncio.gather(*(pace(i) for i in range(pairs)))
    drained = time.perf_counter() + 30  # those in flight (bounded): late is not lost
    while delivered[0] < sent and time.perf_counter() < drained:
        await asyncio.sleep(0.01)
    wall = time.perf_counter() - t0
    cpu1 = [proc_cpu_split(pid) for pid in pids]
    measuring[0] = False
    stats = summary_ms(sorted(latencies))
    mode = "one node, no Redis" if len(pids) == 1 else "cross-node pairs"
    print(f"clients {args.clients} ({pairs} {mode}), {args.duration:.0f} s, rate {args.rate}/s")
    rate = delivered[0] / wall
    print(f"sent {sent}, delivered {delivered[0]} ({rate:.0f} msg/s), lost {sent - delivered[0]}")
    print(f"latency p50 {stats['p50']} ms, p99 {stats['p99']} ms, max {stats['max']} ms")
    for node, before, after in zip(("n1", "n2")[: len(pids)], cpu0, cpu1, strict=True):
        if before is None or after is None:
            continue
        used = sum(after) - sum(before)
        per = used / max(delivered[0], 1) * 1e6
        share = used / wall * 100
        print(f"{node}: CPU {used:.2f} s ({share:.0f} % of a core), {per:.0f} µs per delivered msg")
    for s in senders + receivers:
        s.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=1000, help="aggregate messages per second")
    parser.add_argument(
        "--single", action="store_true", help="one node without Redis, for comparison"
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("CAREWIRE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "CAREWIRE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    if args.clients < 2 or args.clients > 2000 or not 0 < args.duration <= 120:
        raise SystemExit("--clients 2..2000 and --duration up to 120 s")
    name = f"carewire_bench_{secrets.token_hex(4)}"
    db_url = args.pg_url.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(_database(args.pg_url, name))
    try:
        with tempfile.TemporaryDirectory(prefix="carewire-cluster-bench-") as tmp:
            data = Path(tmp) / "data"
            env = {
                **os.environ,
                "CAREWIRE_STORAGE_URL": db_url,
                "CAREWIRE_XMPP_SCRAM_ITERATIONS": "4096",
                "CAREWIRE_CLUSTER_REDIS_URL": args.redis_url,
                "CAREWIRE_CLUSTER_KEY_PREFIX": f"bench-{secrets.token_hex(4)}:",
            }
            _cli("init", "--data-dir", str(data), "--domain", DOMAIN, env=env)
            csv = data / "accounts.csv"
            pairs = args.clients // 2
            csv.write_text("".join(f"{p}{i},{PASSWORD}\n" for i in range(pairs) for p in "sr"))
            _cli("user", "import", str(csv), "--quiet", "--data-dir", str(data), env=env)
            if args.single:
                del env["CAREWIRE_CLUSTER_REDIS_URL"]
                with _node(data, "n1", env) as (pid, ports):
                    asyncio.run(_run(args, [ports, ports], [pid]))
                return
            with _node(data, "n1", env) as (pid1, ports1), _node(data, "n2", env) as (pid2, ports2):
                asyncio.run(_run(args, [ports1, ports2], [pid1, pid2]))
    finally:
        asyncio.run(_database(args.pg_url, name, drop=True))


if __name__ == "__main__":
    main()
