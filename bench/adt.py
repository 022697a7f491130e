"""``python -m bench.adt``: HL7 ADT messages acknowledged per second over MLLP, and ACK latency.

The platform is assembled in this process as the server assembles it (SQLite in a
temporary directory by default, or ``--database-url``), with a hospital of
``--beds`` beds and an enabled HL7 ADT adapter listening on 127.0.0.1, port 0.
A load generator in a child process (so that it does not share this event
loop) opens ``--connections`` MLLP connections and sends ``--messages``
messages in all, each connection waiting for each ACK before it sends the next
(original mode, as an admission system does). Each connection has its own
patients, who go through A01 (admit), then A08 (update) and A02 (transfer to
another bed) in turn, so every message changes a patient and a bed.

Reported: messages acknowledged per second (all AA, or the run fails), the ACK
latency (send to ACK received) p50/p95/p99 in ms, and messages per CPU second of
the server's process (a figure a busy machine disturbs less than the rate).
Target: **≥ 500 msgs/s on SQLite**.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.stats import self_cpu_seconds, summary_ms
from carewire.adapters.hl7.ack import AckCode, ack_code
from carewire.adapters.hl7.adt_settings import COMPONENT
from carewire.adapters.hl7.mllp import MllpFramer, frame
from carewire.assembly import Assembly, Options, assemble
from carewire.datasets.model import Origin

TARGET_MSGS_PER_S = 500.0
FACILITY = "Bench General"
BEDS_PER_ROOM = 2
ROOMS_PER_UNIT = 25
ADAPTER = "Bench ADT"


def _bed(n: int) -> tuple[str, str, str]:
    """Unit, room and bed of bed number ``n``."""
    room = n // BEDS_PER_ROOM
    unit = room // ROOMS_PER_UNIT
    return f"U{unit}", f"{unit}{room % ROOMS_PER_UNIT:02d}", "AB"[n % BEDS_PER_ROOM]


async def _hospital(p: Assembly, beds: int) -> None:
    facility = {"name": FACILITY}
    async with p.datasets.batch(Origin(actor="bench"), "bench_hospital") as b:
        await b.upsert("FACILITIES", facility)
        for n in range(beds):
            unit, room, bed = _bed(n)
            unit_key = {"name": unit, "facility": facility}
            room_key = {"room_number": room, "facility": facility}
            if n % (BEDS_PER_ROOM * ROOMS_PER_UNIT) == 0:
                await b.upsert("UNITS", unit_key)
            if n % BEDS_PER_ROOM == 0:
                await b.upsert("ROOMS", {**room_key, "unit": unit_key})
            await b.upsert("BEDS", {"bed_number": bed, "room": room_key})


def message(i: int, *, connection: int, patients: int, beds: int) -> bytes:
    """The ``i``-th message of a connection: A01, then A08 and A02 in turn, per patient."""
    mrn = f"B{connection:02d}{i % patients:05d}"
    round_ = i // patients
    event = "A01" if round_ == 0 else ("A08" if round_ % 2 else "A02")
    unit, room, bed = _bed((connection * patients + i % patients + round_) % beds)
    control = f"C{connection}-{i}"
    segments = [
        f"MSH|^~\\&|BENCH|GENERAL|CAREWIRE|CW|20260301080000||ADT^{event}^ADT_A01|{control}|P|2.5",
        f"EVN|{event}|20260301080000",
        f"PID|1||{mrn}^^^GENERAL^MR||PATIENT^BENCH {i % 97}||19600101|F",
        f"PV1|1|I|{unit}^{room}^{bed}^{FACILITY}",
    ]
    return ("\r".join(segments) + "\r").encode()


async def _connection(
    host: str, port: int, *, connection: int, count: int, patients: int, beds: int
) -> list[float]:
    """Send ``count`` messages in order on one connection; return each ACK's latency (s)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=10)
    framer, latencies = MllpFramer(), []
    try:
        for i in range(count):
            start = time.perf_counter()
            writer.write(frame(message(i, connection=connection, patients=patients, beds=beds)))
            replies: list[bytes] = []
            while not replies:
                data = await asyncio.wait_for(reader.read(65536), timeout=30)
                if not data:
                    raise ConnectionError("the listener closed the connection")
                replies = framer.feed(data)
            latencies.append(time.perf_counter() - start)
            if ack_code(replies[0]) is not AckCode.AA:
                raise RuntimeError(f"not AA: {replies[0]!r}")
    finally:
        writer.close()
    return latencies


