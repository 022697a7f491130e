"""py-spy sampling of the server during a measurement window, and a text summary of it.

The profile is recorded in py-spy's ``raw`` format (collapsed stacks, one
``frame;frame;… count`` line per distinct stack, usable by flamegraph.pl and
speedscope). :func:`summarize` turns it into the hottest functions by self
time (the leaf frame) and by inclusive time (anywhere on the stack), over the
samples in which the server was busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
from collections import Counter
from pathlib import Path

#: ``native``: py-spy pauses the server at each sample and unwinds native frames
#: too, so time inside uvloop/libuv, OpenSSL, expat and system calls is attributed
#: (the server's event loop is Cython: without native frames all of that shows up
#: as self time of ``Runner.run``, indistinguishable from waiting in epoll).
#: ``python``: ``--nonblocking``, Python frames only; lighter on the server.
PROFILE_MODES = {
    "native": ["--native", "--idle", "--threads"],
    "python": ["--nonblocking"],
}

# Frames near the leaf saying the thread waits (epoll, a lock, a queue, the GIL)
# rather than works; libc's own frames below them are often unnamed addresses.
_IDLE_FRAMES = (
    "epoll_wait", "epoll_pwait", "poll (", "select (", "pthread_cond_", "sem_wait",
    "sem_clockwait", "sem_timedwait", "PyThread_acquire_lock_timed", "take_gil",
)  # fmt: skip


def py_spy_path() -> str | None:
    """The py-spy executable next to this interpreter, or on PATH."""
    local = Path(sys.executable).parent / "py-spy"
    if local.exists():
        return str(local)
    return shutil.which("py-spy")


class Profiler:
    """One ``py-spy record`` run against the server process."""

    def __init__(
        self, pid: int, output: Path, duration: float, rate: int = 100, mode: str = "native"
    ) -> None:
        self.pid = pid
        self.output = output
        self.duration = max(1, int(duration))
        self.rate = rate
        self.mode = mode
        self.proc: asyncio.subprocess.Process | None = None
        self.error: str | None = None

    def command(self, exe: str) -> list[str]:
        """The py-spy command line."""
        return [
            exe, "record", "--pid", str(self.pid), "--duration", str(self.duration),
            "--rate", str(self.rate), "--format", "raw", "--nolineno",
            *PROFILE_MODES[self.mode], "--output", str(self.output),
        ]  # fmt: skip

    async def start(self) -> None:
        """Start sampling (returns at once)."""
        exe = py_spy_path()
        if exe is None:
            self.error = "py-spy not found"
            return
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.proc = await asyncio.create_subprocess_exec(
            *self.command(exe), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )

    async def wait(self, timeout: float = 30.0) -> None:
        """Wait for py-spy to finish writing its output."""
        if self.proc is None:
            return
        try:
            _, err = await asyncio.wait_for(self.proc.communicate(), self.duration + timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.error = "py-spy did not finish in time"
            return
        if self.proc.returncode != 0:
            tail = err.decode(errors="replace")[-500:]
            self.error = f"py-spy exited {self.proc.returncode}: {tail}"


def _short(frame: str) -> str:
    """``func (path/to/module.py)`` with the path shortened to its package part."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/src/", "lib/python3.11/"):
        i = where.find(marker)
        if i >= 0:
            where = where[i + len(marker) :]
            break
    return f"{name} ({where})" if where else name


def _is_idle(raw_frames: list[str]) -> bool:
    named = [f for f in raw_frames[-4:] if not f.startswith("0x")]
    return any(f.startswith(_IDLE_FRAMES) for f in named[-2:])


def summarize(raw_file: Path, top: int = 20) -> dict[str, object]:
    """Hottest functions of a py-spy raw profile, by self and by inclusive samples.

    Samples of waiting threads (epoll, lock and queue waits) are dropped, so the
    percentages are shares of the time the server was busy; ``threads`` says how
    those busy samples split between the event-loop thread and the others
    (aiosqlite's worker threads).
    """
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = idle = 0
    for line in raw_file.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        raw = [f for f in stack.split(";") if f and not f.startswith(("thread (", "process "))]
        if not raw:
            continue
        if _is_idle(raw):
            idle += count
            continue
        frames = [_short(f) for f in raw]
        total += count
        self_counts[frames[-1]] += count
        is_main = any(f.startswith(("cmd_serve", "Runner.run")) for f in frames)
        threads["event loop" if is_main else "other threads"] += count
        for f in set(frames):
            if ".py)" in f:  # Python frames only: native loop plumbing is on every stack
                incl_counts[f] += count

    def table(c: Counter[str], skip_everywhere: bool = False) -> list[dict[str, object]]:
        rows = [(f, n) for f, n in c.most_common() if not (skip_everywhere and n >= 0.98 * total)]
        return [
            {"function": f, "samples": n, "pct": round(100.0 * n / max(total, 1), 1)}
            for f, n in rows[:top]
        ]

    return {
        "file": str(raw_file),
        "busy_samples": total,
        "idle_samples_dropped": idle,
        "threads": dict(threads),
        "self": table(self_counts),
        "inclusive": table(incl_counts, skip_everywhere=True),
    }


def format_summary(summary: dict[str, object], top: int = 15) -> str:
    """Human-readable version of :func:`summarize`."""
    lines = [
        f"  py-spy: {summary['busy_samples']} busy samples ({summary['idle_samples_dropped']} "
        f"idle dropped) per thread {summary['threads']}; stacks in {summary['file']}"
    ]
    extra = {"self": "", "inclusive": "; Python frames on fewer than 98% of them"}
    for key, title in (("self", "self time"), ("inclusive", "inclusive time")):
        rows = summary.get(key)
        assert isinstance(rows, list)
        lines.append(f"  hottest by {title} (% of busy samples{extra[key]}):")
        for row in rows[:top]:
            lines.append(f"    {row['pct']:5.1f}%  {row['function']}")
    return "\n".join(lines)
