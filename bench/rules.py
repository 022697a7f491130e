"""``python -m bench.rules``: dataset writes per second with active rules, and rule latency.

Builds the platform in-process on a fresh database (SQLite in a temporary
directory by default, or ``--database-url``), creates a NURSE_CALLS dataset
linked to BEDS and ``--rules`` active rules on it, then writes ``--records``
records through the dataset service, one at a time, as an interface would.

Each rule has a condition on the record's priority and one on a path across
a link (``bed.bed_number``), so evaluation reads the database; rule *i*
matches priority ``P<i>``, so ``--match-every`` decides how many writes make
one rule fire a DataUpdate action (which writes the record again and tracks
the firing in DELIVERIES/DELIVERY_HISTORY).

Reported:
- ``write_only``: records/s through the service with the engine detached;
- ``with_rules``: records/s when every write is also matched against the
  rules (and the matching ones run), end to end;
- ``evaluation``: latency of matching one write against all rules
  (p50/p99, ms), for writes that fire nothing;
- ``firing``: latency of a write that fires one rule (queue, action,
  delivery tracking), p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from bench.stats import summary_ms
from carewire.assembly import Assembly, Options, assemble
from carewire.datasets.model import Attribute, AttrType, Cardinality, Link
from carewire.rules.conditions import Condition, Group, Mode, Op
from carewire.rules.model import Rule


async def _setup(p: Assembly, rules: int) -> int:
    await p.registry.create_dataset(
        "NURSE_CALLS",
        attributes=[
            Attribute(name="call_id", type=AttrType.STRING, is_key=True),
            Attribute(name="priority", type=AttrType.STRING),
            Attribute(name="status", type=AttrType.STRING),
        ],
        links=[
            Link(name="bed", target="BEDS", reverse="calls", cardinality=Cardinality.MANY_TO_ONE)  # type: ignore[arg-type]
        ],
    )
    fac = await p.datasets.create("FACILITIES", {"name": "Main"})
    room = await p.datasets.create("ROOMS", {"room_number": "101", "facility": fac.id})
    bed = await p.datasets.create("BEDS", {"bed_number": "A", "room": room.id})
    await p.adapters.create("DataUpdate", "Data", is_enabled=True)
    for i in range(rules):
        await p.rules.create(
            Rule(
                name=f"rule-{i:03d}",
                dataset="NURSE_CALLS",
                adapter="Data",
                action="Update Record",
                conditions=Group(
                    mode=Mode.ALL,
                    items=(
                        Condition(path="priority", op=Op.EQUALS, value=f"P{i}"),
                        Condition(path="bed.bed_number", op=Op.NOT_EMPTY),
                    ),
                ),
                settings={"updates": f"status=seen by rule {i}"},
            )
        )
    return int(bed.id)


async def _write_only(p: Assembly, n: int, bed: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        await p.datasets.create("NURSE_CALLS", {"call_id": f"w{i}", "priority": "none", "bed": bed})
    return n / (time.perf_counter() - started)


async def _with_rules(p: Assembly, n: int, bed: int, every: int, rules: int) -> dict[str, object]:
    quiet: list[float] = []
    firing: list[float] = []
    started = time.perf_counter()
    for i in range(n):
        fires = every > 0 and i % every == 0
        priority = f"P{i % rules}" if fires else "none"
        t0 = time.perf_counter()
        await p.datasets.create(
            "NURSE_CALLS", {"call_id": f"r{i}", "priority": priority, "bed": bed}
        )
        await p.engine.drain()
        (firing if fires else quiet).append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    return {
        "records_per_s": round(n / elapsed, 1),
        "evaluation_ms": summary_ms(quiet),
        "firing_ms": summary_ms(firing),
    }


async def main(args: argparse.Namespace) -> dict[str, object]:
    """Run the benchmark and return its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        p = await assemble(Options(url=url))
        try:
            bed = await _setup(p, args.rules)
            p.datasets._subscribers.remove(p.engine.notify)
            write_only = await _write_only(p, args.records, bed)
            p.engine.attach()
            await p.engine.start(scheduler=False)
            result = await _with_rules(p, args.records, bed, args.match_every, args.rules)
        finally:
            await p.close()
    return {
        "database": "sqlite" if not args.database_url else args.database_url.split(":")[0],
        "rules": args.rules,
        "records": args.records,
        "match_every": args.match_every,
        "write_only_records_per_s": round(write_only, 1),
        "with_rules": result,
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cpus": os.cpu_count(),
    }


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m bench.rules", description=__doc__.split("\n")[0])
    p.add_argument("--rules", type=int, default=100, help="active rules on the dataset")
    p.add_argument("--records", type=int, default=2000, help="records written per phase")
    p.add_argument(
        "--match-every", type=int, default=10, help="one write in N fires a rule (0: never)"
    )
    p.add_argument("--database-url", help="database to use (default: SQLite in a temp dir)")
    return p


if __name__ == "__main__":
    ns = build_parser().parse_args()
    if not 1 <= ns.records <= 100_000 or not 0 <= ns.rules <= 10_000:
        raise SystemExit("--records must be 1..100000 and --rules 0..10000")
    print(json.dumps(asyncio.run(main(ns)), indent=2))
