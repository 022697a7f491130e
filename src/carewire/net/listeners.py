"""TCP listeners for client connections: 5222 (STARTTLS) and 5223 (direct TLS, XEP-0368)."""

from __future__ import annotations

import asyncio
import logging

from carewire.net.connection import XmppConnection
from carewire.net.context import NetContext

log = logging.getLogger(__name__)


async def listen_c2s(net: NetContext, host: str, port: int, *, direct_tls: bool) -> asyncio.Server:
    """Start a client listener; ``port`` 0 picks a free port (read it from ``server.sockets``)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: XmppConnection(net, direct_tls=direct_tls),
        host=host,
        port=port,
        reuse_address=True,
        backlog=4096,
    )
    log.info(
        "listening for XMPP clients on %s:%d (%s)",
        host,
        bound_port(server),
        "direct TLS" if direct_tls else "STARTTLS required",
    )
    return server


def bound_port(server: asyncio.Server) -> int:
    """The port a listener actually bound."""
    return int(server.sockets[0].getsockname()[1])
