"""What every connection of a running server shares."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import ssl
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from carewire.core.auth import Authenticator
from carewire.core.kernel import Kernel
from carewire.xmpp.parser import ParserLimits

log = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``, or None elsewhere (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


_TRIM = _malloc_trim()


def give_back_memory() -> None:
    """Return the C heap's free pages to the system (after parsers were compacted).

    Freed parser buffers sit between live allocations; glibc keeps such pages
    until asked. Cheap (well under a millisecond here) and at most once a sweep.
    """
    if _TRIM is not None:
        _TRIM()


@dataclass(frozen=True, slots=True, kw_only=True)
class NetLimits:
    """Per-connection bounds."""

    max_send_buffer: int = 1024 * 1024  # a client that stops reading is cut off past this
    max_pending_events: int = 256  # stop reading while this many stanzas wait
    auth_timeout: float = 60.0  # seconds to authenticate and bind
    read_rate: int = 262_144  # bytes/s a client may send on average (0: unlimited) …
    read_burst: int = 1_048_576  # … after a burst of this many bytes
    tcp_keepalive_idle: int = 60  # half-open TCP detection (seconds)
    tcp_keepalive_interval: int = 10
    tcp_keepalive_count: int = 3
    max_unauthenticated_per_address: int = 32  # streams not yet bound, per address (0: no cap)
    #: A connection that read nothing for a whole sweep period of this many seconds drops its
    #: parser's buffers (so after 1–2 periods of silence). Short, so that an idle session never
    #: holds a parser long: what a parser frees is reused by the next one rather than returned
    #: to the system, so the fewer live at once, the smaller the process (bench idle).
    idle_compact_after: float = 1.0
    #: Return freed heap pages to the system once this many parsers were compacted since the
    #: last time (or at the first pass after ``trim_every`` seconds that compacted any).
    trim_after_compactions: int = 256
    trim_every: float = 30.0


@dataclass(slots=True, kw_only=True)
class NetContext:
    """Shared by the listeners and connections of one server."""

    kernel: Kernel
    auth: Authenticator
    ssl_context: ssl.SSLContext
    channel_binding: bytes | None
    fake_secret: bytes
    allow_register: bool = False
    parser_limits: ParserLimits = field(default_factory=ParserLimits)
    limits: NetLimits = field(default_factory=NetLimits)
    connections: set[Any] = field(default_factory=set)
    websockets: int = 0  # XMPP-over-WebSocket connections open now (read by /metrics)
    #: Streams not yet bound, per remote address (see :meth:`admit`).
    unauthenticated: dict[str, int] = field(default_factory=dict)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _loop: asyncio.AbstractEventLoop | None = None
    _sweeper: asyncio.TimerHandle | None = None
    _reads_seen: dict[int, int] = field(default_factory=dict)
    _untrimmed: int = 0  # parsers compacted since the heap was last trimmed
    _trimmed_at: float = field(default_factory=time.monotonic)

    def start_idle_sweep(self) -> None:
        """Make sure the idle sweep is scheduled (each new connection calls it; cheap)."""
        if self._sweeper is None and self.limits.idle_compact_after > 0:
            loop = self._loop = self._loop or asyncio.get_running_loop()
            self._sweeper = loop.call_later(self.limits.idle_compact_after, self._sweep_idle)

    def _sweep_idle(self) -> None:
        """Compact the connections that read nothing for a whole period.

        A connection counts its reads; one whose count did not move since the
        previous pass is idle, and its parser drops expat's buffers until the
        next byte (:meth:`StreamParser.compact`): about a quarter of an idle
        session's memory. A timer, not a task: it runs again only while there
        are connections, so it never holds up a shutdown.
        """
        self._sweeper = None
        seen: dict[int, int] = {}
        freed = 0
        for conn in list(self.connections):
            reads = getattr(conn, "reads", None)  # client connections only
            if reads is None:
                continue
            key = id(conn)
            if self._reads_seen.get(key) == reads and conn.compact():
                freed += 1
            seen[key] = reads
        self._reads_seen = seen
        self._untrimmed += freed
        if self._untrimmed:
            # malloc_trim walks the whole heap: at most every trim_every seconds, unless
            # many parsers were freed since (a login storm going quiet).
            now = time.monotonic()
            if (
                self._untrimmed >= self.limits.trim_after_compactions
                or now - self._trimmed_at >= self.limits.trim_every
            ):
                give_back_memory()
                self._untrimmed = 0
                self._trimmed_at = now
        if self.connections:
            self.start_idle_sweep()

    def admit(self, remote_ip: str) -> bool:
        """Count a new connection from ``remote_ip`` until it binds; False: over the cap.

        A source that opens connections and never signs in would otherwise
        hold sockets and parser state until each one's ``auth_timeout``.
        """
        cap = self.limits.max_unauthenticated_per_address
        held = self.unauthenticated.get(remote_ip, 0)
        if cap and held >= cap:
            return False
        self.unauthenticated[remote_ip] = held + 1
        return True

    def release(self, remote_ip: str) -> None:
        """A counted connection bound a session or closed."""
        held = self.unauthenticated.get(remote_ip, 0) - 1
        if held > 0:
            self.unauthenticated[remote_ip] = held
        else:
            self.unauthenticated.pop(remote_ip, None)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start a task this context owns (cancelled at shutdown)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        task = self._loop.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())
