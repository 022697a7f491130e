"""``python -m bench.encryption``: the cost of encryption at rest on storage hot paths, on and off.

The platform is assembled in this process as the server assembles it (SQLite
in a temporary directory), once with
encryption on and once with ``encryption.enabled = false`` (new values in
clear), each on a fresh database. Measured on each, in this order:

- **seal/open**: the keyring alone, a 400-byte chat stanza sealed and opened
  (µs per operation; 0 when off);
- **offline delivery**: ``--messages`` stanzas stored for offline users, then
  fetched and deleted as a login delivers them (messages/s and CPU µs per
  message, store + fetch + delete);
- **record writes**: ``--messages`` MESSAGES records (body and XML elements,
  both encrypted) written through the dataset service, 50 per batch
  (records/s, CPU µs per record);
- **MAM page**: a query for 50 MESSAGES records, as the archive asks for one
  page, ``--queries`` times (p50/p99 ms, CPU µs per query).

CPU is this process's user + system time, a figure a busy machine disturbs
less than wall-clock rates. Target: **under 10 % more CPU per message** with
encryption on. The 1:1 chat with tracking over the network is
``python -m bench.run chat-tracking --encryption on|off``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.stats import self_cpu_seconds, summary_ms
from carewire.assembly import Assembly, Options, assemble
from carewire.core.accounts import AccountInput
from carewire.datasets.model import Origin
from carewire.datasets.query import Query, Sort

TARGET_CPU_OVERHEAD = 0.10
STANZA = (
    "<message xmlns='jabber:client' to='bench2@bench.carewire.localhost' "
    "from='bench1@bench.carewire.localhost/phone' type='chat' id='{id}'>"
    "<body>Bed 12B: potassium 6.1 mmol/L on the last draw, please repeat and call back {n}</body>"
    "<request xmlns='urn:xmpp:receipts'/><markable xmlns='urn:xmpp:chat-markers:0'/>"
    "<origin-id xmlns='urn:xmpp:sid:0' id='{id}'/></message>"
)
USERS = 50
ORIGIN = Origin(actor="bench")


async def _timed(work: Callable[[], Awaitable[int]]) -> tuple[int, float, float]:
    """(items, wall seconds, CPU seconds) of ``work``."""
    cpu0, t0 = self_cpu_seconds(), time.perf_counter()
    n = await work()
    return n, time.perf_counter() - t0, self_cpu_seconds() - cpu0


def _rates(n: int, wall: float, cpu: float) -> dict[str, float]:
    return {"per_s": round(n / wall, 1), "cpu_us_each": round(cpu / n * 1e6, 1)}


def _seal_cost(p: Assembly, rounds: int) -> dict[str, float]:
    ring, stanza = p.keyring, STANZA.format(id="x", n=0)
    if not ring.encrypt_new:
        return {"seal_us": 0.0, "open_us": 0.0}
    t0 = time.perf_counter()
    sealed = [ring.seal_text(stanza, aad=b"bench|alice") for _ in range(rounds)]
    t1 = time.perf_counter()
    for s in sealed:
        ring.open_text(s, aad=b"bench|alice")
    t2 = time.perf_counter()
    return {
        "seal_us": round((t1 - t0) / rounds * 1e6, 2),
        "open_us": round((t2 - t1) / rounds * 1e6, 2),
    }


async def _offline(p: Assembly, messages: int) -> dict[str, float]:
    now = datetime.now(UTC)
    expires = now + timedelta(days=7)

    async def work() -> int:
        offline = p.stores.offline
        for i in range(messages):
            owner = f"bench{i % USERS}"
            stanza = STANZA.format(id=i, n=i)
            await offline.store(owner, stanza, stamp=now, expires_at=expires)
        for u in range(USERS):
            got = await offline.fetch(f"bench{u}", now=now)
            await offline.delete(f"bench{u}", [m.id for m in got])
        return messages

    return _rates(*await _timed(work))


async def _records(p: Assembly, messages: int) -> dict[str, float]:
    now = datetime.now(UTC)

    async def work() -> int:
        for start in range(0, messages, 50):
            async with p.datasets.batch(ORIGIN, "bench_messages") as b:
                for i in range(start, min(start + 50, messages)):
                    await b.create(
                        "MESSAGES",
                        {
                            "uuid": str(uuid.uuid4()),
                            "received_at": now,
                            "sent_at": now,
                            "message": f"Bed 12B: potassium 6.1, repeat draw {i}",
                            "elements": "<request xmlns='urn:xmpp:receipts'/>",
                        },
                    )
        return messages

    return _rates(*await _timed(work))


async def _mam(p: Assembly, queries: int) -> dict[str, object]:
    query = Query(limit=50, sort=(Sort(field="received_at", is_descending=True),))
    times: list[float] = []

    async def work() -> int:
        for _ in range(queries):
            t0 = time.perf_counter()
            page = await p.datasets.query("MESSAGES", query)
            times.append(time.perf_counter() - t0)
            assert len(page.records) == 50
        return queries

    n, wall, cpu = await _timed(work)
    return {**_rates(n, wall, cpu), "latency_ms": summary_ms(times)}


async def _one(url: str, *, encrypt: bool, args: argparse.Namespace) -> dict[str, object]:
    p = await assemble(Options(url=url, encrypt_at_rest=encrypt))
    try:
        for u in range(USERS):
            await p.accounts.create(AccountInput(login=f"bench{u}", password="bench-password"))
        return {
            "encryption": encrypt,
            "keyring": _seal_cost(p, 2000),
            "offline": await _offline(p, args.messages),
            "records": await _records(p, args.messages),
            "mam_50": await _mam(p, args.queries),
        }
    finally:
        await p.close()


def _overhead(on: dict[str, object], off: dict[str, object], key: str) -> float:
    a, b = on[key], off[key]
    assert isinstance(a, dict) and isinstance(b, dict)
    return round(float(a["cpu_us_each"]) / float(b["cpu_us_each"]) - 1, 3)


async def main(args: argparse.Namespace) -> dict[str, object]:
    """Run both variants ``--repeat`` times each (alternating) and keep the median per figure."""
    runs: dict[bool, list[dict[str, object]]] = {True: [], False: []}
    for r in range(args.repeat):
        for encrypt in (True, False) if r % 2 == 0 else (False, True):
            with tempfile.TemporaryDirectory(prefix="carewire-bench-enc-") as tmp:
                url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
                runs[encrypt].append(await _one(url, encrypt=encrypt, args=args))
    on, off = (_median(runs[True]), _median(runs[False]))
    result: dict[str, object] = {"on": on, "off": off, "repeat": args.repeat}
    result["cpu_overhead"] = {k: _overhead(on, off, k) for k in ("offline", "records", "mam_50")}
    result["target"] = TARGET_CPU_OVERHEAD
    return result


def _median(runs: list[dict[str, object]]) -> dict[str, object]:
    """Each figure's median over the runs (the first run's shape)."""
    out: dict[str, object] = dict(runs[0])
    for key in ("offline", "records", "mam_50", "keyring"):
        first = runs[0][key]
        assert isinstance(first, dict)
        merged: dict[str, object] = dict(first)
        for name, value in first.items():
            if isinstance(value, int | float):
                values = [float(r[key][name]) for r in runs]  # type: ignore[index]
                merged[name] = round(statistics.median(values), 2)
        out[key] = merged
    return out


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m bench.encryption", description=__doc__)
    p.add_argument("--messages", type=int, default=2000, help="offline stanzas and records (2000)")
    p.add_argument("--queries", type=int, default=200, help="MAM pages of 50 (200)")
    p.add_argument("--repeat", type=int, default=3, help="runs per variant, median kept (3)")
    return p


if __name__ == "__main__":
    parsed = build_parser().parse_args()
    if not 1 <= parsed.messages <= 100_000 or not 1 <= parsed.queries <= 10_000:
        raise SystemExit("--messages 1–100000, --queries 1–10000")
    print(json.dumps(asyncio.run(main(parsed)), indent=2))
