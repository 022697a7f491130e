"""slixmpp clients for the interop tests: log in, collect what arrives, disconnect (all bounded)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import slixmpp

from tests.interop.rawclient import HOST, client_tls_context

TIMEOUT = 10.0
PLUGINS = ("xep_0030", "xep_0199", "xep_0203")


class Reachable(Protocol):
    """A server to log in to: a subprocess (``RunningServer``) or one in the test's process."""

    @property
    def domain(self) -> str: ...

    @property
    def ports(self) -> dict[str, int]: ...


class SlixClient:
    """A connected, session-started slixmpp client and queues of what it received."""

    def __init__(self, xmpp: slixmpp.ClientXMPP) -> None:
        self.xmpp = xmpp
        self.messages: asyncio.Queue[Any] = asyncio.Queue()
        self.errors: asyncio.Queue[Any] = asyncio.Queue()
        self.presences: asyncio.Queue[Any] = asyncio.Queue()
        self.subscribes: asyncio.Queue[Any] = asyncio.Queue()
        self.subscribeds: asyncio.Queue[Any] = asyncio.Queue()
        self.roster_pushes: asyncio.Queue[Any] = asyncio.Queue()
        self.disconnects: list[Any] = []
        xmpp.add_event_handler("message", self.messages.put_nowait)
        xmpp.add_event_handler("message_error", self.errors.put_nowait)
        xmpp.add_event_handler("presence_available", self.presences.put_nowait)
        xmpp.add_event_handler("presence_subscribe", self.subscribes.put_nowait)
        xmpp.add_event_handler("presence_subscribed", self.subscribeds.put_nowait)
        xmpp.add_event_handler("roster_update", self._on_roster)
        xmpp.add_event_handler("disconnected", self.disconnects.append)

    def _on_roster(self, iq: Any) -> None:
        if iq["type"] == "set":  # a push, not the answer to our own roster get
            self.roster_pushes.put_nowait(iq)

    @property
    def jid(self) -> slixmpp.JID:
        """The bound full JID."""
        return self.xmpp.boundjid

    @property
    def plugin(self) -> Any:
        """slixmpp's plugin registry."""
        return self.xmpp.plugin

    async def next(self, queue: asyncio.Queue[Any], timeout: float = TIMEOUT) -> Any:
        """The next item of one of the queues (bounded wait)."""
        return await asyncio.wait_for(queue.get(), timeout)

    async def next_matching(
        self, queue: asyncio.Queue[Any], match: Callable[[Any], bool], timeout: float = TIMEOUT
    ) -> Any:
        """The first item of ``queue`` that ``match`` accepts (others are dropped)."""

        async def loop() -> Any:
            while True:
                item = await queue.get()
                if match(item):
                    return item

        return await asyncio.wait_for(loop(), timeout)

    async def disconnect(self) -> None:
        """Close the stream and wait for the connection to end (then abort if needed)."""
        if self.xmpp.transport is None:
            return
        try:
            await asyncio.wait_for(self.xmpp.disconnect(wait=5), TIMEOUT)
        finally:
            if self.xmpp.transport is not None:
                self.xmpp.abort()
            # Let slixmpp's own tasks see the end before the event loop is closed.
            await asyncio.sleep(0)


async def connect(
    server: Reachable,
    login: str,
    password: str,
    *,
    mechanism: str | None = "SCRAM-SHA-256",
    resource: str = "",
    direct_tls: bool = False,
    configure: Callable[[slixmpp.ClientXMPP], None] | None = None,
) -> SlixClient:
    """Log a slixmpp client in (STARTTLS or direct-TLS port) and wait for session_start."""
    jid = f"{login}@{server.domain}" + (f"/{resource}" if resource else "")
    xmpp = slixmpp.ClientXMPP(jid, password, sasl_mech=mechanism)
    xmpp.ssl_context = client_tls_context()
    xmpp.enable_direct_tls = direct_tls
    xmpp.enable_starttls = not direct_tls
    xmpp.auto_authorize = None  # the tests answer subscription requests themselves
    xmpp.auto_subscribe = False
    for name in PLUGINS:
        xmpp.register_plugin(name)
    if configure is not None:
        configure(xmpp)
    client = SlixClient(xmpp)
    started: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def fail(reason: str) -> Callable[[Any], None]:
        def handler(event: Any) -> None:
            if not started.done():
                started.set_exception(AssertionError(f"{login}: {reason}: {event}"))

        return handler

    xmpp.add_event_handler(
        "session_start", lambda _e: None if started.done() else started.set_result(None)
    )
    xmpp.add_event_handler("failed_all_auth", fail("authentication failed"))
    xmpp.add_event_handler("connection_failed", fail("connection failed"))
    port = server.ports["c2s_tls" if direct_tls else "c2s"]
    xmpp.connect(HOST, port)
    try:
        await asyncio.wait_for(started, TIMEOUT)
    except BaseException:
        xmpp.cancel_connection_attempt()
        await client.disconnect()
        raise
    return client


@asynccontextmanager
async def clients() -> AsyncIterator[Callable[..., Awaitable[SlixClient]]]:
    """A factory of logged-in clients that disconnects all of them on exit."""
    made: list[SlixClient] = []

    async def make(*args: Any, **kwargs: Any) -> SlixClient:
        client = await connect(*args, **kwargs)
        made.append(client)
        return client

    try:
        yield make
    finally:
        await asyncio.gather(*(c.disconnect() for c in made), return_exceptions=True)
