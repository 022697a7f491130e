"""A staffed hospital for the assignment views' tests (REST, console, CLI)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carewire.datasets.service import DatasetService

#: The instant the staffing is laid out around (the day shift runs 07:00–19:00 UTC).
SHIFT_START = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
DAY = (SHIFT_START, SHIFT_START + timedelta(hours=12))
NIGHT = (SHIFT_START + timedelta(hours=12), SHIFT_START + timedelta(hours=24))


async def staff(datasets: DatasetService) -> None:
    """4 West: ann (101 A, day, active, Primary), bea (101 A, night, next, Backup);
    5 East: cid (201 A, day, active, patient-based); dee (201 A, ended); eve (no location)."""
    facility = (await datasets.create("FACILITIES", {"name": "Main"})).id
    role = (await datasets.create("FUNCTIONAL_ROLES", {"name": "RN", "facility": facility})).id
    locations: dict[str, int] = {}
    for unit_name, room_number in (("4 West", "101"), ("5 East", "201")):
        unit = (await datasets.create("UNITS", {"name": unit_name, "facility": facility})).id
        room = await datasets.create(
            "ROOMS", {"room_number": room_number, "facility": facility, "unit": unit}
        )
        bed = await datasets.create("BEDS", {"bed_number": "A", "room": room.id})
        location = await datasets.create(
            "LOCATIONS",
            {
                "location_id": f"loc-{room_number}A",
                "name": f"{room_number} A",
                "facility": facility,
                "places": [bed.id],
                "units": [unit],
            },
        )
        locations[room_number] = location.id
    patient = (await datasets.create("PATIENTS", {"mrn": "M1", "status": "admitted"})).id
    people = {
        "ann": ("Ann", "Able", "101", "Primary", "active", DAY, None),
        "bea": ("Bea", "Bond", "101", "Backup", "next", NIGHT, None),
        "cid": ("Cid", "Cole", "201", "Primary", "active", DAY, patient),
        "dee": ("Dee", "Dunn", "201", "Primary", "expired", DAY, None),
        "eve": ("Eve", "Earl", "", "Primary", "active", DAY, None),
    }
    for login, (first, last, room_number, level, state, (start, end), pid) in people.items():
        user = await datasets.create(
            "USERS", {"login": login, "first_name": first, "last_name": last}
        )
        values: dict[str, object] = {
            "assignment_id": f"a-{login}",
            "interface_id": "staffing",
            "level": level,
            "state": state,
            "usr": user.id,
            "role": role,
            "start_time": start,
            "end_time": end,
        }
        if room_number:
            values["location"] = locations[room_number]
        if pid is not None:
            values["patient"] = pid
        await datasets.create("ASSIGNMENTS", values)
