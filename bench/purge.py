"""The retention purge on a large message table, and 1:1 chat while the server purges.

``python -m bench.purge [--messages 1000000] [--data-dir DIR] [--chat-rate 400]``

1. **Fill.** A data directory is made as ``bench.run`` makes one (``carewire
   init``, the benchmark accounts), and the platform is assembled in this
   process. A hospital, ``Bench Retention Hospital``, gets a one-day Message
   retention period and ``--starters`` directory users; ``--conversations``
   two-person conversations (each started by one of them, with a benchmark
   account) are made through the dataset service. Then ``--messages``
   MESSAGES rows, two days old, each with its recipient (the join table) and
   its MESSAGE_DELIVERIES row, the columns message tracking writes, are
   inserted with batched ``executemany`` statements on the dataset tables
   (``DatasetSchema``: the project's own column types), ``--fill-batch`` rows a
   transaction. Tracking's own path would take hours for a million rows.
2. **Purge.** ``RetentionPurge.run()``, the nightly job's code, on that
   table with nothing else running: total time, bodies per second, and each
   batch's time (a batch is one transaction holding SQLite's write lock).
3. **Chat during the nightly purge.** The bodies are put back, the hospital's
   time zone is chosen so that it is past 02:00 there, and ``carewire serve``
   starts (pinned to CPU 0, log level info). Its retention job checks a minute
   after the start and runs the purge in the server's process. Meanwhile
   ``--pairs`` pairs chat at ``--chat-rate`` msg/s with the ``chat`` scenario's
   open-loop sender and receiver (``bench.scenarios``); the purge's start and
   end come from the server log's lines. Latency percentiles are given for
   the seconds of sending before the purge started and for those while it ran.

Results go to ``bench/results/purge-<timestamp>.json``; figures in bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from bench.client import ClientConfig
from bench.run import (
    ManagedServer,
    account_names,
    machine_info,
    pin_self,
    prepare_data_dir,
    raise_nofile,
    server_env,
)
from bench.scenarios import BenchContext, ChatReceiver, ChatSender, close_all, login_many
from bench.stats import percentile, quiet_gc, summary_ms
from carewire.assembly import Assembly, assemble, options_from_config
from carewire.config import load
from carewire.datasets.model import Origin
from carewire.directory.model import (
    SYSTEM_CALLER,
    AdminInvitee,
    NewHospital,
    NewUser,
    OrganisationUpdate,
    Profile,
    RetentionUnit,
)
from carewire.directory.retention import RetentionStore
from carewire.storage.dataset_tables import DatasetSchema

HOSPITAL = "Bench Retention Hospital"
PASSWORD = "bench-password-1"
BODY = "Bench note {n}: patient in bed 12 asks for the nurse, fluids running, recheck at 14:00."
ELEMENTS = "<origin-id xmlns='urn:xmpp:sid:0' id='{u}'/>"
RESULTS = Path(__file__).parent / "results"
#: The server's retention job checks this long after it starts (carewire.server).
FIRST_CHECK_S = 60.0
PURGE_LINE = re.compile(r"^(\S+ \S+) .*retention purge: organisation \d+(, batch 1,| done:)")


# -- 1. fill ---------------------------------------------------------------------------------


async def _organisation(p: Assembly, starters: int, domain: str) -> tuple[int, list[str]]:
    """The hospital (retention one day) and its starters' JIDs; made once per database."""
    orgs = p.directory.organisations
    found = [o for o in await orgs.list_visible(SYSTEM_CALLER) if o.name == HOSPITAL]
    if found:
        org = found[0]
    else:
        org = await orgs.create_hospital(
            SYSTEM_CALLER,
            NewHospital(
                name=HOSPITAL,
                office_number="(408) 882-5830",
                admin=AdminInvitee(email="admin@bench.org", first_name="Ada", last_name="Admin"),
            ),
        )
        settings = replace(org.settings, retention_value=1, retention_unit=RetentionUnit.DAYS)
        org = await orgs.update(SYSTEM_CALLER, org.id, OrganisationUpdate(settings=settings))
        for n in range(starters):
            await p.directory.users.create(
                SYSTEM_CALLER,
                org.id,
                NewUser(
                    profile=Profile(first_name="Ret", last_name=f"S{n:03d}", email=f"r{n}@b.org"),
                    login=f"ret{n:03d}",
                    pin="2580",
                    password=PASSWORD,
                    send_invitation=False,
                ),
            )
    return org.id, [f"ret{n:03d}@{domain}" for n in range(starters)]


