"""A small hospital for the assignment manager's tests: a facility, a unit, rooms, beds, nurses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from carewire.adapters import assignments
from carewire.adapters.assignments import AssignmentManager
from carewire.adapters.base import AdapterConfig
from carewire.assembly import Assembly
from carewire.clock import FakeClock
from carewire.datasets.model import Record
from carewire.rules.settings import validate_settings
from tests.adapters.conftest import START, platform  # noqa: F401

HOUR = timedelta(hours=1)


@dataclass(slots=True)
class Hospital:
    """The records the tests use, by name."""

    p: Assembly
    clock: FakeClock
    facility: int
    unit: int
    beds: dict[str, int]  # "101 A" → BEDS id
    nurses: dict[str, int]  # login → USERS id

    async def patient(self, mrn: str, *, bed: str | None = None, status: str = "admitted") -> int:
        values: dict[str, object] = {"mrn": mrn, "status": status}
        if bed is not None:
            values["bed"] = self.beds[bed]
        return (await self.p.datasets.create("PATIENTS", values)).id

    async def assignment(self, assignment_id: str, nurse: str, **values: object) -> int:
        record = await self.p.datasets.create(
            "ASSIGNMENTS",
            {
                "assignment_id": assignment_id,
                "interface_id": "staffing",
                "level": "Primary",
                "usr": self.nurses[nurse],
                **values,
            },
        )
        return record.id

    async def get(self, record_id: int) -> Record:
        return await self.p.datasets.get("ASSIGNMENTS", record_id)

    def manager(self, **settings: object) -> AssignmentManager:
        """A manager on this platform (not running: the tests step it)."""
        kind = self.p.adapters.kind(assignments.COMPONENT)
        config = AdapterConfig(
            reference_name="Assignment Manager",
            component=assignments.COMPONENT,
            is_enabled=True,
            settings=validate_settings(kind.settings, settings),
        )
        return AssignmentManager(
            config, datasets=self.p.datasets, audit=self.p.audit, clock=self.clock
        )

    def later(self, **delta: float) -> datetime:
        return self.clock.now() + timedelta(**delta)


@pytest.fixture
async def h(platform: Assembly) -> Hospital:  # noqa: F811
    """Main: unit 4 West, rooms 101 (beds A, B) and 102 (bed A); nurses ann and bea."""
    ds = platform.datasets
    facility = (await ds.create("FACILITIES", {"name": "Main"})).id
    unit = (await ds.create("UNITS", {"name": "4 West", "facility": facility})).id
    beds: dict[str, int] = {}
    for room_number, bed_numbers in (("101", "AB"), ("102", "A")):
        room = await ds.create(
            "ROOMS", {"room_number": room_number, "facility": facility, "unit": unit}
        )
        for bed_number in bed_numbers:
            bed = await ds.create("BEDS", {"bed_number": bed_number, "room": room.id})
            beds[f"{room_number} {bed_number}"] = bed.id
    nurses: dict[str, int] = {
        login: (await ds.create("USERS", {"login": login})).id for login in ("ann", "bea")
    }
    clock = platform.datasets.clock
    assert isinstance(clock, FakeClock)
    return Hospital(platform, clock, facility, unit, beds, nurses)
