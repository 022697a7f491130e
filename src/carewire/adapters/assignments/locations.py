"""The locations the assignment manager makes for beds (seed 003, "Locations to Use for Changes").

A bed's location has the id ``<prefix><bed record id>``, is linked to the
facility of the bed's room, to the bed and to the room's unit, and is named
from the room and bed numbers. It is found (by key) or created when a
patient-based assignment has to move to that bed, and remembered.
"""

from __future__ import annotations

from typing import Final

from carewire.adapters.assignments.lifecycle import location_id, location_name
from carewire.datasets.model import Origin
from carewire.datasets.service import DatasetService, RecordNotFoundError

LOCATIONS: Final = "LOCATIONS"


class BedLocations:
    """Bed record id → LOCATIONS record id, found or created on demand."""

    def __init__(self, datasets: DatasetService, origin: Origin, prefix: str) -> None:
        self.datasets = datasets
        self.origin = origin
        self.prefix = prefix
        self._known: dict[int, int] = {}

    async def for_bed(self, bed_id: int) -> int | None:
        """The location of ``bed_id`` (None when the bed or its room no longer exists)."""
        known = self._known.get(bed_id)
        if known is not None:
            return known
        try:
            bed = await self.datasets.get("BEDS", bed_id)
            room_id = bed.get("room")
            if not isinstance(room_id, int):
                return None
            room = await self.datasets.get("ROOMS", room_id)
        except RecordNotFoundError:
            return None
        unit = room.get("unit")
        values: dict[str, object] = {
            "location_id": location_id(self.prefix, bed_id),
            "facility": room.get("facility"),
            "name": location_name(str(room.get("room_number") or ""), str(bed.get("bed_number"))),
            "places": [bed_id],
            "units": [unit] if isinstance(unit, int) else [],
        }
        record = await self.datasets.upsert(LOCATIONS, values, origin=self.origin)
        self._known[bed_id] = record.id
        return record.id

    def forget(self) -> None:
        """Forget what is remembered (a bed or a location was deleted)."""
        self._known.clear()
