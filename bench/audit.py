"""``python -m bench.audit``: append throughput of the audit trail, one entry and in batches.

Appends ``--entries`` entries one by one (as an administrative act is
recorded) and the same number in batches of ``--batch`` (as the login audit
hands its batches to the trail), on a fresh SQLite file and, with ``--pg URL``,
a fresh PostgreSQL database; then verifies the chain. Prints entries/s and the
CPU time of this process per entry (the figure to compare on a busy machine).
No server, no network beyond a loopback PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from carewire.clock import FakeClock
from carewire.security.audit import AuditEvent, AuditTrail, Channel
from carewire.security.audit_verify import verify_trail
from carewire.storage import Database, migrate
from carewire.storage.audit import SqlAuditStore

START = datetime(2026, 3, 1, tzinfo=UTC)


def _event(n: int) -> AuditEvent:
    return AuditEvent(
        actor=f"xmpp:user{n % 100}",
        channel=Channel.XMPP,
        action="login",
        target=f"user{n % 100}",
        remote_ip="127.0.0.1",
        details={"mechanism": "SCRAM-SHA-1", "transport": "c2s", "result": "success"},
    )


async def _run(url: str, entries: int, batch: int) -> dict[str, float]:
    await migrate.upgrade(url)
    db = await Database.open(url)
    try:
        trail = AuditTrail(SqlAuditStore(db), FakeClock(START))
        began, cpu = time.perf_counter(), time.process_time()
        for n in range(entries):
            await trail.record(_event(n))
        single = time.perf_counter() - began
        single_cpu = time.process_time() - cpu
        began, cpu = time.perf_counter(), time.process_time()
        for first in range(0, entries, batch):
            await trail.record_many([(START, _event(n)) for n in range(first, first + batch)])
        batched = time.perf_counter() - began
        batched_cpu = time.process_time() - cpu
        began = time.perf_counter()
        result = await verify_trail(trail)
        checked = time.perf_counter() - began
        assert result.ok, result
    finally:
        await db.close()
    return {
        "single": entries / single,
        "single_cpu": 1e6 * single_cpu / entries,
        "batched": entries / batched,
        "batched_cpu": 1e6 * batched_cpu / entries,
        "verify": 2 * entries / checked,
    }


async def _pg_database(base: str) -> tuple[str, str]:
    server = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"carewire_bench_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return server, name


async def _drop(server: str, name: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _line(kind: str, r: dict[str, float]) -> str:
    return (
        f"{kind:<10} one by one {r['single']:>6.0f} entries/s ({r['single_cpu']:.0f} µs CPU each)"
        f"   batched {r['batched']:>6.0f} entries/s ({r['batched_cpu']:.0f} µs CPU each)"
        f"   verify {r['verify']:>6.0f} entries/s"
    )


async def main(args: argparse.Namespace) -> None:
    """Run the SQLite (and PostgreSQL) measurements and print them."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        print(_line("sqlite", await _run(url, args.entries, args.batch)))
    if args.pg:
        server, name = await _pg_database(args.pg)
        try:
            pg_url = make_url(server).set(database=name).render_as_string(hide_password=False)
            print(_line("postgresql", await _run(pg_url, args.entries, args.batch)))
        finally:
            await _drop(server, name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=2000, help="entries per phase (2000)")
    parser.add_argument("--batch", type=int, default=50, help="entries per batch (50)")
    parser.add_argument("--pg", help="a PostgreSQL server URL (loopback) to measure too")
    a = parser.parse_args()
    if not 1 <= a.batch <= a.entries <= 100_000:
        parser.error("expected 1 <= --batch <= --entries <= 100000")
    asyncio.run(main(a))
