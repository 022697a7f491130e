"""Bound client sessions and their index by account (RFC 6120 §7, RFC 6121 §4).

A :class:`Session` is one bound resource. The :class:`SessionManager` indexes
sessions by account and resource, enforces RFC 6120 §7.7.2.2 (a new session
with the same resource replaces the old one) and answers the routing question
"which resources of this account are available, and with what priority".

A session's XEP-0198 state (:class:`StreamManagement`: counters and the queue
of unacknowledged stanzas) lives here because the delivery path keeps it
(:meth:`Session.send`) and the index knows resumption ids; every decision
about it (enabling, acks, resumption, detaching a session whose connection
broke) is the ``smacks`` feature's.

In a cluster (docs/cluster.md) the routing questions are answered over the
union of this node's sessions and the :class:`RemoteSessions` other nodes
hold (``SessionManager.remote``): stand-in sessions whose sink forwards to the
holding node. Iterating, counting, adding and removing stay local.
"""

from __future__ import annotations

import itertools
import logging
import math
import secrets
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from xml.etree.ElementTree import Element

from carewire.xmpp.errors import StreamCondition
from carewire.xmpp.jid import JID
from carewire.xmpp.stream import MAX_SEQ, SM

log = logging.getLogger(__name__)

_ids = itertools.count(1)


class StanzaSink(Protocol):
    """Where a session's outbound stanzas go (a connection of :mod:`carewire.net`)."""

    def send_element(self, element: Element) -> None:
        """Queue one stanza for writing."""

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        """Close the stream, with a stream error when ``condition`` is given."""


@dataclass(slots=True, kw_only=True)
class StreamManagement:
    """XEP-0198 state of one session: counters and the unacknowledged queue (no I/O).

    It belongs to the session, not to the connection, so that it survives a
    broken connection and moves to the stream that resumes the session.
    """

    max_unacked: int
    resume_id: str | None = None  # None: acks only, no resumption
    resume_timeout: float = 0.0  # seconds a detached session is kept
    handled: int = 0  # 'h' of the stanzas the client sent us
    acked: int = 0  # the last 'h' the client acknowledged
    unacked: deque[Element] = field(default_factory=deque)
    is_ack_requested: bool = False  # an <r/> is outstanding
    # While detached (connection lost, resumable): the monotonic deadline.
    resume_deadline: float | None = None

    @property
    def is_detached(self) -> bool:
        """Whether the session waits for resumption without a connection."""
        return self.resume_deadline is not None

    def count_handled(self) -> None:
        """One more inbound stanza was handled."""
        self.handled = (self.handled + 1) % MAX_SEQ

    def queue(self, element: Element) -> bool:
        """Remember an outbound stanza until acked; False once past the bound."""
        self.unacked.append(element)
        return len(self.unacked) <= self.max_unacked

    def ack(self, h: int) -> bool:
        """Drop what ``h`` acknowledges; False when it acknowledges more than was sent."""
        count = (h - self.acked) % MAX_SEQ
        if count > len(self.unacked):
            return False
        for _ in range(count):
            self.unacked.popleft()
        self.acked = h
        return True

    @property
    def sent_count(self) -> int:
        """How many stanzas were sent (mod 2^32)."""
        return (self.acked + len(self.unacked)) % MAX_SEQ

    def expire_now(self) -> None:
        """End the detached session at the next sweep."""
        self.resume_deadline = -math.inf


