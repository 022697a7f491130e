"""The demo hospital's data: facility, units, rooms, beds, locations, staff, assignments, a rule.

Loaded by ``carewire demo`` next to the demo accounts (:mod:`carewire.demo`),
through the dataset service like any interface would, with upserts so that
loading twice changes nothing. It adds a NURSE_CALLS dataset and one
escalation rule, so the rules engine can be tried at once::

    carewire records create NURSE_CALLS --set call_id=1 --set status=Open \\
        --json-values '{"bed": {"bed_number": "A", "room": {"room_number": "101", ...}}}'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from carewire.datasets.model import Attribute, AttrType, Cardinality, DatasetName, Link, Origin
from carewire.datasets.service import Batch
from carewire.demo import UNITS
from carewire.platform import Platform
from carewire.rules.conditions import Condition, Group, Mode, Op
from carewire.rules.model import Rule

FACILITY = "Carewire General"
ORIGIN = Origin(actor="demo")
#: Unit → its rooms and the beds in each.
ROOMS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "ICU": (("101", ("A",)), ("102", ("A",)), ("103", ("A",)), ("104", ("A",))),
    "Emergency": (("E1", ("A",)), ("E2", ("A",)), ("E3", ("A", "B"))),
    "Med-Surg 4": (("401", ("A", "B")), ("402", ("A", "B"))),
}
ROLES = {"RN": "single-bed", "MD": "multi-bed", "Charge RN": "multi-bed"}
ESCALATION_RULE = "escalate-open-nurse-call"


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoData:
    """What loading the demo data wrote (records per dataset)."""

    counts: dict[str, int]


async def load_demo_data(p: Platform) -> DemoData:
    """Write the demo hospital's records (idempotent)."""
    counts: dict[str, int] = {}

    def count(dataset: str) -> None:
        counts[dataset] = counts.get(dataset, 0) + 1

    facility = {"name": FACILITY}
    async with p.datasets.batch(ORIGIN, "load_demo_data") as b:
        await b.upsert("FACILITIES", facility)
        count("FACILITIES")
        for role, location_type in ROLES.items():
            await b.upsert(
                "FUNCTIONAL_ROLES",
                {"name": role, "facility": facility, "location_type": location_type},
            )
            count("FUNCTIONAL_ROLES")
        for unit, rooms in ROOMS.items():
            unit_key = {"name": unit, "facility": facility}
            await b.upsert("UNITS", unit_key)
            count("UNITS")
            for room_number, beds in rooms:
                room = {"room_number": room_number, "facility": facility}
                await b.upsert("ROOMS", {**room, "unit": unit_key})
                count("ROOMS")
                for bed_number in beds:
                    bed = {"bed_number": bed_number, "room": room}
                    await b.upsert("BEDS", bed)
                    location_id = f"{unit}-{room_number}{bed_number}"
                    await b.upsert(
                        "LOCATIONS",
                        {
                            "location_id": location_id,
                            "facility": facility,
                            "places": [bed],
                            "units": [unit_key],
                        },
                    )
                    count("BEDS")
                    count("LOCATIONS")
        for unit, members in UNITS.items():
            await _staff(b, unit, members, facility, count)
    await _nurse_calls(p)
    return DemoData(counts=counts)


async def _staff(
    b: Batch,
    unit: str,
    members: tuple[tuple[str, str, str, str], ...],
    facility: dict[str, str],
    count: Callable[[str], None],
) -> None:
    locations = [f"{unit}-{room}{bed}" for room, beds in ROOMS[unit] for bed in beds]
    nurses = [m for m in members if m[3] == "RN"]
    for login, first, last, title in members:
        await b.upsert(
            "USERS",
            {
                "login": login,
                "first_name": first,
                "last_name": last,
                "title": title,
                "reference_name": f"{first} {last}",
                "unit": {"name": unit, "facility": facility},
            },
        )
        count("USERS")
    for i, location in enumerate(locations):
        for level, nurse in (("1", nurses[i % 2]), ("2", nurses[(i + 1) % 2])):
            await b.upsert(
                "ASSIGNMENTS",
                {
                    "assignment_id": f"{location}-{level}",
                    "interface_id": "demo",
                    "level": level,
                    "state": "active",
                    "location": {"location_id": location, "facility": facility},
                    "role": {"name": "RN", "facility": facility},
                    "usr": {"login": nurse[0]},
                },
            )
            count("ASSIGNMENTS")


async def _nurse_calls(p: Platform) -> None:
    """A NURSE_CALLS dataset linked to BEDS, and a rule escalating calls left open."""
    if "NURSE_CALLS" not in p.registry:
        await p.registry.create_dataset(
            "NURSE_CALLS",
            description="Calls from the nurse-call system (demo).",
            attributes=[
                Attribute(name="call_id", type=AttrType.STRING, is_key=True),
                Attribute(name="status", type=AttrType.STRING),
                Attribute(name="priority", type=AttrType.STRING),
            ],
            links=[
                Link(
                    name="bed",
                    target=DatasetName("BEDS"),
                    reverse="nurse_calls",
                    cardinality=Cardinality.MANY_TO_ONE,
                )
            ],
        )
    if p.rules.find(ESCALATION_RULE) is None and p.adapters.component_of("DataUpdate"):
        await p.rules.create(
            Rule(
                name=ESCALATION_RULE,
                purpose="A nurse call still open after two minutes becomes urgent",
                dataset="NURSE_CALLS",
                adapter="DataUpdate",
                action="Update Record",
                defer_seconds=120,
                conditions=Group(
                    mode=Mode.ALL, items=(Condition(path="status", op=Op.EQUALS, value="Open"),)
                ),
                settings={"updates": "priority=Urgent\nstatus=Escalated"},
            )
        )
