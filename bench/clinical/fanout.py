"""``fanout``: one room on chat.DOMAIN (XEP-0045), one sender, every other occupant receives."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from bench.client import Session
from bench.clinical.common import (
    MIN_SLEEP,
    Api,
    SetupError,
    _at_least,
    _below,
    _failed,
    tracked_counts,
    tracking_catch_up,
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

TARGET_FANOUT_P99_MS = 250.0
MAX_JOINS_IN_FLIGHT = 20
NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner"


class MucTap:
    """Sees a session's presences and IQ answers before the generic session handler does."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.inner = session.proto.stanza_handler
        self.joined: asyncio.Future[bytes] | None = None
        self.answers: dict[bytes, asyncio.Future[bytes]] = {}
        self.seq = 0
        session.proto.stanza_handler = self.handle

    def handle(self, name: bytes, data: bytes) -> None:
        """Resolve a pending join (self-presence, status 110, or an error) or IQ, then pass on."""
        if name == b"presence" and self.joined is not None and not self.joined.done():
            head = data[: data.find(b">")]
            if b"code='110'" in data or b'code="110"' in data or b"type='error'" in head:
                self.joined.set_result(data)
        elif name == b"iq":
            m = re.search(rb"""\sid=(['"])(cwb\d+)\1""", data[: data.find(b">")])
            fut = self.answers.pop(m.group(2), None) if m else None
            if fut is not None and not fut.done():
                fut.set_result(data)
                return
        assert self.inner is not None
        self.inner(name, data)

    async def join(self, room: str, nick: str) -> bytes:
        """XEP-0045 §7.2: enter ``room`` as ``nick`` (no history); the self-presence."""
        self.joined = asyncio.get_running_loop().create_future()
        self.session.send(
            f"<presence to='{room}/{nick}'><x xmlns='{NS_MUC}'>"
            f"<history maxstanzas='0'/></x></presence>".encode()
        )
        answer = await self.joined
        if b"type='error'" in answer[: answer.find(b">")]:
            raise SetupError(f"join {room} refused: {answer[:300]!r}")
        return answer

    async def iq(self, to: str, payload: str, type_: str = "set") -> bytes:
        """An IQ to ``to``; its result (raises on an error answer)."""
        self.seq += 1
        iq_id = f"cwb{self.seq}".encode()
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.answers[iq_id] = fut
        self.session.send(
            f"<iq type='{type_}' id='{iq_id.decode()}' to='{to}'>{payload}</iq>".encode()
        )
        answer = await fut
        if b"type='result'" not in answer and b'type="result"' not in answer:
            raise SetupError(f"IQ to {to} failed: {answer[:300]!r}")
        return answer


async def _join_all(
    sessions: Sequence[Session], room: str, timeout: float
) -> tuple[list[Session], list[float], Counter[str], bool]:
    """The first session creates ``room`` (instant room), the others join, some at a time."""
    first = MucTap(sessions[0])
    async with asyncio.timeout(timeout):
        own = await first.join(room, "n0")
        created = b"code='201'" in own or b'code="201"' in own
        if created:  # §10.1.2: accept the default configuration (an instant room)
            await first.iq(
                room,
                f"<query xmlns='{NS_MUC_OWNER}'><x xmlns='jabber:x:data' type='submit'/></query>",
            )
    joined, times, failures = [sessions[0]], [], Counter[str]()
    gate = asyncio.Semaphore(MAX_JOINS_IN_FLIGHT)

    async def join(i: int, s: Session) -> None:
        async with gate:
            start = time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    await MucTap(s).join(room, f"n{i}")
            except (TimeoutError, SetupError) as exc:
                failures[type(exc).__name__ + (f": {str(exc)[:120]}" if str(exc) else "")] += 1
                return
            times.append(time.perf_counter() - start)
            joined.append(s)

    await asyncio.gather(*(join(i, s) for i, s in enumerate(sessions[1:], 1)))
    return joined, times, failures, created


class FanoutReceiver:
    """Latency of each groupchat delivery to every occupant but the sender."""

    def __init__(self, receivers: int, total: int, first_measured: int) -> None:
        self.counts = array("H", bytes(2 * total))  # deliveries per message
        self.total = total
        self.receivers = receivers
        self.latencies = array("d")
        self.measured = 0
        self.duplicates = 0
        self.errors = 0
        self.other = 0
        self.first_measured = first_measured  # messages before it are the warm-up
        self.first = self.last = 0.0

    def callback(self) -> Callable[[bytes], None]:
        """One handler per receiving session (it keeps that session's seen set)."""
        seen: set[int] = set()
        clock = time.perf_counter_ns

        def on_message(data: bytes) -> None:
            now_ns = clock()
            head = data[: data.find(b">")]
            if b"type='error'" in head or b'type="error"' in head:
                self.errors += 1
                return
            i, j = data.find(b"<body>"), data.find(b"</body>")
            try:
                seq_s, sent_s = data[i + 6 : j].split(b" ") if 0 <= i < j else (b"", b"")
                seq, sent_ns = int(seq_s), int(sent_s)
            except ValueError:
                self.other += 1  # the subject, history, anything not ours
                return
            if seq in seen or not 0 <= seq < self.total:
                self.duplicates += 1
                return
            seen.add(seq)
            self.counts[seq] += 1
            now = now_ns / 1e9
            self.first = self.first or now
            self.last = now
            if seq >= self.first_measured:
                self.latencies.append((now_ns - sent_ns) / 1e9)
                self.measured += 1

        return on_message

    @property
    def received(self) -> int:
        """Deliveries counted so far (each message once per receiving occupant)."""
        return sum(self.counts)


