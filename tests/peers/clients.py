"""slixmpp clients of the federation tests: logged in to any server and *available*.

Prosody and ejabberd (RFC 6121 §8.5.2.1.1) deliver a message to a bare JID only to
resources that sent initial presence, and subscription requests only to those that
also requested the roster (§3.1.3), so a client here does both and waits until its
server reflects its presence back before the test goes on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tests.interop.slix import Reachable, SlixClient

Slix = Callable[..., Awaitable[SlixClient]]


async def online(
    slix: Slix, server: Reachable, login: str, password: str, **kwargs: Any
) -> SlixClient:
    """Log in (PLAIN over TLS unless ``mechanism`` says otherwise) and send initial presence."""
    kwargs.setdefault("mechanism", "PLAIN")
    client = await slix(server, login, password, **kwargs)
    await client.xmpp.get_roster()  # subscription requests go to resources that asked for it
    client.xmpp.send_presence()
    await client.next_matching(client.presences, lambda p: p["from"] == client.jid)
    return client
