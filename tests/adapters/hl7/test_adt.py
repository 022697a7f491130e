"""The ADT adapter on the platform: every event through the dataset service, ACKs,
duplicates, Error deliveries and the audit trail (the handler, without sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import hl7
import pytest

from carewire.adapters.hl7.adt import AdtRuntime
from carewire.adapters.hl7.adt_settings import COMPONENT
from carewire.assembly import Assembly
from carewire.datasets.model import Attribute, AttrType, Record, RecordChanged
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.security.audit import Outcome
from tests.adapters.hl7.hospital import bed_label, build_hospital, replace_field, sample

NAME = "ADT Feed"


@pytest.fixture
async def adt(platform: Assembly) -> AsyncIterator[AdtRuntime]:
    """An ADT instance (not listening) on the platform's hospital."""
    await build_hospital(platform)
    config = await platform.adapters.create(COMPONENT, NAME, settings={"port": 0})
    factory = platform.adapters.kind(COMPONENT).factory
    assert factory is not None
    runtime = factory(config)
    assert isinstance(runtime, AdtRuntime)
    yield runtime


def msa(reply: bytes) -> tuple[str, str, str]:
    """MSA-1, MSA-2, MSA-3 of an acknowledgement."""
    seg = hl7.parse(reply.decode()).segment("MSA")
    return str(seg(1)), str(seg(2)), str(seg(3)) if len(seg) > 3 else ""


def err3(reply: bytes) -> str:
    return str(hl7.parse(reply.decode()).segment("ERR")(3)(1)(1))


async def patient(p: Assembly, mrn: str) -> Record | None:
    page = await p.datasets.query(
        "PATIENTS", Query(filters=(Filter(field="mrn", op=FilterOp.EQ, value=mrn),))
    )
    return page.records[0] if page.records else None


async def where(p: Assembly, mrn: str) -> tuple[object, str | None]:
    rec = await patient(p, mrn)
    assert rec is not None
    return rec.get("status"), await bed_label(p, rec.get("bed"))


async def deliveries(p: Assembly) -> list[Record]:
    page = await p.datasets.query(
        "DELIVERIES", Query(filters=(Filter(field="status", op=FilterOp.EQ, value="Error"),))
    )
    return list(page.records)


async def test_a_stay_from_admission_to_cancelled_admission(
    platform: Assembly, adt: AdtRuntime
) -> None:
    events: list[RecordChanged] = []
    platform.datasets.subscribe(events.append)
    steps = [
        ("a01_admit", ("admitted", "101A")),
        ("a08_update", ("admitted", "101A")),
        ("a02_transfer", ("admitted", "401A")),
        ("a12_cancel_transfer", ("admitted", "101A")),
        ("a03_discharge", ("discharged", None)),
        ("a13_cancel_discharge", ("admitted", "401A")),
        ("a11_cancel_admit", ("cancelled", None)),
    ]
    for name, expected in steps:
        reply = await adt.handle(sample(name))
        assert msa(reply)[0] == "AA", (name, reply)
        assert await where(platform, "MRN2001") == expected, name
        rec = await patient(platform, "MRN2001")
        assert rec is not None
        if name == "a08_update":
            assert rec.get("first_name") == "ADAM JR"
    assert rec is not None and rec.get("admit_date") is None  # the A11
    origins = {(e.origin.adapter, e.origin.actor) for e in events if e.dataset == "PATIENTS"}
    assert origins == {(NAME, "hl7:ADMIT")}


async def test_the_ack_echoes_the_control_id_and_answers_as_the_receiver(adt: AdtRuntime) -> None:
    reply = await adt.handle(sample("a01_admit"))
    parsed = hl7.parse(reply.decode())
    msh = parsed.segment("MSH")
    assert [str(msh(i)) for i in (3, 4, 5, 6, 9, 12)] == [
        "CAREWIRE",
        "CW",
        "ADMIT",
        "GENERAL HOSPITAL",
        "ACK^A01^ACK",
        "2.5",
    ]
    assert msa(reply) == ("AA", "A01-0001", "")


async def test_a04_registers_a_patient_in_a_unit_without_a_bed(
    platform: Assembly, adt: AdtRuntime
) -> None:
    assert msa(await adt.handle(sample("a04_register")))[0] == "AA"
    assert await where(platform, "MRN2002") == ("emergency", None)


async def test_a_patient_without_a_bed_is_admitted_without_one(
    platform: Assembly, adt: AdtRuntime
) -> None:
    assert msa(await adt.handle(sample("patient_without_bed")))[0] == "AA"
    assert await where(platform, "MRN2004") == ("admitted", None)


async def test_a17_swaps_the_beds_of_two_patients(platform: Assembly, adt: AdtRuntime) -> None:
    await adt.handle(sample("a01_admit"))
    other = replace_field(sample("a01_admit"), b"MRN2001", b"MRN2003")
    other = replace_field(other, b"|A01-0001|", b"|A01-0003|")
    other = replace_field(other, b"ICU^101^A", b"ICU^102^A")
    assert msa(await adt.handle(other))[0] == "AA"
    assert msa(await adt.handle(sample("a17_swap")))[0] == "AA"
    assert await where(platform, "MRN2001") == ("admitted", "102A")
    assert await where(platform, "MRN2003") == ("admitted", "101A")


