"""Test data for the HL7 ADT tests: the sample messages and the hospital they name."""

from __future__ import annotations

from pathlib import Path

from carewire.assembly import Assembly
from carewire.datasets.model import Origin

SAMPLES = Path(__file__).parent / "samples"
FACILITY = "Carewire General"
#: Unit → room → beds.
BEDS: dict[str, dict[str, tuple[str, ...]]] = {
    "ICU": {"101": ("A",), "102": ("A",)},
    "Med-Surg 4": {"401": ("A", "B")},
}


def sample(name: str) -> bytes:
    """A sample message with HL7's segment terminator (CR)."""
    text = (SAMPLES / f"{name}.hl7").read_text(encoding="utf-8")
    return text.strip("\n").replace("\n", "\r").encode() + b"\r"


def replace_field(message: bytes, old: bytes, new: bytes) -> bytes:
    """The message with one piece of text replaced (exactly once)."""
    assert message.count(old) == 1, old
    return message.replace(old, new)


async def build_hospital(p: Assembly) -> None:
    """The facility, units, rooms and beds the samples name."""
    facility = {"name": FACILITY}
    async with p.datasets.batch(Origin(actor="test"), "hl7_hospital") as b:
        await b.upsert("FACILITIES", facility)
        for unit, rooms in BEDS.items():
            unit_key = {"name": unit, "facility": facility}
            await b.upsert("UNITS", unit_key)
            for room, beds in rooms.items():
                room_key = {"room_number": room, "facility": facility}
                await b.upsert("ROOMS", {**room_key, "unit": unit_key})
                for bed in beds:
                    await b.upsert("BEDS", {"bed_number": bed, "room": room_key})


async def bed_label(p: Assembly, bed_id: object) -> str | None:
    """``101A`` for a BEDS id (None for None)."""
    if bed_id is None:
        return None
    bed = await p.datasets.get("BEDS", int(str(bed_id)))
    room = await p.datasets.get("ROOMS", int(str(bed.get("room"))))
    return f"{room.get('room_number')}{bed.get('bed_number')}"