async def _conversations(
    p: Assembly, starters: list[str], peers: list[str], count: int
) -> list[tuple[int, int, int]]:
    """``count`` conversations (id, starter identity id, peer identity id) with history rows."""
    async with p.datasets.batch(Origin(actor="bench"), "bench_identities") as b:
        ids = {}
        for jid in [*starters, *peers]:
            ids[jid] = (await b.upsert("IDENTITIES", {"name": jid})).id
    s = len(starters)
    pairs = [(starters[n % s], peers[n // s % len(peers)]) for n in range(count)]
    async with p.datasets.batch(Origin(actor="bench"), "bench_conversations") as b:
        convs = await b.create_many(
            "CONVERSATIONS",
            [{"jid1": a, "jid2": z, "ttl": 10080, "activity_state": "active"} for a, z in pairs],
        )
        await b.create_many(
            "CONVERSATION_HISTORY",
            [
                {"conversation": c.id, "member": ids[a], "activity_state": "active"}
                for c, (a, _) in zip(convs, pairs, strict=True)
            ],
        )
    return [(int(c.id), ids[a], ids[z]) for c, (a, z) in zip(convs, pairs, strict=True)]


async def fill(p: Assembly, convs: list[tuple[int, int, int]], messages: int, batch: int) -> float:
    """Insert ``messages`` two-day-old messages over ``convs``; rows per second (all tables)."""
    schema = DatasetSchema(p.registry.all())
    msgs, dels = schema.tables["MESSAGES"], schema.tables["MESSAGE_DELIVERIES"]
    join = schema.joins[("MESSAGES", "recipients")]
    async with p.db.read("bench_max_id") as conn:
        first = int((await conn.execute(select(func.max(msgs.c.id)))).scalar() or 0) + 1
    start = datetime.now(UTC) - timedelta(days=2, hours=1)
    t = time.perf_counter()
    for lo in range(0, messages, batch):
        rows, recips, deliveries = [], [], []
        for n in range(lo, min(lo + batch, messages)):
            conv, sender, peer = convs[n % len(convs)]
            at = start + timedelta(milliseconds=n)
            u = str(uuid.uuid4())
            rows.append(
                {
                    "id": first + n,
                    "uuid": u,
                    "received_at": at,
                    "sent_at": at,
                    "acknowledgeable": "f",
                    "elements": ELEMENTS.format(u=u),
                    "message": BODY.format(n=n),
                    "state": "expired",
                    "expires_at": at + timedelta(days=1),
                    "conversation_id": conv,
                    "from_id": sender,
                }
            )
            recips.append({join.mine: first + n, join.other: peer})
            deliveries.append(
                {"message_id": first + n, "recipient_id": peer, "sent_at": at, "received_at": at}
            )
        async with p.db.transaction("bench_fill") as txn:
            await txn.conn.execute(msgs.insert(), rows)
            await txn.conn.execute(join.table.insert(), recips)
            await txn.conn.execute(dels.insert(), deliveries)
        if (lo // batch) % 20 == 0:
            done = lo + len(rows)
            print(f"  · filled {done:,} messages ({time.perf_counter() - t:.0f} s)", flush=True)
    return 3 * messages / (time.perf_counter() - t)


async def restore_bodies(p: Assembly, conv_ids: list[int]) -> float:
    """Put bodies back on the purged messages of ``conv_ids`` (in id ranges); seconds."""
    msgs = DatasetSchema(p.registry.all()).tables["MESSAGES"]
    t = time.perf_counter()
    for lo in range(0, len(conv_ids), 200):
        chunk = conv_ids[lo : lo + 200]
        async with p.db.transaction("bench_restore") as txn:
            await txn.conn.execute(
                update(msgs)
                .where(msgs.c.conversation_id.in_(chunk), msgs.c.message.is_(None))
                .values(message=BODY.format(n="restored"), elements=ELEMENTS.format(u="r"))
            )
    return time.perf_counter() - t


# -- 2. purge --------------------------------------------------------------------------------


class TimedStore:
    """The purge's store, timing each batch (each is one transaction)."""

    def __init__(self, store: RetentionStore) -> None:
        self.store = store
        self.batches: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def purge_bodies(
        self, conversations: Any, before: datetime, *, limit: int, after: int = 0
    ) -> tuple[int, int]:
        t = time.perf_counter()
        done = await self.store.purge_bodies(conversations, before, limit=limit, after=after)
        self.batches.append(time.perf_counter() - t)
        return done


async def time_purge(p: Assembly) -> dict[str, Any]:
    """Dry run, then the purge, on the idle platform."""
    t = time.perf_counter()
    plan = await p.retention.dry_run()
    dry = time.perf_counter() - t
    timed = TimedStore(p.retention.store)
    real = p.retention.store
    p.retention.store = timed  # type: ignore[assignment]
    try:
        t = time.perf_counter()
        counts = await p.retention.run()
        took = time.perf_counter() - t
    finally:
        p.retention.store = real
    purged = sum(c.messages for c in counts)
    return {
        "dry_run_s": round(dry, 2),
        "would_purge": sum(c.messages for c in plan),
        "purged": purged,
        "purge_s": round(took, 2),
        "bodies_per_s": round(purged / took),
        "batches": len(timed.batches),
        "batch_ms": summary_ms(sorted(timed.batches)),
    }


# -- 3. chat while the server purges ----------------------------------------------------------


def zone_past_two() -> str:
    """An IANA zone where it is now between 03:00 and 21:59 (so the nightly purge is due)."""
    now = datetime.now(UTC)
    for offset in range(-10, 15):
        name = f"Etc/GMT{-offset:+d}" if offset else "UTC"
        if 3 <= now.astimezone(ZoneInfo(name)).hour <= 21:
            return name
    return "UTC"


def purge_times(log: str) -> tuple[float | None, float | None]:
    """Wall-clock times (epoch s) of the first batch and the end of the purge in a server log."""
    start = end = None
    for line in log.splitlines():
        m = PURGE_LINE.match(line)
        if m is None:
            continue
        at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if m.group(2).startswith(", batch") and start is None:
            start = at
        elif m.group(2) == " done:":
            end = at
    return start, end


def split(recv: ChatReceiver, wall_from: float, start: float, end: float) -> dict[str, Any]:
    """Latency of the messages sent in whole seconds before the purge and while it ran."""
    before: list[float] = []
    during: list[float] = []
    for sec, values in recv.per_second.items():
        lo = wall_from + sec
        if lo + 1 <= start:
            before.extend(values)
        elif lo >= start and lo + 1 <= end:
            during.extend(values)
    return {"before_purge": summary_ms(sorted(before)), "during_purge": summary_ms(sorted(during))}


async def chat_while_purging(
    ctx: BenchContext,
    server: ManagedServer,
    *,
    started: float,
    pairs: int,
    rate: float,
    expected_purge: float,
) -> dict[str, Any]:
    """Chat from the clients' login until the server's purge has ended (bounded)."""
    users = account_names(2 * pairs)
    batch = await login_many(ctx, users, presence=True, sync=True)
    by = {s.bare.split("@", 1)[0]: s for s in batch.sessions}
    senders = [by[users[2 * k]] for k in range(pairs)]
    receivers = [by[users[2 * k + 1]] for k in range(pairs)]
    await asyncio.sleep(1.0)
    until_check = max(0.0, started + FIRST_CHECK_S - time.time())
    duration = min(until_check + 2 * expected_purge + 15, 600.0)
    t0 = time.perf_counter() + 0.05
    measure_from, measure_to = t0 + 2.0, t0 + 2.0 + duration
    wall_from = time.time() + (measure_from - time.perf_counter())
    recv = ChatReceiver(pairs, measure_from, measure_to)
    cb = recv.callback()
    for r in receivers:
        r.on_message = cb
    sender = ChatSender(senders, receivers, rate, t0, measure_from, measure_to)
    print(
        f"  · chat: {rate:.0f} msg/s for at most {duration:.0f} s; "
        f"the server's purge is due in {until_check:.0f} s",
        flush=True,
    )
    with quiet_gc():
        task = asyncio.get_running_loop().create_task(sender.run())
        while not task.done():
            await asyncio.sleep(0.5)
            _, end = purge_times(server.new_log())
            if end is not None and time.time() > end + 5:
                task.cancel()  # the purge is over (and 5 s after it measured): stop sending
        with contextlib.suppress(asyncio.CancelledError):
            await task
        deadline = time.perf_counter() + 5
        while recv.received < sender.sent - sender.send_failed:
            if time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.01)
    start, end = purge_times(server.new_log())
    await close_all(batch.sessions)
    out: dict[str, Any] = {
        "sent": sender.sent,
        "received": recv.received,
        "lost": sender.sent - recv.received,
        "chat_s": round(time.perf_counter() - measure_from, 1),
        "purge_started_s": None if start is None else round(start - wall_from, 1),
        "purge_ended_s": None if end is None else round(end - wall_from, 1),
        "all": summary_ms(sorted(recv.latencies)),
    }
    if start is not None:
        out.update(split(recv, wall_from, start, end if end is not None else float("inf")))
        out["purge_in_server_s"] = None if end is None else round(end - start, 1)
    out["timeline_p99_ms"] = [
        round((percentile(sorted(v), 99) or 0) * 1000, 1)
        for _, v in sorted(recv.per_second.items())
    ]
    return out


# -- the command -----------------------------------------------------------------------------


async def prepare_and_purge(
    data_dir: Path, a: argparse.Namespace, domain: str
) -> tuple[dict[str, Any], list[int]]:
    """Fill and time the purge in this process; with chat to follow, put the bodies back."""
    p = await assemble(options_from_config(load(data_dir, env={}), is_server=False))
    try:
        org_id, starters = await _organisation(p, a.starters, domain)
        peers = [f"{n}@{domain}" for n in account_names(a.peers)]
        convs = await _conversations(p, starters, peers, a.conversations)
        print(f"• filling {a.messages:,} messages over {len(convs):,} conversations", flush=True)
        t = time.perf_counter()
        rows_per_s = await fill(p, convs, a.messages, a.fill_batch)
        out: dict[str, Any] = {
            "fill": {"s": round(time.perf_counter() - t, 1), "rows_per_s": round(rows_per_s)}
        }
        print(f"  {out['fill']}\n• purging (in this process, nothing else running)", flush=True)
        out["purge"] = await time_purge(p)
        print(f"  {out['purge']}", flush=True)
        conv_ids = [c for c, _, _ in convs]
        if a.chat_rate > 0:
            org = await p.directory.organisations.get(SYSTEM_CALLER, org_id)
            zone = zone_past_two()
            settings = replace(org.settings, default_time_zone=zone)
            await p.directory.organisations.update(
                SYSTEM_CALLER, org_id, OrganisationUpdate(settings=settings)
            )
            out["restore_s"] = round(await restore_bodies(p, conv_ids), 1)
            out["zone"] = zone
        return out, conv_ids
    finally:
        await p.close()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--conversations", type=int, default=1000)
    ap.add_argument("--starters", type=int, default=10, help="directory users starting them")
    ap.add_argument("--peers", type=int, default=200, help="benchmark accounts they talk to")
    ap.add_argument("--fill-batch", type=int, default=5000)
    ap.add_argument("--data-dir", type=Path, help="keep the data directory here")
    ap.add_argument("--chat-rate", type=float, default=400.0, help="0: no chat phase")
    ap.add_argument("--pairs", type=int, default=100)
    a = ap.parse_args(argv)
    if not 1 <= a.messages <= 5_000_000 or not 1 <= a.conversations <= 100_000:
        ap.error("--messages 1 … 5,000,000, --conversations 1 … 100,000")
    if not 0 <= a.chat_rate <= 5000 or not 1 <= a.pairs <= 1000:
        ap.error("--chat-rate 0 … 5,000, --pairs 1 … 1,000")
    raise_nofile()
    tmp = None if a.data_dir else tempfile.mkdtemp(prefix="carewire-purge-")
    data_dir = a.data_dir or Path(str(tmp))
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **server_env(
            argparse.Namespace(server_log_level="info", scram_iterations=4096, encryption="on")
        )
    }
    env["CAREWIRE_LOG_LEVEL"] = "info"  # the purge's progress lines
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        domain = prepare_data_dir(
            data_dir, "bench.carewire.localhost", max(a.peers, 2 * a.pairs), PASSWORD, env
        )
        result: dict[str, Any] = {"params": vars(a) | {"data_dir": str(data_dir)}}
        result["machine"] = machine_info()
        result["load_before"] = os.getloadavg()
        phases, _ = asyncio.run(prepare_and_purge(data_dir, a, domain))
        result.update(phases)
        if a.chat_rate > 0:
            result["chat"] = _chat_phase(data_dir, a, domain, env, stamp, phases)
            print(f"  {json.dumps(result['chat'])[:2000]}", flush=True)
        result["load_after"] = os.getloadavg()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"purge-{stamp}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"• results: {path}")
    return 0


def _chat_phase(
    data_dir: Path,
    a: argparse.Namespace,
    domain: str,
    env: dict[str, str],
    stamp: str,
    phases: dict[str, Any],
) -> dict[str, Any]:
    server = ManagedServer(data_dir, 0, env, RESULTS / f"purge-{stamp}.server.log")
    ports = server.start()
    started = time.time()
    print(f"  {pin_self(1)}", flush=True)
    ctx = BenchContext(
        client=ClientConfig("127.0.0.1", ports["c2s"], domain),
        accounts=account_names(2 * a.pairs),
        password=PASSWORD,
        server_pid=server.pid,
    )
    try:
        return asyncio.run(
            chat_while_purging(
                ctx,
                server,
                started=started,
                pairs=a.pairs,
                rate=a.chat_rate,
                expected_purge=float(phases["purge"]["purge_s"]),
            )
        )
    finally:
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
