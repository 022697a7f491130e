"""Who hears committed writes: the dataset service's subscribers, each with its datasets.

A subscriber names the datasets it looks at, or none for all of them; the
list of callbacks of a dataset is worked out once (until the subscribers
change), so the thousands of tracking events a second meet only the
subscribers that want them. Events go out in write order, each to its
subscribers in subscription order; one subscriber's bug is logged and does
not keep the event from the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from carewire.datasets.model import RecordChanged

log = logging.getLogger(__name__)

Subscriber = Callable[[RecordChanged], object]


class Subscribers:
    """The subscribers of a dataset service."""

    def __init__(self) -> None:
        # (callback, the datasets it wants, or None for all), in subscription order
        self._all: list[tuple[Subscriber, frozenset[str] | None]] = []
        self._by_dataset: dict[str, tuple[Subscriber, ...]] = {}

    def add(self, callback: Subscriber, datasets: Iterable[str] | None = None) -> None:
        """Call ``callback`` with the events of ``datasets`` (None: of every dataset)."""
        self._all.append((callback, None if datasets is None else frozenset(datasets)))
        self._by_dataset.clear()

    def remove(self, callback: Subscriber) -> None:
        """Stop calling ``callback``; an unknown one is ignored."""
        for i, (known, _) in enumerate(self._all):
            if known == callback:
                del self._all[i]
                self._by_dataset.clear()
                return

    def of(self, dataset: str) -> tuple[Subscriber, ...]:
        """The callbacks that want ``dataset``'s events, in subscription order."""
        found = self._by_dataset.get(dataset)
        if found is None:
            found = tuple(cb for cb, wanted in self._all if wanted is None or dataset in wanted)
            self._by_dataset[dataset] = found
        return found

    def publish(self, events: Sequence[RecordChanged]) -> None:
        """Hand each event to its subscribers."""
        for event in events:
            for callback in self.of(event.dataset):
                try:
                    callback(event)
                except Exception:  # supervisor: one subscriber's bug must not starve others
                    log.exception("RecordChanged subscriber failed for %s", event.dataset)
