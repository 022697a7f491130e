"""``group``: a directory group's address on groups.DOMAIN; one member writes, all others receive.

The group's members are directory users made by the runner's preparation
(:mod:`bench.orgsetup`): ``Bench Group <N>`` of ``grp00001 … grpN``. They log
in with presence; one of them sends ``type='chat'`` messages to the group's
address at ``rate``; the server's groups service records each once in
MESSAGES and hands a copy to every other member (a MESSAGE_DELIVERIES row
each), so each receiving session must get each message once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.client import Session
from bench.clinical.common import (
    MIN_SLEEP,
    Api,
    _at_least,
    _below,
    _failed,
    tracked_counts,
    tracking_catch_up,
)
from bench.clinical.fanout import FanoutReceiver
from bench.scenarios import (
    BenchContext,
    _finish_profile,
    _login_report,
    _maybe_profile,
    close_all,
    login_many,
)
from bench.stats import CpuMeter, LoopMonitor, quiet_gc, summary_ms

TARGET_GROUP_P99_MS = 100.0


async def _post_to_group(
    sender: Session, group: str, *, rate: float, t0: float, total: int
) -> float:
    """Open loop: message ``i`` at ``t0 + i / rate``; returns the worst send lag (s)."""
    worst = 0.0
    prefix = f"<message to='{group}' type='chat' id='g".encode()
    for i in range(total):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(max(delay, MIN_SLEEP))
        worst = max(worst, time.perf_counter() - (t0 + i / rate))
        ts = time.perf_counter_ns()
        sender.send(b"%s%d'><body>%d %d</body></message>" % (prefix, i, i, ts))
    return worst


class SenderTap:
    """What comes back to the sender: error bounces (a refused message) and anything else."""

    def __init__(self) -> None:
        self.errors = 0
        self.other = 0
        self.samples: list[str] = []

    def __call__(self, data: bytes) -> None:
        """Count one message stanza the sender received."""
        head = data[: data.find(b">")]
        if b"type='error'" in head or b'type="error"' in head:
            self.errors += 1
            if len(self.samples) < 3:
                self.samples.append(data[:300].decode("utf-8", "replace"))
        else:
            self.other += 1


async def scenario_group(
    ctx: BenchContext,
    *,
    group_jid: str,
    members: int,
    rate: float,
    duration: float,
    warmup: float,
    drain: float,
    api: Api | None = None,
    settle: float = 30.0,
) -> dict[str, Any]:
    """``members`` log in; one sends ``rate`` messages/s to ``group_jid``; all others receive.

    With ``api``, also how far message tracking (MESSAGES and MESSAGE_DELIVERIES
    rows) lagged behind: see :func:`~bench.clinical.common.tracking_catch_up`.
    """
    users = list(ctx.accounts[:members])
    batch = await login_many(ctx, users, presence=True, sync=True)
    if len(batch.sessions) < 2:
        await close_all(batch.sessions)
        return _failed("fewer than two members logged in", _login_report(batch))
    ctx.say(
        f"group: {len(batch.sessions)}/{len(users)} members in {batch.wall:.1f} s; "
        f"writing to {group_jid}"
    )
    sender, receivers = batch.sessions[0], batch.sessions[1:]
    total = round((warmup + duration) * rate)
    await asyncio.sleep(2.0)  # presence to the directory contacts and roster pushes settle
    first_measured = round(warmup * rate)  # message i is due at t0 + i / rate
    recv = FanoutReceiver(len(receivers), total, first_measured)
    for s in receivers:
        s.on_message = recv.callback()
    bounced = SenderTap()
    sender.on_message = bounced
    before = await tracked_counts(api) if api is not None else None
    t0 = time.perf_counter() + 0.05
    measure_from = t0 + warmup
    with quiet_gc():
        monitor = LoopMonitor(ctx.server_pid).start()
        task = asyncio.get_running_loop().create_task(
            _post_to_group(sender, group_jid, rate=rate, t0=t0, total=total)
        )
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        meter = CpuMeter(ctx.server_pid).start()
        prof = await _maybe_profile(ctx, duration)
        worst = await task
        cpu = meter.stop()
        expected = total * len(receivers)
        deadline = time.perf_counter() + drain
        while (
            recv.received + recv.errors < expected
            and bounced.errors < total
            and time.perf_counter() < deadline
        ):
            await asyncio.sleep(0.02)
        samples = await monitor.stop()
    profile = await _finish_profile(ctx, prof)
    lost = expected - recv.received
    metrics: dict[str, Any] = {
        "login": _login_report(batch),
        "group": group_jid,
        "members_online": len(batch.sessions),
        "members": members,
        "messages_sent": total,
        "messages_in_window": total - first_measured,
        "deliveries_expected": expected,
        "deliveries": recv.received,
        "lost": lost,
        "error_bounces": recv.errors,
        "sender_error_bounces": bounced.errors,
        "sender_error_samples": bounced.samples,
        "duplicates": recv.duplicates,
        "incomplete_messages": sum(1 for c in recv.counts if c < len(receivers)),
        "measured_window_s": duration,
        "deliveries_per_s": round(recv.measured / duration, 1),
        "latency_ms": summary_ms(recv.latencies),
        "sender_lag_max_ms": round(worst * 1000, 1),
        "sessions_alive_at_end": sum(1 for s in batch.sessions if s.alive),
    }
    metrics.update(cpu)
    metrics["monitor"] = samples
    no_loss = lost == 0 and recv.errors == 0 and bounced.errors == 0
    targets = {
        "deliveries_per_s": _at_least(metrics["deliveries_per_s"], rate * len(receivers) * 0.99),
        "p99_ms": _below(metrics["latency_ms"]["p99"], TARGET_GROUP_P99_MS),
        "lost": {"target": "0", "value": lost, "pass": no_loss},
    }
    if api is not None and before is not None:
        ctx.say(f"group: waiting (up to {settle:g} s) for message tracking to catch up")
        tracking = await tracking_catch_up(
            api, before, total, run_s=warmup + duration, settle=settle
        )
        metrics["tracking"] = tracking
        if tracking["tracked"]:
            targets["tracking_caught_up"] = {
                "target": f"within {settle:g} s",
                "value": tracking["complete_after_s"],
                "pass": tracking["complete"],
            }
    await close_all(batch.sessions, settle=1.0)
    return {
        "params": {
            "members": members,
            "group": group_jid,
            "rate": rate,
            "duration": duration,
            "warmup": warmup,
            "drain": drain,
        },
        "metrics": metrics,
        "profile": profile,
        "targets": targets,
    }
