"""Small measurement helpers: percentiles, /proc readings, CPU accounting."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import resource
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of an already sorted sequence (``None`` when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def summary_ms(values_s: Sequence[float]) -> dict[str, float | int | None]:
    """count, mean, p50/p90/p95/p99/p99.9, max of durations given in seconds, reported in ms."""
    ordered = sorted(values_s)
    out: dict[str, float | int | None] = {"count": len(ordered)}
    out["mean"] = round(sum(ordered) / len(ordered) * 1000, 3) if ordered else None
    for name, p in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99), ("p99.9", 99.9)):
        v = percentile(ordered, p)
        out[name] = None if v is None else round(v * 1000, 3)
    out["max"] = round(ordered[-1] * 1000, 3) if ordered else None
    return out


def rss_kib(pid: int) -> int | None:
    """VmRSS of ``pid`` in KiB from /proc/PID/status (``None`` if unreadable)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_cpu_split(pid: int) -> tuple[float, float] | None:
    """(user, system) CPU seconds of ``pid``, all threads (``None`` if unreadable)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After "pid (comm)": field 3 is index 0, so utime (14) is 11 and stime (15) is 12.
    return int(fields[11]) / _CLK_TCK, int(fields[12]) / _CLK_TCK


def proc_cpu_seconds(pid: int) -> float | None:
    """utime + stime of ``pid`` (all threads) in seconds (``None`` if unreadable)."""
    split = proc_cpu_split(pid)
    return None if split is None else split[0] + split[1]


def system_busy_seconds() -> float | None:
    """Non-idle CPU seconds of the whole machine (all cores) from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            parts = f.readline().split()
    except OSError:
        return None
    ticks = [int(x) for x in parts[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    guest = sum(ticks[8:10]) if len(ticks) > 9 else 0  # already counted in user/nice
    return (sum(ticks) - idle - guest) / _CLK_TCK


def self_cpu_seconds() -> float:
    """CPU time (user + system) of this process."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@dataclass(slots=True)
class CpuMeter:
    """CPU use of the server process and of the generator over a window, in % of one core."""

    server_pid: int | None
    t0: float = 0.0
    server0: float | None = None
    client0: float = 0.0
    system0: float | None = None
    split0: tuple[float, float] | None = None

    def start(self) -> CpuMeter:
        """Begin the window."""
        self.t0 = time.perf_counter()
        self.split0 = proc_cpu_split(self.server_pid) if self.server_pid else None
        self.server0 = sum(self.split0) if self.split0 else None
        self.client0 = self_cpu_seconds()
        self.system0 = system_busy_seconds()
        return self

    def stop(self) -> dict[str, float | None]:
        """End the window.

        ``server_cpu_pct`` and ``client_cpu_pct`` (generator) are in % of one
        core; ``other_cpu_pct`` is what every other process on the machine
        used meanwhile (noise: more than a few % makes the run suspect).
        """
        wall = max(time.perf_counter() - self.t0, 1e-9)
        server_s = server_sys = None
        if self.server_pid and self.split0 is not None:
            split = proc_cpu_split(self.server_pid)
            if split is not None:
                server_s = sum(split) - sum(self.split0)
                server_sys = split[1] - self.split0[1]
        client_s = self_cpu_seconds() - self.client0
        other = None
        system = system_busy_seconds()
        if system is not None and self.system0 is not None:
            rest = system - self.system0 - client_s - (server_s or 0.0)
            other = round(max(0.0, rest) / wall * 100, 1)
        return {
            "server_cpu_pct": None if server_s is None else round(server_s / wall * 100, 1),
            "server_sys_cpu_pct": None if server_sys is None else round(server_sys / wall * 100, 1),
            "client_cpu_pct": round(client_s / wall * 100, 1),
            "other_cpu_pct": other,
            "window_s": round(wall, 3),
        }


class LoopMonitor:
    """Once a second: the server's CPU % and the generator's worst event-loop stall.

    A ticker sleeps ``tick`` seconds over and over; any oversleep is time the
    generator's loop was busy elsewhere (or descheduled). A stalled generator
    inflates latencies, so the timeline shows which side a spike came from.
    """

    def __init__(self, server_pid: int | None, tick: float = 0.005) -> None:
        self.server_pid = server_pid
        self.tick = tick
        self.samples: list[dict[str, float | None]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> LoopMonitor:
        """Start sampling in the background."""
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def stop(self) -> list[dict[str, float | None]]:
        """Stop and return one sample per elapsed second."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.samples

    async def _run(self) -> None:
        t0 = time.perf_counter()
        sec_start = t0
        pid = self.server_pid
        srv0 = proc_cpu_seconds(pid) if pid else None
        sys0, own0 = system_busy_seconds(), self_cpu_seconds()
        worst = 0.0
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.tick)
            now = time.perf_counter()
            worst = max(worst, now - before - self.tick)
            if now - sec_start < 1.0:
                continue
            span = now - sec_start
            srv1 = proc_cpu_seconds(pid) if pid else None
            sys1, own1 = system_busy_seconds(), self_cpu_seconds()
            srv = (srv1 - srv0) if srv1 is not None and srv0 is not None else None
            other = None
            if sys1 is not None and sys0 is not None:
                other = round(max(0.0, sys1 - sys0 - (own1 - own0) - (srv or 0.0)) / span * 100, 1)
            self.samples.append(
                {
                    "t": round(now - t0, 2),
                    "server_cpu_pct": None if srv is None else round(srv / span * 100, 1),
                    "client_cpu_pct": round((own1 - own0) / span * 100, 1),
                    "other_cpu_pct": other,
                    "loop_lag_max_ms": round(worst * 1000, 2),
                }
            )
            sec_start, srv0, sys0, own0, worst = now, srv1, sys1, own1, 0.0


@contextlib.contextmanager
def quiet_gc() -> Iterator[None]:
    """No cyclic GC pauses in the generator during a measured window (bounded windows only)."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()
