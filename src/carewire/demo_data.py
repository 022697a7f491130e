"""The demo hospital's data: facility, units, rooms, beds, patients, staff, assignments, rules.

Loaded by ``carewire demo`` next to the demo accounts (:mod:`carewire.demo`),
through the dataset service like any interface would, with upserts so that
loading twice changes nothing. It adds a NURSE_CALLS dataset and the nurse-call
workflow: a new call alerts the bed's level-1 nurse (Accept/Decline write the
call back), and a call nobody accepted within 60 seconds is escalated to the
level-2 (backup) nurse. ``carewire demo nurse-call ICU-101A`` raises a call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from carewire.assembly import Assembly
from carewire.datasets.model import Attribute, AttrType, Cardinality, DatasetName, Link, Origin
from carewire.datasets.service import Batch
from carewire.demo import UNITS
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
ALERT_RULE = "alert-assigned-nurse"
BACKUP_RULE = "escalate-to-backup-nurse"
#: Seconds a call may stay unanswered before the backup nurse is alerted.
BACKUP_AFTER = 60
#: Patients by MRN: name, date of birth, sex, and the location (unit-room+bed) of their bed.
PATIENTS: dict[str, tuple[str, str, str, str, str]] = {
    "MRN1001": ("Alice", "Moreau", "1948-03-02", "F", "ICU-101A"),
    "MRN1002": ("Brian", "Okafor", "1961-11-17", "M", "ICU-102A"),
    "MRN1003": ("Chloe", "Nguyen", "1990-06-25", "F", "Emergency-E1A"),
    "MRN1004": ("Dmitri", "Petrov", "1955-01-09", "M", "Med-Surg 4-401A"),
    "MRN1005": ("Esther", "Lang", "1937-08-30", "F", "Med-Surg 4-401B"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoData:
    """What loading the demo data wrote (records per dataset)."""

    counts: dict[str, int]


async def load_demo_data(p: Assembly) -> DemoData:
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
    await _patient_beds(p)
    async with p.datasets.batch(ORIGIN, "load_demo_patients") as b:
        for mrn, (first, last, dob, sex, location) in PATIENTS.items():
            await b.upsert(
                "PATIENTS",
                {
                    "mrn": mrn,
                    "first_name": first,
                    "last_name": last,
                    "dob": dob,
                    "sex": sex,
                    "bed": bed_of(location),
                },
            )
            count("PATIENTS")
    await _nurse_calls(p)
    return DemoData(counts=counts)


def bed_of(location: str) -> dict[str, object]:
    """The BEDS key of a demo location id (``ICU-101A``), for link values.

    Raises:
        KeyError: No such bed in the demo hospital (the message lists them).
    """
    for unit, rooms in ROOMS.items():
        for room_number, beds in rooms:
            for bed_number in beds:
                if f"{unit}-{room_number}{bed_number}" == location:
                    return {
                        "bed_number": bed_number,
                        "room": {"room_number": room_number, "facility": {"name": FACILITY}},
                    }
    raise KeyError(f"no bed {location!r}; the demo beds are: {', '.join(demo_beds())}")


def demo_beds() -> list[str]:
    """Every demo bed's location id."""
    return [f"{u}-{r}{b}" for u, rooms in ROOMS.items() for r, beds in rooms for b in beds]


def patient_in(location: str) -> str | None:
    """The MRN of the demo patient in a bed, if any."""
    return next((mrn for mrn, p in PATIENTS.items() if p[4] == location), None)


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


async def _patient_beds(p: Assembly) -> None:
    """PATIENTS.bed: the bed a patient lies in (patient details read ``bed.room.room_number``)."""
    if p.registry.get("PATIENTS").link("bed") is None:
        await p.registry.add_link(
            "PATIENTS",
            Link(
                name="bed",
                target=DatasetName("BEDS"),
                reverse="patients",
                cardinality=Cardinality.MANY_TO_ONE,
            ),
        )


async def _nurse_calls(p: Assembly) -> None:
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
    calls = p.registry.get("NURSE_CALLS")
    if calls.attribute("responder") is None:
        await p.registry.add_attribute(
            "NURSE_CALLS", Attribute(name="responder", type=AttrType.STRING)
        )
    if calls.link("patient") is None:
        await p.registry.add_link(
            "NURSE_CALLS",
            Link(
                name="patient",
                target=DatasetName("PATIENTS"),
                reverse="nurse_calls",
                cardinality=Cardinality.MANY_TO_ONE,
            ),
        )
    xmpp = next((a.reference_name for a in p.adapters.list() if a.component == "XMPP"), None)
    if xmpp is not None:
        await _alert_rules(p, xmpp)
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


_WHERE = "room #{bed.room.room_number}, bed #{bed.bed_number}"
_WHO = "#{patient.first_name} #{patient.last_name}"
_OPEN = Group(mode=Mode.ALL, items=(Condition(path="status", op=Op.EQUALS, value="Open"),))


def _alert_settings(level: str, subject: str) -> dict[str, object]:
    return {
        "recipients": f"#{{bed.locs.assignments[level={level},state=active].usr.login}}",
        "subject": subject,
        "message": f"{_WHO} is calling from {_WHERE}.",
        "short_message": "Nurse call #{bed.room.room_number}#{bed.bed_number}",
        "patient_mrn": "#{patient.mrn}",
        "ttl": 10,
        "priority": "Urgent" if level == "2" else "Important",
        "accept": "status=Accepted",
        "decline": "status=Declined",
        "responder_path": "responder",
        "vibrate": True,
        "audible": True,
    }


async def _alert_rules(p: Assembly, adapter: str) -> None:
    """Alert the bed's level-1 nurse; after BACKUP_AFTER seconds unanswered, the backup."""
    if p.rules.find(ALERT_RULE) is None:
        await p.rules.create(
            Rule(
                name=ALERT_RULE,
                purpose="A new nurse call alerts the nurse assigned to the bed",
                dataset="NURSE_CALLS",
                adapter=adapter,
                action="Send Alert",
                conditions=_OPEN,
                settings=_alert_settings("1", "Nurse call " + "#{bed.room.room_number}"),
            )
        )
    if p.rules.find(BACKUP_RULE) is None:
        await p.rules.create(
            Rule(
                name=BACKUP_RULE,
                purpose="A call still open after a minute alerts the backup nurse",
                dataset="NURSE_CALLS",
                adapter=adapter,
                action="Send Alert",
                defer_seconds=BACKUP_AFTER,
                conditions=_OPEN,
                settings=_alert_settings("2", "Escalated call " + "#{bed.room.room_number}"),
            )
        )
