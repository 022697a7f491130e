"""``python -m bench.assignments``: a shift change of 10,000 assignments through the manager.

In-process, like :mod:`bench.rules`: the platform is assembled on SQLite in a
temporary directory (or ``--database-url``), ``--assignments`` ASSIGNMENTS
records are written (``next``, starting a second ago, ending in twelve hours,
at ``--locations`` locations), and the assignment manager, in its default
configuration (4,000 updates a minute, a queue of 10,000), is enabled through
the adapter manager and runs for real: its minute tick finds every one of them
due and its one-second steps apply them.

Measured while it works: the queue's length (sampled every 0.2 s; its highest
must stay within the depth), the updates committed in every sliding 60-second
window (from each committed change's time; must stay within the per-minute
limit), changes refused (must be 0),
the process's CPU time, and the time until every assignment is ``active``
(nothing lost: the count is checked in the database at the end). Results go to
``bench/results/assignments-<timestamp>.json``; the exit status is 1 when a
target failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path

from carewire.adapters import assignments
from carewire.adapters.assignments import AssignmentManager
from carewire.assembly import Assembly, Options, assemble
from carewire.datasets.model import RecordChanged
from carewire.datasets.query import Filter, FilterOp, Query

RESULTS = Path(__file__).parent / "results"
NAME = "Assignment Manager"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _seed(p: Assembly, count: int, locations: int) -> None:
    ds = p.datasets
    facility = (await ds.create("FACILITIES", {"name": "Main"})).id
    locs = [
        (await ds.create("LOCATIONS", {"location_id": f"L{n}", "facility": facility})).id
        for n in range(locations)
    ]
    users = [(await ds.create("USERS", {"login": f"rn{n:05}"})).id for n in range(count // 4)]
    now = datetime.now(UTC)
    rows = [
        {
            "assignment_id": f"shift-{n:05}",
            "interface_id": "bench",
            "level": "Primary",
            "state": "next",
            "assigned_at": now - timedelta(hours=1),
            "start_time": now - timedelta(seconds=1),
            "end_time": now + timedelta(hours=12),
            "usr": users[n % len(users)],
            "location": locs[n % len(locs)],
        }
        for n in range(count)
    ]
    for start in range(0, count, 1000):
        async with ds.batch(name="bench_seed") as batch:
            await batch.create_many("ASSIGNMENTS", rows[start : start + 1000])


async def _runtime(p: Assembly) -> AssignmentManager:
    """The supervised runtime, once the adapter manager has started it."""
    for _ in range(100):
        view = p.adapters.view(NAME)
        if view is not None and isinstance(view.runtime, AssignmentManager):
            return view.runtime
        await asyncio.sleep(0.05)
    raise RuntimeError("the assignment manager did not start")


async def _active(p: Assembly) -> int:
    query = Query(filters=(Filter(field="state", op=FilterOp.EQ, value="active"),), limit=1)
    return (await p.datasets.query("ASSIGNMENTS", query)).total


async def _watch(
    runtime: AssignmentManager, count: int, deadline: float, samples: list[tuple[float, int, int]]
) -> None:
    start = time.monotonic()
    while time.monotonic() < deadline:
        stats = runtime.queue.stats()
        samples.append((time.monotonic() - start, stats.queued, runtime.applied))
        if runtime.applied >= count and not stats.queued:
            return
        await asyncio.sleep(0.2)


def _window_max(commits: list[float], width: float = 60.0) -> int:
    """The most updates committed within any ``width`` seconds (exact, over commit times)."""
    best, window = 0, deque[float]()
    for t in commits:
        window.append(t)
        while window[0] <= t - width:
            window.popleft()
        best = max(best, len(window))
    return best


async def run(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="carewire-bench-am-") as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'carewire.db'}"
        p = await assemble(Options(url=url))
        try:
            print(f"• {args.assignments} assignments at {args.locations} locations", flush=True)
            t0 = time.monotonic()
            await _seed(p, args.assignments, args.locations)
            print(f"  written in {time.monotonic() - t0:.1f} s", flush=True)
            commits: list[float] = []

            def heard(event: RecordChanged) -> None:  # called after each commit, per record
                if event.dataset == "ASSIGNMENTS" and event.origin.adapter == NAME:
                    commits.append(time.monotonic())

            p.datasets.subscribe(heard)
            await p.adapters.create(assignments.COMPONENT, NAME, is_enabled=True)
            cpu0, t1 = _cpu(), time.monotonic()
            await p.adapters.start()
            runtime = await _runtime(p)
            samples: list[tuple[float, int, int]] = []
            await _watch(runtime, args.assignments, t1 + args.timeout, samples)
            elapsed, cpu = time.monotonic() - t1, _cpu() - cpu0
            stats = runtime.queue.stats()
            await p.adapters.stop()
            active = await _active(p)
        finally:
            await p.close()
    window = _window_max(commits)
    return {
        "assignments": args.assignments,
        "active": active,
        "elapsed_s": round(elapsed, 1),
        "cpu_s": round(cpu, 2),
        "applied_per_s": round(active / elapsed, 1) if elapsed else 0.0,
        "max_in_60s": window,
        "queue_highest": stats.highest,
        "queue_depth": stats.depth,
        "refused": stats.refused,
        "per_second": stats.per_second,
    }


def report(r: dict[str, object], per_minute: int) -> bool:
    print(
        f"  {r['active']}/{r['assignments']} active after {r['elapsed_s']} s "
        f"({r['applied_per_s']}/s, {r['per_second']}/s allowed); CPU {r['cpu_s']} s"
    )
    print(
        f"  most applied in 60 s: {r['max_in_60s']}; queue highest {r['queue_highest']} "
        f"of {r['queue_depth']}; refused {r['refused']}"
    )
    checks = [
        ("nothing lost", r["active"] == r["assignments"]),
        (f"<= {per_minute} updates in any minute", int(str(r["max_in_60s"])) <= per_minute),
        ("queue within its depth", int(str(r["queue_highest"])) <= int(str(r["queue_depth"]))),
        ("nothing refused", r["refused"] == 0),
    ]
    for label, ok in checks:
        print(f"  target {label:<40} {'PASS' if ok else 'FAIL'}")
    return all(ok for _, ok in checks)


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.assignments", description=__doc__)
    p.add_argument("--assignments", type=int, default=10_000)
    p.add_argument("--locations", type=int, default=500)
    p.add_argument("--timeout", type=float, default=400.0, help="seconds to wait (400)")
    p.add_argument("--database-url", help="a database URL instead of SQLite in a temp dir")
    args = p.parse_args()
    result = asyncio.run(run(args))
    ok = report(result, 4000)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = RESULTS / f"assignments-{stamp}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"  results: {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
