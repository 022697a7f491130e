"""The load scenarios: ``login`` storm, steady 1:1 ``chat``, ``idle`` connection memory.

Each scenario is an ``async`` function taking a :class:`BenchContext` and
returning a JSON-serialisable result dict (``metrics`` + ``targets``). They
talk to one already running server; starting and stopping it is the
runner's job (:mod:`bench.run`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.client import ClientConfig, Session, login
from bench.pyspy import Profiler, format_summary, summarize
from bench.stats import CpuMeter, LoopMonitor, percentile, quiet_gc, rss_kib, summary_ms

# Targets of the Carewire performance requirements (see bench/README.md).
TARGET_LOGINS_PER_S = 300.0
TARGET_CHAT_P99_MS = 50.0
TARGET_IDLE_KIB = 60.0
MIN_SLEEP = 0.001  # the chat sender's shortest sleep (event loop timer resolution)


@dataclass(slots=True)
class BenchContext:
    """What every scenario needs: where the server is, which accounts, which limits."""

    client: ClientConfig
    accounts: Sequence[str]
    password: str
    server_pid: int | None
    concurrency: int = 200
    login_timeout: float = 30.0
    profile_path: Path | None = None
    profile_duration: float | None = None
    profile_mode: str = "native"
    notes: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        """Progress line on stdout (kept in the result notes too)."""
        print(f"  · {text}", flush=True)
        self.notes.append(text)


# -- logging many accounts in ------------------------------------------------------------


@dataclass(slots=True)
class LoginBatch:
    """Outcome of :func:`login_many`."""

    sessions: list[Session]
    latencies: list[float]
    phases: dict[str, list[float]]
    failures: Counter[str]
    failure_samples: list[str]
    not_started: int
    first_start: float
    last_done: float

    @property
    def wall(self) -> float:
        """Seconds from the first connection attempt to the last completed login."""
        return max(self.last_done - self.first_start, 1e-9)


_resource_seq = itertools.count(1)


async def login_many(
    ctx: BenchContext,
    accounts: Sequence[str],
    *,
    presence: bool,
    sync: bool,
    deadline: float | None = None,
    concurrency: int | None = None,
) -> LoginBatch:
    """Log ``accounts`` in with at most ``concurrency`` logins in flight.

    ``deadline`` (``time.perf_counter`` value) bounds the whole batch: no new
    login starts after it, and logins in flight are cut at it.
    """
    batch = LoginBatch(
        [],
        [],
        {k: [] for k in ("connect", "tls", "sasl", "bind", "ready")},
        Counter(),
        [],
        0,
        0.0,
        0.0,
    )
    todo = iter(accounts)
    batch.first_start = time.perf_counter()
    base = ctx.client

    async def worker() -> None:
        for user in todo:
            now = time.perf_counter()
            if deadline is not None and now >= deadline:
                batch.not_started += 1
                continue
            limit = (
                ctx.login_timeout if deadline is None else min(ctx.login_timeout, deadline - now)
            )
            cfg = ClientConfig(
                base.host,
                base.port,
                base.domain,
                base.direct_tls,
                base.mechanism,
                f"{base.resource}-{next(_resource_seq)}",
                base.ssl_context,
            )
            try:
                async with asyncio.timeout(limit):
                    s = await login(cfg, user, ctx.password, presence=presence, sync=sync)
            except Exception as exc:
                key = f"{type(exc).__name__}: {str(exc)[:160]}" if str(exc) else type(exc).__name__
                batch.failures[_failure_class(key)] += 1
                if len(batch.failure_samples) < 10:
                    batch.failure_samples.append(f"{user}: {key}")
                continue
            t = s.timings
            batch.sessions.append(s)
            batch.latencies.append(t.ready - t.start)
            batch.phases["connect"].append(t.connected - t.start)
            batch.phases["tls"].append(t.tls - t.connected)
            batch.phases["sasl"].append(t.authed - t.tls)
            batch.phases["bind"].append(t.bound - t.authed)
            batch.phases["ready"].append(t.ready - t.bound)
            batch.last_done = max(batch.last_done, t.ready)

    n = max(1, min(concurrency or ctx.concurrency, len(accounts)))
    await asyncio.gather(*(worker() for _ in range(n)))
    if not batch.last_done:
        batch.last_done = time.perf_counter()
    return batch


def _failure_class(key: str) -> str:
    """Group failures whose messages only differ by account-specific details."""
    if key.startswith("TimeoutError"):
        return "TimeoutError (login did not finish in time)"
    return key[:200]


async def close_all(sessions: Sequence[Session], settle: float = 0.5) -> None:
    """End every stream politely and give the server a moment to process it."""
    for s in sessions:
        s.close()
    if sessions:
        await asyncio.sleep(settle)


def _login_report(batch: LoginBatch) -> dict[str, Any]:
    return {
        "completed": len(batch.sessions),
        "failed": sum(batch.failures.values()),
        "not_started": batch.not_started,
        "failures": dict(batch.failures),
        "failure_samples": batch.failure_samples,
        "wall_s": round(batch.wall, 3),
        "logins_per_s": round(len(batch.sessions) / batch.wall, 1),
        "latency_ms": summary_ms(batch.latencies),
        "phase_ms": {k: summary_ms(v) for k, v in batch.phases.items()},
    }


async def _maybe_profile(ctx: BenchContext, window: float) -> Profiler | None:
    if ctx.profile_path is None or ctx.server_pid is None:
        return None
    duration = min(ctx.profile_duration or window, window)
    prof = Profiler(ctx.server_pid, ctx.profile_path, duration, mode=ctx.profile_mode)
    await prof.start()
    ctx.say(
        f"py-spy ({ctx.profile_mode} mode) recording the server (pid {ctx.server_pid}) "
        f"for {prof.duration} s"
    )
    return prof


async def _finish_profile(ctx: BenchContext, prof: Profiler | None) -> dict[str, Any] | None:
    if prof is None:
        return None
    await prof.wait()
    if prof.error or not prof.output.exists():
        ctx.say(f"profile failed: {prof.error or 'no output'}")
        return {"error": prof.error or "no output"}
    summary = summarize(prof.output)
    print(format_summary(summary), flush=True)
    return summary


async def prime_key_cache(ctx: BenchContext, accounts: Sequence[str]) -> dict[str, Any]:
    """Log every account in and out once, unmeasured, to fill the SCRAM key cache.

    Accounts have their own salts, so the first login of each costs the
    generator one PBKDF2 (~1 ms at 4096 iterations); doing it here keeps that
    cost out of the measured scenarios.
    """
    batch = await login_many(ctx, accounts, presence=False, sync=False)
    await close_all(batch.sessions, settle=1.0)
    return {
        "primed": len(batch.sessions),
        "failed": sum(batch.failures.values()),
        "failures": dict(batch.failures),
        "wall_s": round(batch.wall, 2),
    }


# -- scenario 1: login storm ---------------------------------------------------------------


async def scenario_login(
    ctx: BenchContext, *, accounts: int, presence: bool, max_seconds: float
) -> dict[str, Any]:
    """N accounts log in (STARTTLS + SASL + bind [+ presence]) with bounded concurrency."""
    users = list(ctx.accounts[:accounts])
    ctx.say(
        f"login storm: {len(users)} accounts, {ctx.concurrency} in flight, "
        f"{ctx.client.mechanism}{' + presence' if presence else ''}, bound {max_seconds:.0f} s"
    )
    # One unmeasured warm-up login (the runner's priming pass, unless disabled, has
    # already derived the SCRAM keys of every account).
    warm = await login_many(ctx, users[:1], presence=False, sync=False, concurrency=1)
    await close_all(warm.sessions)
    with quiet_gc():
        meter = CpuMeter(ctx.server_pid).start()
        monitor = LoopMonitor(ctx.server_pid).start()
        prof = await _maybe_profile(ctx, max_seconds)
        batch = await login_many(
            ctx, users, presence=presence, sync=presence, deadline=time.perf_counter() + max_seconds
        )
        cpu = meter.stop()
        samples = await monitor.stop()
    profile = await _finish_profile(ctx, prof)
    report = _login_report(batch)
    report.update(cpu)
    report["monitor"] = samples
    ok = not report["failed"] and not report["not_started"]
    alive = sum(1 for s in batch.sessions if s.alive)
    report["alive_at_end"] = alive
    await close_all(batch.sessions, settle=1.0)
    return {
        "params": {
            "accounts": len(users),
            "concurrency": ctx.concurrency,
            "presence": presence,
            "max_seconds": max_seconds,
            "mechanism": ctx.client.mechanism,
            "direct_tls": ctx.client.direct_tls,
        },
        "metrics": report,
        "profile": profile,
        "targets": {
            "logins_per_s": {
                "target": f">= {TARGET_LOGINS_PER_S:.0f}",
                "value": report["logins_per_s"],
                "pass": report["logins_per_s"] >= TARGET_LOGINS_PER_S and ok,
            },
        },
    }


# -- scenario 2: steady 1:1 chat -----------------------------------------------------------


class ChatReceiver:
    """Shared receive-side accounting of the chat scenario (one callback per receiving session)."""

    def __init__(self, pairs: int, measure_from: float, measure_to: float) -> None:
        self.received = 0
        self.errors = 0
        self.duplicates = 0
        self.reordered = 0
        self.bad = 0
        self.pairs = pairs
        self.last_seq = [0] * pairs
        self.seen: set[int] = set()
        self.latencies = array("d")  # seconds, messages sent inside the measured window
        self.measured_received = 0
        self.measure_from_ns = int(measure_from * 1e9)
        self.measure_to_ns = int(measure_to * 1e9)
        self.first_recv = 0.0
        self.last_recv = 0.0
        self.per_second: dict[int, list[float]] = {}

    def callback(self) -> Any:
        """The ``Session.on_message`` handler."""
        clock = time.perf_counter_ns

        def on_message(data: bytes) -> None:
            now_ns = clock()
            head_end = data.find(b">")
            if b"type='error'" in data[:head_end] or b'type="error"' in data[:head_end]:
                self.errors += 1
                return
            i = data.find(b"<body>")
            j = data.find(b"</body>", i)
            if i < 0 or j < 0:
                self.bad += 1
                return
            try:
                pair_s, seq_s, sent_s = data[i + 6 : j].split(b" ")
                pair, seq, sent_ns = int(pair_s), int(seq_s), int(sent_s)
            except ValueError:
                self.bad += 1
                return
            key = seq * self.pairs + pair
            if key in self.seen:
                self.duplicates += 1
                return
            self.seen.add(key)
            if seq < self.last_seq[pair]:
                self.reordered += 1  # overtaken by a later message of the same pair
            else:
                self.last_seq[pair] = seq
            self.received += 1
            now = now_ns / 1e9
            if not self.first_recv:
                self.first_recv = now
            self.last_recv = now
            if self.measure_from_ns <= sent_ns < self.measure_to_ns:
                lat = (now_ns - sent_ns) / 1e9
                self.latencies.append(lat)
                self.measured_received += 1
                sec = (sent_ns - self.measure_from_ns) // 1_000_000_000
                self.per_second.setdefault(sec, []).append(lat)

        return on_message


class ChatSender:
    """Open-loop sender: message ``k`` is due at ``t0 + k / rate``, round-robin over the pairs."""

    def __init__(
        self,
        senders: Sequence[Session],
        receivers: Sequence[Session],
        rate: float,
        t0: float,
        measure_from: float,
        measure_to: float,
    ) -> None:
        self.senders = senders
        self.prefixes = [f"<message to='{r.bare}' type='chat' id='m".encode() for r in receivers]
        self.rate = rate
        self.t0 = t0
        self.measure_from = measure_from
        self.measure_to = measure_to
        self.sent = 0
        self.sent_measured = 0
        self.send_failed = 0
        self.ticks = 0
        self.max_lag = 0.0
        self.lags = array("d")  # per wake-up: how late the oldest due message was (s)

    async def run(self) -> None:
        """Send until ``measure_to``; sleeps until the next message is due."""
        n, rate, t0, senders, prefixes = (
            len(self.senders),
            self.rate,
            self.t0,
            self.senders,
            self.prefixes,
        )
        total = round((self.measure_to - t0) * rate)
        lo_ns, hi_ns = int(self.measure_from * 1e9), int(self.measure_to * 1e9)
        seqs = [0] * n
        clock, clock_ns = time.perf_counter, time.perf_counter_ns
        await asyncio.sleep(max(0.0, t0 - clock()))
        sent = 0
        while sent < total:
            now = clock()
            due = min(int((now - t0) * rate) + 1, total)
            if due > sent:
                lag = now - (t0 + sent / rate)
                self.max_lag = max(self.max_lag, lag)
                self.lags.append(lag)
                self.ticks += 1
            while sent < due:
                k = sent % n
                seq = seqs[k] = seqs[k] + 1
                s = senders[k]
                if s.alive:
                    ts = clock_ns()
                    s.send(
                        b"%s%d'><body>%d %d %d</body></message>" % (prefixes[k], seq, k, seq, ts)
                    )
                    if lo_ns <= ts < hi_ns:
                        self.sent_measured += 1
                else:
                    self.send_failed += 1
                sent += 1
                self.sent = sent
            # uvloop (libuv) timers have 1 ms resolution: a shorter sleep would spin the
            # loop and burn the generator's core, so wake at most once a millisecond and
            # send what is due (about rate/1000 messages per wake-up).
            delay = t0 + sent / rate - clock()
            await asyncio.sleep(max(delay, MIN_SLEEP) if delay > 0 else 0)


async def scenario_chat(
    ctx: BenchContext, *, pairs: int, rate: float, duration: float, warmup: float, drain: float
) -> dict[str, Any]:
    """``pairs`` sender→receiver pairs; aggregate ``rate`` msg/s, evenly spread, ``duration`` s."""
    users = list(ctx.accounts[: 2 * pairs])
    ctx.say(f"chat: logging in {len(users)} accounts ({pairs} pairs) with presence")
    batch = await login_many(ctx, users, presence=True, sync=True)
    by_user = {s.bare.split("@", 1)[0]: s for s in batch.sessions}
    senders: list[Session] = []
    receivers: list[Session] = []
    for k in range(pairs):
        a, b = by_user.get(users[2 * k]), by_user.get(users[2 * k + 1])
        if a is not None and b is not None:
            senders.append(a)
            receivers.append(b)
    n = len(senders)
    ctx.say(
        f"chat: {len(batch.sessions)}/{len(users)} logged in in {batch.wall:.1f} s, "
        f"{n} complete pairs; {rate:.0f} msg/s for {warmup:.0f}+{duration:.0f} s"
    )
    if n == 0:
        await close_all(batch.sessions)
        return {
            "params": {"pairs": pairs},
            "metrics": {"login": _login_report(batch)},
            "error": "no complete pair logged in",
            "targets": {},
        }
    await asyncio.sleep(1.0)  # let presence broadcasts settle

    t0 = time.perf_counter() + 0.05
    measure_from, measure_to = t0 + warmup, t0 + warmup + duration
    recv = ChatReceiver(n, measure_from, measure_to)
    cb = recv.callback()
    for r in receivers:
        r.on_message = cb
    sender = ChatSender(senders, receivers, rate, t0, measure_from, measure_to)
    with quiet_gc():
        monitor = LoopMonitor(ctx.server_pid).start()
        send_task = asyncio.get_running_loop().create_task(sender.run())
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        meter = CpuMeter(ctx.server_pid).start()
        prof = await _maybe_profile(ctx, duration)
        await send_task
        cpu = meter.stop()
        send_end = time.perf_counter()
        expected = sender.sent - sender.send_failed
        drain_deadline = send_end + drain
        while recv.received + recv.errors < expected and time.perf_counter() < drain_deadline:
            await asyncio.sleep(0.01)
        drained_after = time.perf_counter() - send_end
        samples = await monitor.stop()
    sent, sent_measured, send_failed = sender.sent, sender.sent_measured, sender.send_failed
    lag_samples, max_lag, ticks = sender.lags, sender.max_lag, sender.ticks
    profile = await _finish_profile(ctx, prof)

    lat = sorted(recv.latencies)
    latency = summary_ms(lat)
    timeline = []
    for sec in sorted(recv.per_second):
        vals = sorted(recv.per_second[sec])
        p99 = percentile(vals, 99)
        timeline.append(
            {
                "s": sec,
                "n": len(vals),
                "p50_ms": round((percentile(vals, 50) or 0) * 1000, 2),
                "p99_ms": round((p99 or 0) * 1000, 2),
                "max_ms": round(vals[-1] * 1000, 2),
            }
        )
    loss = sent - recv.received
    alive = sum(1 for s in batch.sessions if s.alive)
    stream_errors = [
        s.stream_error.decode(errors="replace")[:300] for s in batch.sessions if s.stream_error
    ]
    lags = sorted(lag_samples)
    metrics: dict[str, Any] = {
        "login": _login_report(batch),
        "pairs": n,
        "sent": sent,
        "send_failed_dead_session": send_failed,
        "received": recv.received,
        "loss": loss,
        "error_bounces": recv.errors,
        "duplicates": recv.duplicates,
        "out_of_order": recv.reordered,
        "unparsable": recv.bad,
        "drain_s": round(drained_after, 3),
        "measured_window_s": duration,
        "sent_in_window": sent_measured,
        "received_of_window": recv.measured_received,
        "offered_msg_per_s": round(sent_measured / duration, 1),
        "delivered_msg_per_s": round(recv.measured_received / duration, 1),
        "latency_ms": latency,
        "generator_lag_ms": {
            "p99": round((percentile(lags, 99) or 0) * 1000, 3),
            "max": round(max_lag * 1000, 3),
            "ticks": ticks,
            "mean_batch": round(sent / ticks, 2) if ticks else None,
        },
        "sessions_alive_at_end": alive,
        "stream_errors": stream_errors[:5],
        "timeline": timeline,
    }
    metrics.update(cpu)
    metrics["monitor"] = samples
    metrics["monitor_note"] = f"t is seconds since the first send; warm-up is the first {warmup} s"
    await close_all(batch.sessions, settle=1.0)
    p99 = latency["p99"]
    return {
        "params": {
            "pairs": pairs,
            "rate": rate,
            "duration": duration,
            "warmup": warmup,
            "drain": drain,
        },
        "metrics": metrics,
        "profile": profile,
        "targets": {
            "delivered_msg_per_s": {
                "target": f">= {rate * 0.99:.0f} (99% of offered)",
                "value": metrics["delivered_msg_per_s"],
                "pass": metrics["delivered_msg_per_s"] >= rate * 0.99,
            },
            "p99_ms": {
                "target": f"< {TARGET_CHAT_P99_MS:.0f}",
                "value": p99,
                "pass": p99 is not None and p99 < TARGET_CHAT_P99_MS,
            },
            "loss": {"target": "0", "value": loss, "pass": loss == 0 and recv.errors == 0},
        },
    }


# -- scenario 3: idle connections ------------------------------------------------------------


async def _sample_rss(pid: int, samples: int = 3, interval: float = 0.5) -> int | None:
    values = []
    for i in range(samples):
        v = rss_kib(pid)
        if v is not None:
            values.append(v)
        if i + 1 < samples:
            await asyncio.sleep(interval)
    return sorted(values)[len(values) // 2] if values else None


async def scenario_idle(ctx: BenchContext, *, connections: int, hold: float) -> dict[str, Any]:
    """K logged-in sessions with presence; server RSS growth per connection."""
    pid = ctx.server_pid
    users = list(ctx.accounts[:connections])
    if pid is None:
        ctx.say("idle: no server pid (use --server-pid with --external): RSS cannot be measured")
    # Warm-up: exercise every code path once so lazily created state is in the baseline.
    warm = await login_many(ctx, users[: min(20, len(users))], presence=True, sync=True)
    await close_all(warm.sessions, settle=2.0)
    before = await _sample_rss(pid) if pid else None
    ctx.say(f"idle: server RSS before {before} KiB; opening {len(users)} sessions")
    meter = CpuMeter(pid).start()
    batch = await login_many(ctx, users, presence=True, sync=True)
    login_cpu = meter.stop()
    ctx.say(f"idle: {len(batch.sessions)} sessions up in {batch.wall:.1f} s; holding {hold:.0f} s")
    rss_series: list[tuple[float, int | None]] = []
    t_start = time.perf_counter()
    idle_meter = CpuMeter(pid).start()
    while time.perf_counter() - t_start < hold:
        rss_series.append((round(time.perf_counter() - t_start, 1), rss_kib(pid) if pid else None))
        await asyncio.sleep(min(1.0, max(0.0, hold - (time.perf_counter() - t_start))))
    after = await _sample_rss(pid) if pid else None
    idle_cpu = idle_meter.stop()
    # Liveness: every session answers a ping.
    pings_ok = 0

    async def ping(s: Session) -> None:
        nonlocal pings_ok
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await s.ping()
            pings_ok += 1

    await asyncio.gather(*(ping(s) for s in batch.sessions))
    n = len(batch.sessions)
    per_conn = (
        round((after - before) / n, 2) if (after is not None and before is not None and n) else None
    )
    await close_all(batch.sessions, settle=1.0)
    after_close = await _sample_rss(pid) if pid else None
    return {
        "params": {"connections": len(users), "hold": hold, "concurrency": ctx.concurrency},
        "metrics": {
            "login": _login_report(batch),
            "connected": n,
            "rss_before_kib": before,
            "rss_after_kib": after,
            "rss_after_close_kib": after_close,
            "kib_per_connection": per_conn,
            "rss_series_kib": rss_series,
            "pings_answered": pings_ok,
            "login_phase_cpu": login_cpu,
            "idle_server_cpu_pct": idle_cpu["server_cpu_pct"],
        },
        "targets": {
            "kib_per_connection": {
                "target": f"<= {TARGET_IDLE_KIB:.0f}",
                "value": per_conn,
                "pass": per_conn is not None
                and per_conn <= TARGET_IDLE_KIB
                and n == len(users)
                and pings_ok == n,
            },
        },
    }
