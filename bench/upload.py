"""``python -m bench.upload``: XEP-0363 file sharing, 10 MiB files, 20 at once (issue 14).

A real server (``carewire serve`` in a subprocess, on a fresh data directory
in a temporary folder) and ``--users`` accounts logged in with the bench
client. Each asks ``upload.DOMAIN`` for a slot over XMPP, then:

1. **one alone**: one ``--size`` MiB file PUT and GET back (MiB/s each way);
2. **together**: ``--users`` files PUT at once, then GET at once (aggregate
   MiB/s, each transfer's time as p50/max);

while the server's resident memory (``VmRSS`` of its process) is sampled
every 20 ms: its value before, and its peak during each phase. Every GET is
checked byte for byte against what was PUT. Target: the server's RSS grows
by **under 64 MiB** while 20 × 10 MiB uploads run at once (the files are
encrypted in 64 KiB chunks and never held whole).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench.client import ClientConfig, Session, login
from bench.run import account_names, carewire_exe, prepare_data_dir

DOMAIN = "bench.carewire.localhost"
PASSWORD = "bench-password"
MIB = 1 << 20
TARGET_RSS_GROWTH_MIB = 64
_PUT = re.compile(rb"<put url=['\"]([^'\"]+)['\"]")


def rss_mib(pid: int) -> float:
    """The resident set of process ``pid`` in MiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """Samples a process's RSS in the background; ``peak`` since the last ``reset``."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0.0
        self._task: asyncio.Task[None] | None = None

    def reset(self) -> float:
        self.peak = rss_mib(self.pid)
        return self.peak

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mib(self.pid))
            await asyncio.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


def start_server(
    data_dir: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    log = (data_dir / "bench-serve.log").open("ab")
    proc = subprocess.Popen(
        [
            carewire_exe(),
            "serve",
            "--data-dir",
            str(data_dir),
            "--bind",
            "127.0.0.1",
            "--c2s-port",
            "0",
            "--c2s-tls-port",
            "0",
            "--https-port",
            "0",
            "--s2s-port",
            "0",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    ports_file = data_dir / "run" / "ports.json"
    deadline = time.monotonic() + 60
    while True:
        if ports_file.exists():
            ports = json.loads(ports_file.read_text())
            if ports.get("pid") == proc.pid:
                return proc, ports
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("the server did not start: see " + str(data_dir / "bench-serve.log"))
        time.sleep(0.05)


async def slot(session: Session, name: str, size: int, https_port: int) -> str:
    """A PUT URL from ``upload.DOMAIN``, pointed at the loopback address."""
    request = (
        f"<request xmlns='urn:xmpp:http:upload:0' filename='{name}' size='{size}'"
        " content-type='application/octet-stream'/>"
    )
    reply = await asyncio.wait_for(session.iq(request, "get", to=f"upload.{DOMAIN}"), 10)
    m = _PUT.search(reply)
    if m is None:
        raise SystemExit(f"no slot: {reply[:300]!r}")
    url = m.group(1).decode().replace("&amp;", "&")
    return re.sub(r"^https://[^/]+", f"https://127.0.0.1:{https_port}", url)


async def timed(work: Callable[[], Awaitable[Any]]) -> float:
    t = time.perf_counter()
    await work()
    return time.perf_counter() - t


async def transfer_all(
    client: httpx.AsyncClient, urls: list[str], data: bytes, digest: str
) -> dict[str, list[float]]:
    """PUT ``data`` to every URL at once, then GET every one at once; seconds of each."""

    async def put(url: str) -> None:
        r = await client.put(
            url, content=data, headers={"Content-Type": "application/octet-stream"}
        )
        if r.status_code != 201:
            raise SystemExit(f"PUT failed: {r.status_code} {r.text[:200]}")

    async def get(url: str) -> None:
        h = hashlib.sha256()
        async with client.stream("GET", url) as r:
            if r.status_code != 200:
                raise SystemExit(f"GET failed: {r.status_code}")
            async for chunk in r.aiter_bytes():
                h.update(chunk)
        if h.hexdigest() != digest:
            raise SystemExit("GET returned other bytes than were PUT")

    puts = await asyncio.gather(*(timed(partial(put, u)) for u in urls))
    gets = await asyncio.gather(*(timed(partial(get, u)) for u in urls))
    return {"put": list(puts), "get": list(gets)}


async def measure(args: argparse.Namespace, pid: int, ports: dict[str, int]) -> dict[str, Any]:
    size = args.size * MIB
    data = os.urandom(size)
    digest = hashlib.sha256(data).hexdigest()
    cfg = ClientConfig(host="127.0.0.1", port=ports["c2s"], domain=DOMAIN)
    sessions = [await login(cfg, name, PASSWORD) for name in account_names(args.users)]
    limits = httpx.Limits(max_connections=args.users * 2)
    result: dict[str, Any] = {"size_mib": args.size, "users": args.users}
    try:
        async with httpx.AsyncClient(verify=False, timeout=120, limits=limits) as client:
            sampler = RssSampler(pid)
            with sampler:
                await asyncio.sleep(0.5)
                result["rss_before_mib"] = round(sampler.reset(), 1)
                url = await slot(sessions[0], "alone.bin", size, ports["https"])
                one = await transfer_all(client, [url], data, digest)
                result["alone"] = {
                    "put_mib_s": round(args.size / one["put"][0], 1),
                    "get_mib_s": round(args.size / one["get"][0], 1),
                    "rss_peak_mib": round(sampler.peak, 1),
                }
                urls = [
                    await slot(s, f"file{i}.bin", size, ports["https"])
                    for i, s in enumerate(sessions)
                ]
                base = sampler.reset()
                t = time.perf_counter()
                many = await transfer_all(client, urls, data, digest)
                wall = time.perf_counter() - t
                result["together"] = {
                    "rss_at_start_mib": round(base, 1),
                    "rss_peak_mib": round(sampler.peak, 1),
                    "put_aggregate_mib_s": round(args.users * args.size / max(many["put"]), 1),
                    "get_aggregate_mib_s": round(args.users * args.size / max(many["get"]), 1),
                    "put_s_p50_max": [
                        round(sorted(many["put"])[len(urls) // 2], 2),
                        round(max(many["put"]), 2),
                    ],
                    "get_s_p50_max": [
                        round(sorted(many["get"])[len(urls) // 2], 2),
                        round(max(many["get"]), 2),
                    ],
                    "wall_s": round(wall, 2),
                }
    finally:
        for s in sessions:
            s.close()
    growth = result["together"]["rss_peak_mib"] - result["rss_before_mib"]
    result["rss_growth_mib"] = round(growth, 1)
    result["target"] = f"RSS growth < {TARGET_RSS_GROWTH_MIB} MiB"
    result["pass"] = growth < TARGET_RSS_GROWTH_MIB
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.upload", description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=10, help="MiB per file (default 10)")
    p.add_argument("--users", type=int, default=20, help="uploads at once (default 20)")
    args = p.parse_args(argv)
    env = dict(os.environ)
    env.update(
        {
            "CAREWIRE_LOG_LEVEL": "warning",
            "CAREWIRE_XMPP_SCRAM_ITERATIONS": "4096",
        }
    )
    env.pop("CAREWIRE_DATA_DIR", None)
    with tempfile.TemporaryDirectory(prefix="carewire-bench-upload-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        prepare_data_dir(data_dir, DOMAIN, args.users, PASSWORD, env)
        proc, ports = start_server(data_dir, env)
        try:
            result = asyncio.run(measure(args, proc.pid, ports))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(json.dumps(result, indent=2))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