SM_REQUEST = Element(f"{{{SM}}}r")


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
    # XEP-0198 stream management, once the client enabled it.
    sm: StreamManagement | None = None
    # The node holding the session, for another node's stand-in; "" for our own sessions.
    node: str = ""

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

    @property
    def is_detached(self) -> bool:
        """Whether the connection is gone and the session waits for resumption (XEP-0198)."""
        return self.sm is not None and self.sm.resume_deadline is not None

    def send(self, element: Element) -> None:
        """Write a stanza to this session (dropped once the session closed).

        With stream management the stanza is also kept until the client
        acknowledges it (XEP-0198 §4), and an ack is requested unless one is
        outstanding; a detached session only keeps it.
        """
        if self.is_closed:
            return
        sm = self.sm
        if sm is None:
            self.sink.send_element(element)
            return
        if not sm.queue(element):
            log.warning("session %d: too many unacknowledged stanzas", self.id)
            self.sink.close(StreamCondition.POLICY_VIOLATION, "too many unacknowledged stanzas")
            return
        if sm.resume_deadline is not None:
            return
        self.sink.send_element(element)
        if not sm.is_ack_requested:
            sm.is_ack_requested = True
            self.sink.send_element(SM_REQUEST)


class RemoteSessions(Protocol):
    """The sessions other nodes of a cluster hold (stand-ins with ``node`` set)."""

    def get(self, jid: JID) -> Session | None:
        """The stand-in for a full JID bound on another node."""

    def of_user(self, login: str) -> list[Session]:
        """The stand-ins of an account's sessions on other nodes."""


class SessionManager:
    """All bound sessions of this node, by account and resource (and other nodes', if set)."""

    def __init__(self) -> None:
        self._by_user: dict[str, dict[str, Session]] = {}
        self._count = 0
        # XEP-0198 resumption ids of sessions that may be resumed.
        self._resumable: dict[str, Session] = {}
        # Sessions on the other nodes of a cluster (None: one node).
        self.remote: RemoteSessions | None = None

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
        elif old.sm is not None and old.sm.resume_id is not None:
            self._resumable.pop(old.sm.resume_id, None)
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
        if session.sm is not None and session.sm.resume_id is not None:
            self._resumable.pop(session.sm.resume_id, None)
        return True

    def make_resumable(self, session: Session) -> str:
        """Give an indexed session an unguessable XEP-0198 resumption id."""
        assert session.sm is not None
        resume_id = secrets.token_urlsafe(24)
        session.sm.resume_id = resume_id
        self._resumable[resume_id] = session
        return resume_id

    def resumable(self, resume_id: str, login: str) -> Session | None:
        """The session ``login`` may resume with ``resume_id`` (another account's: None)."""
        session = self._resumable.get(resume_id)
        if session is None or session.is_closed or session.username != login:
            return None
        return session

    def detached(self) -> list[Session]:
        """Sessions waiting for resumption."""
        return [s for s in self._resumable.values() if s.is_detached]

    def get(self, jid: JID) -> Session | None:
        """The session bound to this full JID, here or on another node of the cluster."""
        session = self.local(jid)
        if session is None and self.remote is not None:
            return self.remote.get(jid)
        return session

    def local(self, jid: JID) -> Session | None:
        """The session bound to this full JID on this node (never another domain's user's)."""
        if jid.localpart is None or jid.resource is None:
            return None
        resources = self._by_user.get(jid.localpart)
        session = resources.get(jid.resource) if resources else None
        # Sessions are keyed by login: with federation, alice@other.example/phone
        # must not find our alice's 'phone' resource.
        return session if session is not None and session.jid.domain == jid.domain else None

    def of_user(self, login: str) -> list[Session]:
        """Every bound session of an account (on every node)."""
        resources = self._by_user.get(login)
        found = list(resources.values()) if resources else []
        if self.remote is not None:
            found.extend(self.remote.of_user(login))
        return found

    def local_of_user(self, login: str) -> list[Session]:
        """The account's sessions bound on this node."""
        resources = self._by_user.get(login)
        return list(resources.values()) if resources else []

    def available_of_user(self, login: str) -> list[Session]:
        """Sessions of an account that sent available presence (on every node)."""
        if self.remote is not None:
            return [s for s in self.of_user(login) if s.presence is not None]
        resources = self._by_user.get(login)
        if not resources:
            return []
        return [s for s in resources.values() if s.presence is not None]

    def is_online(self, login: str) -> bool:
        """Whether the account has any bound session (on any node)."""
        if login in self._by_user:
            return True
        return self.remote is not None and bool(self.remote.of_user(login))

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
