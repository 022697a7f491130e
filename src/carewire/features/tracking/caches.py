"""What the tracking recorder keeps in memory: record ids known to exist, and staged writes.

Plain data shared by :mod:`.records` (which applies ops) and :mod:`.resolve`
(which settles a batch's ids in bulk before it is applied).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from carewire.core.stores import ExpiryEntry
from carewire.datasets.model import RecordId
from carewire.features.tracking.ops import ConvKey

K = TypeVar("K")
V = TypeVar("V")

RECENT = 50_000  # messages (and deliveries) whose ids stay cached


class Lru(Generic[K, V]):
    """A bounded mapping that forgets the least recently used entries."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._d: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The value, refreshed as recently used."""
        value = self._d.get(key)
        if value is not None:
            self._d.move_to_end(key)
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._d

    def put(self, key: K, value: V) -> None:
        """Set a value, evicting the oldest entry past the size."""
        self._d[key] = value
        self._d.move_to_end(key)
        if len(self._d) > self.size:
            self._d.popitem(last=False)

    def pop(self, key: K) -> None:
        """Forget a key."""
        self._d.pop(key, None)


@dataclass(slots=True)
class Conv:
    """A cached conversation record."""

    id: RecordId
    state: str


Delivery = tuple[RecordId, int]  # record id, bits of the timestamps already set (records.py)
# uuid, message id (None: staged in this transaction), recipient identity, field, time
StagedDelivery = tuple[str, RecordId | None, RecordId, str, datetime]


@dataclass(slots=True)
class Staged:
    """Messages and delivery timestamps queued in a transaction, to be written in bulk."""

    messages: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    uuids: set[str] = field(default_factory=set)
    deliveries: list[StagedDelivery] = field(default_factory=list)
    expiries: list[ExpiryEntry] = field(default_factory=list)


@dataclass(slots=True)
class Caches:
    """Record ids known to exist (committed, or created by the transaction in progress)."""

    identities: dict[str, RecordId] = field(default_factory=dict)
    users: dict[str, RecordId] = field(default_factory=dict)
    conversations: dict[ConvKey, Conv] = field(default_factory=dict)
    messages: dict[str, RecordId] = field(default_factory=dict)
    deliveries: dict[tuple[int, int], Delivery] = field(default_factory=dict)


@dataclass(slots=True)
class RecentCaches:
    """Committed record ids; messages and deliveries only for recent ones."""

    identities: dict[str, RecordId] = field(default_factory=dict)
    users: dict[str, RecordId] = field(default_factory=dict)
    conversations: dict[ConvKey, Conv] = field(default_factory=dict)
    messages: Lru[str, RecordId] = field(default_factory=lambda: Lru(RECENT))
    deliveries: Lru[tuple[int, int], Delivery] = field(default_factory=lambda: Lru(RECENT))
