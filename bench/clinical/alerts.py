"""``alerts``: a record through the REST API fires Send Alert; its nurse's session receives it."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.clinical.common import (
    MAX_POSTS_IN_FLIGHT,
    MIN_SLEEP,
    Api,
    SetupError,
    _at_least,
    _below,
    _failed,
    _problem,
)
from bench.scenarios import (
    BenchContext,
    _finish_profile,
    _login_report,
    _maybe_profile,
    close_all,
    login_many,
)
from bench.stats import CpuMeter, LoopMonitor, quiet_gc, summary_ms

TARGET_ALERT_P99_MS = 1000.0
ALERT_DATASET = "BENCH_CALLS"
ALERT_RULE = "bench-alert-nurse"
XMPP_ADAPTER = "XMPP"
NS_ALERT = b"urn:carewire:alert:0"


def alert_rule(adapter: str) -> dict[str, Any]:
    """A Send Alert rule on :data:`ALERT_DATASET`: the record's ``nurse`` gets the alert."""
    return {
        "name": ALERT_RULE,
        "purpose": "benchmark: a new call alerts the nurse named in the record",
        "dataset": ALERT_DATASET,
        "adapter": adapter,
        "action": "Send Alert",
        "active": True,
        "trigger": {"create": True, "update": False, "attributes": []},
        "conditions": {"all": []},
        "settings": {
            "recipients": "#{nurse}",
            "subject": "Call #{call_id}",
            "message": "Benchmark call #{call_id} from bed #{bed}.",
            "ttl": 10,
            "priority": "Urgent",
        },
    }


async def setup_alerts(api: Api) -> dict[str, Any]:
    """Check the XMPP adapter, create the dataset (once) and import the rule."""
    r = await api.get("/adapters")
    if r.status_code != 200:
        raise SetupError(_problem(r))
    adapters = r.json()["adapters"]
    xmpp = next((a for a in adapters if a["reference_name"] == XMPP_ADAPTER), None)
    if xmpp is None or xmpp["component"] != "XMPP" or not xmpp["enabled"]:
        found = [(a["reference_name"], a["component"], a["enabled"]) for a in adapters]
        raise SetupError(f"no enabled XMPP adapter named {XMPP_ADAPTER!r}: {found}")
    if (await api.get(f"/datasets/{ALERT_DATASET}")).status_code == 404:
        definition = {
            "name": ALERT_DATASET,
            "attributes": [
                {"name": "call_id", "type": "String", "key": True},
                {"name": "nurse", "type": "String"},
                {"name": "bed", "type": "String"},
            ],
        }
        r = await api.post("/datasets", definition)
        if r.status_code != 201:
            raise SetupError(_problem(r))
    r = await api.post("/rules/import", {"rules": [alert_rule(XMPP_ADAPTER)]})
    if r.status_code not in (200, 201):
        raise SetupError(_problem(r))
    return {"adapter": XMPP_ADAPTER, "dataset": ALERT_DATASET, "rule": ALERT_RULE}


_ALERT_TOKEN = re.compile(rb"bc([0-9a-f]{6})n(\d+)x")


class AlertTracker:
    """Which record went to which nurse when, and which alerts arrived where."""

    def __init__(self, tag: str) -> None:
        self.tag = tag.encode()
        self.sent_at: dict[int, float] = {}
        self.target: dict[int, str] = {}
        self.failed: Counter[str] = Counter()
        self.arrived: dict[int, float] = {}
        self.post_latency = array("d")
        self.duplicates = 0
        self.wrong_recipient = 0
        self.other_messages = 0

    def token(self, seq: int) -> str:
        """The unique value written into record ``seq`` (and so into its alert)."""
        return f"bc{self.tag.decode()}n{seq}x"

    def callback(self, login: str) -> Callable[[bytes], None]:
        """The ``Session.on_message`` handler of ``login``'s session."""
        clock = time.perf_counter

        def on_message(data: bytes) -> None:
            now = clock()
            m = _ALERT_TOKEN.search(data)
            if m is None or m.group(1) != self.tag or NS_ALERT not in data:
                self.other_messages += 1
                return
            seq = int(m.group(2))
            if seq in self.arrived:
                self.duplicates += 1
            elif self.target.get(seq) != login:
                self.wrong_recipient += 1
            else:
                self.arrived[seq] = now - self.sent_at[seq]

        return on_message


async def _post_records(
    api: Api, tracker: AlertTracker, nurses: Sequence[str], *, rate: float, t0: float, total: int
) -> float:
    """Open loop: record ``i`` is due at ``t0 + i / rate``; returns the worst start lag (s)."""
    gate = asyncio.Semaphore(MAX_POSTS_IN_FLIGHT)
    worst = 0.0

    async def post(i: int) -> None:
        async with gate:
            values = {"call_id": tracker.token(i), "nurse": nurses[i % len(nurses)], "bed": str(i)}
            tracker.target[i] = values["nurse"]
            start = tracker.sent_at[i] = time.perf_counter()
            try:
                r = await api.post(f"/datasets/{ALERT_DATASET}/records", {"values": values})
            except httpx.HTTPError as exc:
                tracker.failed[type(exc).__name__] += 1
                return
            tracker.post_latency.append(time.perf_counter() - start)
            if r.status_code != 201:
                tracker.failed[f"HTTP {r.status_code}"] += 1

    async with asyncio.TaskGroup() as tg:
        for i in range(total):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(max(delay, MIN_SLEEP))
            worst = max(worst, time.perf_counter() - (t0 + i / rate))
            tg.create_task(post(i))
    return worst


