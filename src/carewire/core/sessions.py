"""Bound client sessions and their index by account (RFC 6120 §7, RFC 6121 §4).

A :class:`Session` is one bound resource. The :class:`SessionManager` indexes
sessions by account and resource, enforces RFC 6120 §7.7.2.2 (a new session
with the same resource replaces the old one) and answers the routing question
"which resources of this account are available, and with what priority".
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from xml.etree.ElementTree import Element

from carewire.xmpp.errors import StreamCondition
from carewire.xmpp.jid import JID

log = logging.getLogger(__name__)

_ids = itertools.count(1)


class StanzaSink(Protocol):
    """Where a session's outbound stanzas go (a connection of :mod:`carewire.net`)."""

    def send_element(self, element: Element) -> None:
        """Queue one stanza for writing."""

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        """Close the stream, with a stream error when ``condition`` is given."""


@dataclass(eq=False, slots=True, kw_only=True)
class Session:
    """One bound resource of a local account."""

    jid: JID
    sink: StanzaSink
    remote_ip: str = ""
    transport: str = "c2s"
    id: int = field(default_factory=lambda: next(_ids))
    priority: int = 0
    # The last available presence the client broadcast (None: not available).
    presence: Element | None = None
    is_interested: bool = False  # requested the roster (RFC 6121 §2.1.1)
    is_closed: bool = False
    # Feature-owned per-session state, keyed by feature name.
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def username(self) -> str:
        """The account's login (the JID localpart)."""
        assert self.jid.localpart is not None
        return self.jid.localpart

    @property
    def resource(self) -> str:
        """The bound resource."""
        assert self.jid.resource is not None
        return self.jid.resource

    @property
    def is_available(self) -> bool:
        """Whether the session sent available presence (it receives broadcasts)."""
        return self.presence is not None

    def send(self, element: Element) -> None:
        """Write a stanza to this session (dropped once the session closed)."""
        if not self.is_closed:
            self.sink.send_element(element)


class SessionManager:
    """All bound sessions of this node, by account and resource."""

    def __init__(self) -> None:
        self._by_user: dict[str, dict[str, Session]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Session]:
        for resources in list(self._by_user.values()):
            yield from list(resources.values())

    @staticmethod
    def generate_resource() -> str:
        """A server-generated resource (RFC 6120 §7.6.2.1)."""
        return "cw-" + secrets.token_hex(6)

    def add(self, session: Session) -> Session | None:
        """Index ``session``; returns the session it replaces, if any.

        RFC 6120 §7.7.2.2: "terminate the session of the previously connected
        client" — the caller closes the returned session with ``conflict``.
        """
        resources = self._by_user.setdefault(session.username, {})
        old = resources.get(session.resource)
        resources[session.resource] = session
        if old is None:
            self._count += 1
        return old

    def remove(self, session: Session) -> bool:
        """Drop ``session`` from the index (if it is still the indexed one)."""
        resources = self._by_user.get(session.username)
        if not resources or resources.get(session.resource) is not session:
            return False
        del resources[session.resource]
        self._count -= 1
        if not resources:
            del self._by_user[session.username]
        return True

    def get(self, jid: JID) -> Session | None:
        """The session bound to this full JID."""
        if jid.localpart is None or jid.resource is None:
            return None
        resources = self._by_user.get(jid.localpart)
        return resources.get(jid.resource) if resources else None

    def of_user(self, login: str) -> list[Session]:
        """Every bound session of an account."""
        resources = self._by_user.get(login)
        return list(resources.values()) if resources else []

    def available_of_user(self, login: str) -> list[Session]:
        """Sessions of an account that sent available presence."""
        resources = self._by_user.get(login)
        if not resources:
            return []
        return [s for s in resources.values() if s.presence is not None]

    def is_online(self, login: str) -> bool:
        """Whether the account has any bound session."""
        return login in self._by_user

    def top_priority(self, login: str) -> list[Session]:
        """Available sessions with the highest non-negative priority (RFC 6121 §8.5.2.1.1)."""
        best: list[Session] = []
        top = -1
        for s in self.available_of_user(login):
            if s.priority > top:
                best, top = [s], s.priority
            elif s.priority == top and top >= 0:
                best.append(s)
        return best if top >= 0 else []

    def non_negative(self, login: str) -> list[Session]:
        """Available sessions with priority ≥ 0."""
        return [s for s in self.available_of_user(login) if s.priority >= 0]
