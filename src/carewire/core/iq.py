"""IQ handlers by address, type and payload (RFC 6120 §8.2.3): the registry the router asks.

Features register here through their context (``ctx.iq.register``); the
router (:mod:`carewire.core.router`) looks the handler up for each IQ.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from xml.etree.ElementTree import Element

from carewire.core.events import IqRequest

IqHandler = Callable[[IqRequest], Awaitable[Element | None]]
# Pre-authentication IQ handler (XEP-0077 registration): (stanza, remote_ip) → payload.
PreAuthIqHandler = Callable[[Element, str], Awaitable[Element | None]]


class IqTarget(StrEnum):
    """Which address an IQ handler answers for."""

    HOST = "host"  # to the server itself (to=DOMAIN)
    ACCOUNT = "account"  # to the sender's own account (no 'to', or to=own bare JID)
    BARE = "bare"  # to another account's bare JID, answered by the server on its behalf
    ROOM = "room"  # to a room's bare JID on chat.DOMAIN (dispatched by the room service)


class IqRegistry:
    """IQ handlers by (target, type, payload tag)."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[IqTarget, str, str], IqHandler] = {}
        self._preauth: dict[str, PreAuthIqHandler] = {}

    def register(
        self, tag: str, handler: IqHandler, *, types: tuple[str, ...], targets: tuple[IqTarget, ...]
    ) -> None:
        """Answer IQs of ``types`` whose payload is ``tag`` (Clark notation) at ``targets``."""
        for t in types:
            for target in targets:
                key = (target, t, tag)
                if key in self._handlers:
                    raise ValueError(f"two IQ handlers for {key}")
                self._handlers[key] = handler

    def lookup(self, target: IqTarget, iq_type: str, tag: str) -> IqHandler | None:
        """The handler for an IQ, or None."""
        return self._handlers.get((target, iq_type, tag))

    def register_preauth(self, tag: str, handler: PreAuthIqHandler) -> None:
        """Answer IQs on a not-yet-authenticated stream (only XEP-0077 needs this)."""
        self._preauth[tag] = handler

    def lookup_preauth(self, tag: str) -> PreAuthIqHandler | None:
        """The pre-auth handler for ``tag``, or None."""
        return self._preauth.get(tag)
