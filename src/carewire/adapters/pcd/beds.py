"""Beds already found by their PV1-3 location: a monitor reports from the same bed all day.

Finding a bed by its numbers costs three look-ups in the alarm's transaction
(facility, room, bed). :class:`BedCache` keeps what they found, the bed's
record id or None for no such bed, by (facility, room, bed), and is emptied
whenever a bed, a room or a facility changes: the kind's dataset subscriber
shows it every committed write. A look-up that raced such a change is not
kept (the generation moved on meanwhile), so the cache never answers from
before a change it has seen.
"""

from __future__ import annotations

from carewire.datasets.model import RecordChanged

#: The datasets a bed's identity depends on.
WATCHED = frozenset({"BEDS", "ROOMS", "FACILITIES"})
MAX_ENTRIES = 10_000

BedKey = tuple[str, str, str]


class BedCache:
    """(facility, room, bed) → the bed's record id, or None when there is no such bed."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._beds: dict[BedKey, int | None] = {}
        self._max = max_entries
        self.generation = 0

    def lookup(self, key: BedKey) -> tuple[bool, int | None]:
        """(whether ``key`` is known, the bed id it names)."""
        if key in self._beds:
            return True, self._beds[key]
        return False, None

    def keep(self, key: BedKey, bed: int | None, *, generation: int) -> None:
        """Remember a look-up made at ``generation`` (dropped if a change came since)."""
        if generation != self.generation:
            return
        if len(self._beds) >= self._max:
            self._beds.clear()
        self._beds[key] = bed

    def notice(self, event: RecordChanged) -> None:
        """Forget everything when a bed, room or facility changed."""
        if event.dataset in WATCHED:
            self._beds.clear()
            self.generation += 1