async def _load(args: argparse.Namespace) -> dict[str, object]:
    """The load generator's side (the child process)."""
    per = args.messages // args.connections
    patients = max(1, min(per // 3, args.beds // args.connections))
    started = time.perf_counter()
    results = await asyncio.gather(
        *(
            _connection(
                "127.0.0.1", args.port, connection=c, count=per, patients=patients, beds=args.beds
            )
            for c in range(args.connections)
        )
    )
    elapsed = time.perf_counter() - started
    latencies = [x for r in results for x in r]
    return {"acked": len(latencies), "seconds": round(elapsed, 3), "latencies": latencies}


async def main(args: argparse.Namespace) -> dict[str, object]:
    """Assemble, listen, run the load generator in a child process, report."""
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        p = await assemble(Options(url=url))
        try:
            await _hospital(p, args.beds)
            await p.start(scheduler=False)
            await p.adapters.create(COMPONENT, ADAPTER, is_enabled=True, settings={"port": 0})
            port = await _port(p)
            cpu = self_cpu_seconds()
            load = await _child(args, port)
            cpu = self_cpu_seconds() - cpu
            health = p.adapters.health(ADAPTER)
        finally:
            await p.close()
    latencies = load.pop("latencies")
    assert isinstance(latencies, list)
    rate = float(str(load["acked"])) / float(str(load["seconds"]))
    return {
        "database": "sqlite" if not args.database_url else args.database_url.split(":")[0],
        "messages": load["acked"],
        "connections": args.connections,
        "beds": args.beds,
        "msgs_per_s": round(rate, 1),
        "msgs_per_server_cpu_s": round(float(str(load["acked"])) / cpu, 1) if cpu else None,
        "ack_latency_ms": summary_ms(latencies),
        "target": f">= {TARGET_MSGS_PER_S:.0f} msgs/s",
        "result": "PASS" if rate >= TARGET_MSGS_PER_S else "FAIL",
        "adapter_health": health.note,
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cpus": os.cpu_count(),
    }


async def _port(p: Assembly) -> int:
    for _ in range(500):
        view = p.adapters.view(ADAPTER)
        address = getattr(view.runtime, "address", None) if view is not None else None
        if address is not None:
            return int(address[1])
        await asyncio.sleep(0.01)
    raise RuntimeError(f"the ADT listener did not start: {p.adapters.health(ADAPTER)}")


async def _child(args: argparse.Namespace, port: int) -> dict[str, object]:
    cmd = [
        sys.executable,
        "-m",
        "bench.adt",
        "--load",
        "--port",
        str(port),
        "--messages",
        str(args.messages),
        "--connections",
        str(args.connections),
        "--beds",
        str(args.beds),
    ]
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"the load generator failed (exit {proc.returncode})")
    result = json.loads(out)
    assert isinstance(result, dict)
    return result


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m bench.adt", description=__doc__.split("\n")[0])
    p.add_argument("--messages", type=int, default=5000, help="messages in all")
    p.add_argument("--connections", type=int, default=8, help="MLLP connections")
    p.add_argument("--beds", type=int, default=200, help="beds in the hospital")
    p.add_argument("--database-url", help="database to use (default: SQLite in a temp dir)")
    p.add_argument("--load", action="store_true", help=argparse.SUPPRESS)  # the child's role
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    return p


if __name__ == "__main__":
    ns = build_parser().parse_args()
    if not 1 <= ns.connections <= 64 or not ns.connections <= ns.messages <= 200_000:
        raise SystemExit("--connections must be 1..64 and --messages connections..200000")
    if not 2 * ns.connections <= ns.beds <= 100_000:
        raise SystemExit("--beds must be at least twice --connections (and at most 100000)")
    if ns.load:
        print(json.dumps(asyncio.run(_load(ns))))
    else:
        print(json.dumps(asyncio.run(main(ns)), indent=2))