async def test_a40_merges_the_prior_patient_into_the_survivor(
    platform: Assembly, adt: AdtRuntime
) -> None:
    await adt.handle(sample("a01_admit"))
    prior = replace_field(sample("patient_without_bed"), b"MRN2004", b"MRN2999")
    prior = replace_field(prior, b"ICU^^^", b"Med-Surg 4^401^B^")
    await adt.handle(prior)
    survivor, old = await patient(platform, "MRN2001"), await patient(platform, "MRN2999")
    assert survivor is not None and old is not None
    await platform.datasets.update("PATIENTS", survivor.id, {"bed": None})
    assignment = await platform.datasets.create(
        "ASSIGNMENTS",
        {"assignment_id": "as-1", "interface_id": "test", "level": "1", "patient": old.id},
    )
    assert msa(await adt.handle(sample("a40_merge")))[0] == "AA"
    assert await patient(platform, "MRN2999") is None
    moved = await platform.datasets.get("ASSIGNMENTS", assignment.id)
    assert moved.get("patient") == survivor.id
    assert await where(platform, "MRN2001") == ("admitted", "401B")  # the prior patient's bed


async def test_a40_with_only_the_prior_patient_renames_it(
    platform: Assembly, adt: AdtRuntime
) -> None:
    prior = replace_field(sample("a01_admit"), b"MRN2001", b"MRN2999")
    await adt.handle(prior)
    old = await patient(platform, "MRN2999")
    assert old is not None
    assert msa(await adt.handle(sample("a40_merge")))[0] == "AA"
    renamed = await patient(platform, "MRN2001")
    assert renamed is not None and renamed.id == old.id
    assert await where(platform, "MRN2001") == ("admitted", "101A")


async def test_a_resent_message_is_acknowledged_and_not_applied_again(
    platform: Assembly, adt: AdtRuntime
) -> None:
    events: list[RecordChanged] = []
    platform.datasets.subscribe(events.append)
    first = await adt.handle(sample("a01_admit"))
    await adt.handle(sample("a02_transfer"))
    again = await adt.handle(sample("a01_admit"))
    assert msa(first) == ("AA", "A01-0001", "")
    assert msa(again) == ("AA", "A01-0001", "duplicate")
    assert len([e for e in events if e.dataset == "PATIENTS"]) == 2
    assert await where(platform, "MRN2001") == ("admitted", "401A")  # not moved back


async def test_an_unknown_bed_is_ae_with_an_error_delivery_and_an_audit_entry(
    platform: Assembly, adt: AdtRuntime
) -> None:
    reply = await adt.handle(sample("bad_unknown_bed"))
    assert msa(reply)[:2] == ("AE", "BAD-0004")
    assert "unknown bed 'Z' in room '101'" in msa(reply)[2]
    assert err3(reply) == "204"
    assert await patient(platform, "MRN2001") is None  # nothing applied
    (failure,) = await deliveries(platform)
    assert failure.get("interface_name") == NAME
    assert failure.get("source") == "HL7 ADT^A01 BAD-0004"
    assert "unknown bed 'Z'" in str(failure.get("status_text"))
    entries, _ = await platform.audit.store.entries(action="hl7.message.rejected")
    (entry,) = entries
    assert entry.event.outcome is Outcome.FAILURE
    assert entry.event.details["ack"] == "AE"
    assert "MRN2001" not in str(entry.event.details) and "EVERYMAN" not in str(entry.event)
    # A bed without its room cannot be found either.
    reply = await adt.handle(sample("bad_bed_without_room"))
    assert msa(reply)[0] == "AE"
    assert "names a bed but no room" in msa(reply)[2]
    assert len(await deliveries(platform)) == 2


async def test_messages_not_understood_are_ar_and_audited(
    platform: Assembly, adt: AdtRuntime
) -> None:
    cases = {
        "bad_unknown_event": "201",
        "bad_version": "203",
        "bad_missing_control_id": "101",
        "bad_segment_order": "100",
        "bad_not_adt": "200",
    }
    for name, code in cases.items():
        reply = await adt.handle(sample(name))
        assert (msa(reply)[0], err3(reply)) == ("AR", code), name
    reply = await adt.handle(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert msa(reply)[:2] == ("AR", "")
    assert await deliveries(platform) == []
    entries, _ = await platform.audit.store.entries(action="hl7.message.rejected")
    assert [e.event.details["ack"] for e in entries] == ["AR"] * 6


async def test_create_locations_adds_the_unit_room_and_bed(platform: Assembly) -> None:
    config = await platform.adapters.create(
        COMPONENT, "Creating", settings={"port": 0, "create_locations": True}
    )
    factory = platform.adapters.kind(COMPONENT).factory
    assert factory is not None
    runtime = factory(config)
    assert isinstance(runtime, AdtRuntime)
    raw = replace_field(sample("a01_admit"), b"ICU^101^A^Carewire General", b"NICU^7^C^West Campus")
    assert msa(await runtime.handle(raw))[0] == "AA"
    assert await where(platform, "MRN2001") == ("admitted", "7C")
    room = (await platform.datasets.query("ROOMS", Query())).records[0]
    unit = await platform.datasets.get("UNITS", int(str(room.get("unit"))))
    assert unit.get("name") == "NICU"


async def test_a_write_the_data_platform_refuses_is_ae(platform: Assembly, adt: AdtRuntime) -> None:
    await platform.registry.add_attribute(
        "PATIENTS", Attribute(name="ward_code", type=AttrType.STRING, is_required=True)
    )
    reply = await adt.handle(sample("a01_admit"))
    assert msa(reply)[0] == "AE"
    assert "data platform refused" in msa(reply)[2]
    (failure,) = await deliveries(platform)
    assert "ward_code" in str(failure.get("status_text"))
    entries, _ = await platform.audit.store.entries(action="hl7.message.rejected")
    assert "ward_code" not in str(entries[0].event.details)  # may quote values: not audited
