"""XEP-0199 XMPP Ping: answer client pings, and ping idle clients to find dead connections.

Theory of operation
-------------------
Pings to the server (``to=DOMAIN``) or to the sender's own account (no
``to``) get an empty result. For idle-connection detection the network
layer keeps ``session.data["last_active"]`` (a :meth:`Clock.monotonic`
time, refreshed whenever the connection receives data). A periodic job,
:meth:`PingKeeper.run`, pings every bound session that has been silent
for ``config.ping_interval`` seconds; the pings of one run go out
concurrently, at most one per session at a time. Any reply — a result or
an error such as ``service-unavailable`` from a client without ping
support — proves the connection alive; no reply within
``config.ping_timeout`` closes the stream with ``connection-timeout``.
"""

from __future__ import annotations

import asyncio
import logging
from xml.etree.ElementTree import Element, SubElement

from carewire.core import hook_names as H
from carewire.core.events import IqRequest, SessionEvent
from carewire.core.feature import FeatureContext, IqTarget
from carewire.core.sessions import Session
from carewire.xmpp import ns, stanza
from carewire.xmpp.errors import StreamCondition

log = logging.getLogger(__name__)

PING = f"{{{ns.PING}}}ping"

# Written by the network layer on every read; shared key, not feature-prefixed.
LAST_ACTIVE = "last_active"
# The ping task in flight for a session (at most one).
PENDING = "ping.pending"

MIN_JOB_INTERVAL = 1.0


async def _pong(_req: IqRequest) -> Element | None:
    """XEP-0199 §4.2: "If the server supports the ping namespace, it MUST return an IQ-result"."""
    return None


class PingKeeper:
    """Server-to-client pings of idle sessions (XEP-0199 §4.1)."""

    def __init__(self, ctx: FeatureContext) -> None:
        self.ctx = ctx
        self.interval = ctx.config.ping_interval
        self.timeout = ctx.config.ping_timeout

    @property
    def job_interval(self) -> float:
        """How often :meth:`run` should be called."""
        return max(MIN_JOB_INTERVAL, min(self.interval, self.timeout) / 2)

    def on_bound(self, event: SessionEvent) -> None:
        """A new session starts out as just active."""
        event.session.data.setdefault(LAST_ACTIVE, self.ctx.clock.monotonic())

    def on_closed(self, event: SessionEvent) -> None:
        """Stop waiting for a reply that can no longer come."""
        task = event.session.data.pop(PENDING, None)
        if isinstance(task, asyncio.Task) and task is not asyncio.current_task():
            task.cancel()

    def idle_sessions(self) -> list[Session]:
        """Bound sessions silent for ``ping_interval`` seconds with no ping in flight."""
        now = self.ctx.clock.monotonic()
        due = []
        for session in self.ctx.sessions:
            if session.is_closed or session.is_detached or session.data.get(PENDING) is not None:
                continue
            last = session.data.get(LAST_ACTIVE)
            if last is None:
                session.data[LAST_ACTIVE] = now
                continue
            if now - last >= self.interval:
                due.append(session)
        return due

    async def run(self) -> None:
        """The periodic job: ping every idle session, concurrently, and wait for the outcomes."""
        due = self.idle_sessions()
        if not due:
            return
        log.debug("pinging %d idle sessions", len(due))
        tasks = []
        for session in due:
            task = asyncio.create_task(self._ping(session), name=f"ping-{session.id}")
            session.data[PENDING] = task
            tasks.append(task)
        # One session's failure must not cancel the pings of the others.
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _ping(self, session: Session) -> None:
        iq = Element(stanza.IQ, {"type": "get"})
        SubElement(iq, PING)
        try:
            await self.ctx.router.query(session, iq, timeout=self.timeout)
        except TimeoutError:
            if not session.is_closed:
                log.info("no ping reply from session %d within %.0fs", session.id, self.timeout)
                session.sink.close(StreamCondition.CONNECTION_TIMEOUT, "no ping reply")
            return
        except Exception:
            log.exception("pinging session %d failed", session.id)
            return
        finally:
            if session.data.get(PENDING) is asyncio.current_task():
                del session.data[PENDING]
        # XEP-0199 §4.1: a client without ping support "MUST return a
        # <service-unavailable/> error" — any reply, result or error, shows
        # the stream is alive.
        session.data[LAST_ACTIVE] = self.ctx.clock.monotonic()


def setup(ctx: FeatureContext) -> None:
    """Answer pings, advertise urn:xmpp:ping and schedule the idle-session pings."""
    # XEP-0199 §5: "If an entity supports the XMPP Ping protocol, it MUST
    # report that by including a service discovery feature of "urn:xmpp:ping"".
    ctx.disco.add_server_feature(ns.PING)
    ctx.iq.register(PING, _pong, types=("get",), targets=(IqTarget.HOST, IqTarget.ACCOUNT))
    keeper = PingKeeper(ctx)
    ctx.hooks.on(H.SESSION_BOUND, keeper.on_bound)
    ctx.hooks.on(H.SESSION_CLOSED, keeper.on_closed)
    ctx.every("ping-idle-sessions", keeper.job_interval, keeper.run)