async def _post_groupchat(
    sender: Session, room: str, *, rate: float, t0: float, total: int
) -> float:
    """Open loop: message ``i`` at ``t0 + i / rate``; returns the worst send lag (s)."""
    worst = 0.0
    prefix = f"<message to='{room}' type='groupchat' id='g".encode()
    for i in range(total):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(max(delay, MIN_SLEEP))
        now = time.perf_counter()
        worst = max(worst, now - (t0 + i / rate))
        ts = time.perf_counter_ns()
        sender.send(b"%s%d'><body>%d %d</body></message>" % (prefix, i, i, ts))
    return worst


async def scenario_fanout(
    ctx: BenchContext,
    *,
    occupants: int,
    rate: float,
    duration: float,
    warmup: float,
    drain: float,
    api: Api | None = None,
    settle: float = 30.0,
) -> dict[str, Any]:
    """``occupants`` join one room; one posts ``rate`` messages/s, all others receive them.

    With ``api``, also how far message tracking (MESSAGES and MESSAGE_DELIVERIES
    rows) lagged behind the room: see :func:`tracking_catch_up`.
    """
    users = list(ctx.accounts[:occupants])
    room = f"bench-fanout-{secrets.token_hex(3)}@chat.{ctx.client.domain}"
    batch = await login_many(ctx, users, presence=True, sync=True)
    if len(batch.sessions) < 2:
        await close_all(batch.sessions)
        return _failed("fewer than two clients logged in", _login_report(batch))
    ctx.say(
        f"fanout: {len(batch.sessions)}/{len(users)} clients in {batch.wall:.1f} s; joining {room}"
    )
    t = time.perf_counter()
    joined, join_times, join_failures, created = await _join_all(
        batch.sessions, room, ctx.login_timeout
    )
    join_wall = time.perf_counter() - t
    ctx.say(f"fanout: {len(joined)} occupants in {join_wall:.1f} s (created: {created})")
    sender, receivers = joined[0], joined[1:]
    total = round((warmup + duration) * rate)
    await asyncio.sleep(1.0)  # join presences settle
    t0 = time.perf_counter() + 0.05
    measure_from = t0 + warmup
    first_measured = round(warmup * rate)  # message i is due at t0 + i / rate
    recv = FanoutReceiver(len(receivers), total, first_measured)
    for s in receivers:
        s.on_message = recv.callback()
    sender.on_message = None
    before = await tracked_counts(api) if api is not None else None
    with quiet_gc():
        monitor = LoopMonitor(ctx.server_pid).start()
        task = asyncio.get_running_loop().create_task(
            _post_groupchat(sender, room, rate=rate, t0=t0, total=total)
        )
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        meter = CpuMeter(ctx.server_pid).start()
        prof = await _maybe_profile(ctx, duration)
        worst = await task
        cpu = meter.stop()
        expected = total * len(receivers)
        deadline = time.perf_counter() + drain
        while recv.received + recv.errors < expected and time.perf_counter() < deadline:
            await asyncio.sleep(0.02)
        samples = await monitor.stop()
    profile = await _finish_profile(ctx, prof)
    received = recv.received
    lost = expected - received
    metrics: dict[str, Any] = {
        "login": _login_report(batch),
        "room": room,
        "occupants": len(joined),
        "join_failures": dict(join_failures),
        "join_wall_s": round(join_wall, 2),
        "join_ms": summary_ms(join_times),
        "messages_sent": total,
        "messages_in_window": total - first_measured,
        "deliveries_expected": expected,
        "deliveries": received,
        "lost": lost,
        "error_bounces": recv.errors,
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
    targets = {
        "deliveries_per_s": _at_least(metrics["deliveries_per_s"], rate * len(receivers) * 0.99),
        "p99_ms": _below(metrics["latency_ms"]["p99"], TARGET_FANOUT_P99_MS),
        "lost": {"target": "0", "value": lost, "pass": lost == 0 and recv.errors == 0},
    }
    if api is not None and before is not None:
        ctx.say(f"fanout: waiting (up to {settle:g} s) for message tracking to catch up")
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
            "occupants": occupants,
            "rate": rate,
            "duration": duration,
            "warmup": warmup,
            "drain": drain,
        },
        "metrics": metrics,
        "profile": profile,
        "targets": targets,
    }
