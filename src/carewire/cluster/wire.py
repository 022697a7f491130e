"""What nodes of a cluster write to Redis and to each other: key names and envelopes (no I/O).

Every key and channel starts with ``[cluster] key_prefix`` (docs/cluster.md):

- ``{p}node:{id}:alive`` — a node's heartbeat, a string with an expiry of
  ``node_timeout_seconds``, renewed every ``heartbeat_seconds``;
- ``{p}nodes`` — the set of node ids that registered (survivors sweep the dead);
- ``{p}sessions:{id}`` — a hash of the full JIDs a node holds → :class:`SessionEntry`;
- ``{p}rooms`` — a hash room JID → the node that owns the room;
- channel ``{p}node:{id}`` — stanzas for one node (:class:`Envelope`);
- channel ``{p}events`` — session registry changes every node mirrors (:class:`Event`).

Envelopes and events are four newline-separated fields; a JID never holds a
line break (RFC 7622 forbids control characters), so only the last field
(serialised XML or JSON) may contain any.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from carewire.errors import CarewireError


class WireError(CarewireError):
    """A message on a cluster channel that does not decode (another version, or garbage)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Keys:
    """The Redis keys and channels of one cluster (all under ``prefix``)."""

    prefix: str

    @property
    def nodes(self) -> str:
        """The set of registered node ids."""
        return f"{self.prefix}nodes"

    @property
    def rooms(self) -> str:
        """The hash room JID → owning node."""
        return f"{self.prefix}rooms"

    @property
    def events(self) -> str:
        """The channel of session registry changes."""
        return f"{self.prefix}events"

    def alive(self, node: str) -> str:
        """A node's heartbeat key (expires when the node stops renewing it)."""
        return f"{self.prefix}node:{node}:alive"

    def sessions(self, node: str) -> str:
        """The hash of a node's sessions."""
        return f"{self.prefix}sessions:{node}"

    def channel(self, node: str) -> str:
        """The channel of stanzas for a node."""
        return f"{self.prefix}node:{node}"


class Kind(enum.Enum):
    """What an envelope on a node's channel asks of the node."""

    DELIVER = "D"  # write the stanza to the local session of ``to`` (hooks run there)
    ROUTE = "R"  # route the stanza from ``sender`` to ``to`` here (a room this node owns)
    CLOSE = "C"  # end the local session of ``to`` (``body``: a stream condition)


class EventKind(enum.Enum):
    """A change of the session registry, published on the events channel."""

    UP = "U"  # a session is bound or changed (``body``: its SessionEntry)
    DOWN = "X"  # a session ended
    SYNC = "S"  # the node re-registered all its sessions: reload its hash
    GONE = "G"  # the node is dead or stopped: forget its sessions
    ROSTER = "W"  # the roster of login ``jid`` was written: forget any copy of it


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """A stanza (or a command) for one node."""

    kind: Kind
    to: str
    sender: str = ""
    body: str = ""

    def encode(self) -> str:
        """The channel message."""
        return f"{self.kind.value}\n{self.sender}\n{self.to}\n{self.body}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """A change of the session registry (``jid`` empty for SYNC and GONE)."""

    kind: EventKind
    node: str
    jid: str = ""
    body: str = ""

    def encode(self) -> str:
        """The channel message."""
        return f"{self.kind.value}\n{self.node}\n{self.jid}\n{self.body}"


def _fields(data: bytes | str) -> list[str]:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    parts = text.split("\n", 3)
    if len(parts) != 4:
        raise WireError("a cluster message has four fields")
    return parts


def decode_envelope(data: bytes | str) -> Envelope:
    """Parse a message of a node's channel.

    Raises:
        WireError: Not an envelope of this version.
    """
    kind, sender, to, body = _fields(data)
    try:
        return Envelope(kind=Kind(kind), sender=sender, to=to, body=body)
    except ValueError:
        raise WireError(f"unknown envelope kind {kind[:8]!r}") from None


def decode_event(data: bytes | str) -> Event:
    """Parse a message of the events channel.

    Raises:
        WireError: Not an event of this version.
    """
    kind, node, jid, body = _fields(data)
    try:
        return Event(kind=EventKind(kind), node=node, jid=jid, body=body)
    except ValueError:
        raise WireError(f"unknown event kind {kind[:8]!r}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEntry:
    """What other nodes know of a session: enough for RFC 6121 §8 routing and carbons.

    Attributes:
        priority: The priority of its last available presence (RFC 6121 §4.7.2.3).
        presence: That presence, serialised (None: not available).
        carbons: Whether it enabled XEP-0280 carbons.
        interested: Whether it asked for the roster (it gets roster pushes, RFC 6121 §2.1.6).
    """

    priority: int = 0
    presence: str | None = None
    carbons: bool = False
    interested: bool = False

    def encode(self) -> str:
        """The hash value (JSON)."""
        return json.dumps(
            {"p": self.priority, "x": self.presence, "c": self.carbons, "i": self.interested}
        )

    @classmethod
    def decode(cls, data: bytes | str) -> SessionEntry:
        """Parse a hash value.

        Raises:
            WireError: Not a session entry.
        """
        try:
            raw = json.loads(data)
            priority, presence, carbons = raw["p"], raw["x"], raw["c"]
            interested = raw.get("i", False)
        except (ValueError, TypeError, KeyError):
            raise WireError("a session entry is JSON with p, x and c") from None
        if not isinstance(priority, int) or not isinstance(carbons, bool):
            raise WireError("a session entry's priority is an integer, carbons a boolean")
        if presence is not None and not isinstance(presence, str):
            raise WireError("a session entry's presence is XML text or null")
        return cls(
            priority=priority, presence=presence, carbons=carbons, interested=interested is True
        )