async def _delivery_statuses(api: Api, since: str) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for status in ("Delivered", "Pending", "Error", "Queued", "Processing"):
        r = await api.get("/deliveries", rule=ALERT_RULE, status=status, since=since, limit=1)
        out[status] = int(r.json()["total"]) if r.status_code == 200 else None
    return out


async def _error_samples(api: Api, since: str) -> list[str]:
    r = await api.get("/deliveries", rule=ALERT_RULE, status="Error", since=since, limit=3)
    if r.status_code != 200:
        return []
    return [str(d["values"].get("status_text", ""))[:200] for d in r.json()["deliveries"]]


async def scenario_alerts(
    ctx: BenchContext,
    *,
    api: Api,
    clients: int,
    rate: float,
    duration: float,
    warmup: float,
    drain: float,
) -> dict[str, Any]:
    """Records through the API at ``rate``/s; each alerts one of ``clients`` logged-in nurses."""
    users = list(ctx.accounts[:clients])
    setup = await setup_alerts(api)
    ctx.say(f"alerts: rule {ALERT_RULE!r} on {ALERT_DATASET} via adapter {setup['adapter']!r}")
    batch = await login_many(ctx, users, presence=True, sync=True)
    sessions = {s.bare.split("@", 1)[0]: s for s in batch.sessions}
    nurses = [u for u in users if u in sessions]
    if not nurses:
        await close_all(batch.sessions)
        return _failed("no client logged in", _login_report(batch))
    tracker = AlertTracker(secrets.token_hex(3))
    for login, s in sessions.items():
        s.on_message = tracker.callback(login)
    total = round((warmup + duration) * rate)
    ctx.say(
        f"alerts: {len(nurses)}/{len(users)} clients in {batch.wall:.1f} s; "
        f"{rate:g} records/s for {warmup:g}+{duration:g} s ({total} records)"
    )
    since = datetime.now(UTC).isoformat(timespec="seconds")
    await asyncio.sleep(1.0)
    t0 = time.perf_counter() + 0.05
    measure_from = t0 + warmup
    with quiet_gc():
        monitor = LoopMonitor(ctx.server_pid).start()
        sender = asyncio.get_running_loop().create_task(
            _post_records(api, tracker, nurses, rate=rate, t0=t0, total=total)
        )
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        meter = CpuMeter(ctx.server_pid).start()
        prof = await _maybe_profile(ctx, duration)
        worst_lag = await sender
        cpu = meter.stop()
        posted = total - sum(tracker.failed.values())
        deadline = time.perf_counter() + drain
        while len(tracker.arrived) < posted and time.perf_counter() < deadline:
            await asyncio.sleep(0.02)
        samples = await monitor.stop()
    profile = await _finish_profile(ctx, prof)
    # Record i is due at t0 + i / rate: the window holds the records after the warm-up's.
    measured = [seq for seq in tracker.sent_at if seq >= round(warmup * rate)]
    latencies = [tracker.arrived[s] for s in measured if s in tracker.arrived]
    statuses = await _delivery_statuses(api, since)
    errors = await _error_samples(api, since) if statuses.get("Error") else []
    lost = posted - len(tracker.arrived)
    metrics: dict[str, Any] = {
        "login": _login_report(batch),
        "clients": len(nurses),
        "records_posted": total,
        "post_failures": dict(tracker.failed),
        "alerts_received": len(tracker.arrived),
        "lost": lost,
        "duplicates": tracker.duplicates,
        "wrong_recipient": tracker.wrong_recipient,
        "other_messages": tracker.other_messages,
        "measured_window_s": duration,
        "records_in_window": len(measured),
        "alerts_per_s": round(len(latencies) / duration, 1),
        "latency_ms": summary_ms(latencies),
        "post_ms": summary_ms(tracker.post_latency),
        "sender_lag_max_ms": round(worst_lag * 1000, 1),
        "deliveries_by_status": statuses,
        "delivery_error_samples": errors,
        "sessions_alive_at_end": sum(1 for s in batch.sessions if s.alive),
    }
    metrics.update(cpu)
    metrics["monitor"] = samples
    await close_all(batch.sessions, settle=1.0)
    p99 = metrics["latency_ms"]["p99"]
    return {
        "params": {
            "clients": clients,
            "rate": rate,
            "duration": duration,
            "warmup": warmup,
            "drain": drain,
            **setup,
        },
        "metrics": metrics,
        "profile": profile,
        "targets": {
            "alerts_per_s": _at_least(metrics["alerts_per_s"], rate * 0.99),
            "p99_ms": _below(p99, TARGET_ALERT_P99_MS),
            "lost": {"target": "0", "value": lost, "pass": lost == 0 and not tracker.failed},
        },
    }
