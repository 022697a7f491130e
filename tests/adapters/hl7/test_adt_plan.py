"""What each ADT event writes (sans-IO): the plan for every event type."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from carewire.adapters.hl7 import message
from carewire.adapters.hl7.ack import AckCode, ErrorCode, Rejected
from carewire.adapters.hl7.adt_message import Location, ReadOptions, read_adt
from carewire.adapters.hl7.adt_plan import BedChange, Merge, PatientWrite, Plan, Status, plan
from tests.adapters.hl7.hospital import FACILITY, replace_field, sample

UTC_OPTIONS = ReadOptions(tz=UTC)
ICU101 = Location(point_of_care="ICU", room="101", bed="A", facility=FACILITY)
ICU102 = Location(point_of_care="ICU", room="102", bed="A", facility=FACILITY)
MS401A = Location(point_of_care="Med-Surg 4", room="401", bed="A", facility=FACILITY)
ADAM = {
    "last_name": "EVERYMAN",
    "first_name": "ADAM",
    "dob": datetime(1961, 6, 15).date(),
    "sex": "M",
}


def planned(raw: bytes, options: ReadOptions = UTC_OPTIONS) -> Plan:
    parsed = message.parse(raw)
    return plan(read_adt(parsed, message.header_of(parsed), options))


def only(p: Plan) -> PatientWrite:
    (write,) = p.patients
    return write


def test_a01_admits_to_the_bed_with_the_admit_date() -> None:
    w = only(planned(sample("a01_admit")))
    assert w.mrn == "MRN2001"
    assert w.values == {
        **ADAM,
        "status": Status.ADMITTED,
        "admit_date": datetime(2026, 3, 1, 7, 55, tzinfo=UTC),
    }
    assert (w.bed, w.location) == (BedChange.SET, ICU101)


@pytest.mark.parametrize(
    ("patient_class", "status"), [("E", "emergency"), ("O", "outpatient"), ("I", "registered")]
)
def test_a04_registers_by_patient_class(patient_class: str, status: str) -> None:
    raw = replace_field(
        sample("a04_register"), b"PV1|1|E|", b"PV1|1|" + patient_class.encode() + b"|"
    )
    w = only(planned(raw))
    assert w.values["status"] == status
    assert w.bed is BedChange.SET
    assert w.location == Location(point_of_care="Emergency", facility=FACILITY)


def test_a02_moves_the_bed_and_keeps_the_status() -> None:
    w = only(planned(sample("a02_transfer")))
    assert "status" not in w.values
    assert (w.bed, w.location) == (BedChange.SET, MS401A)


def test_a02_without_a_new_location_is_ae() -> None:
    raw = replace_field(sample("a02_transfer"), b"|Med-Surg 4^401^A^Carewire General|", b"||")
    with pytest.raises(Rejected) as info:
        planned(raw)
    assert (info.value.ack, info.value.error) == (AckCode.AE, ErrorCode.REQUIRED_FIELD_MISSING)


def test_a03_discharges_and_clears_the_bed() -> None:
    w = only(planned(sample("a03_discharge")))
    assert w.values["status"] == Status.DISCHARGED
    assert w.bed is BedChange.CLEAR


def test_a08_updates_demographics_and_keeps_the_bed_without_pv1_3() -> None:
    w = only(planned(sample("a08_update")))
    assert w.values == {**ADAM, "first_name": "ADAM JR", "dob": datetime(1961, 6, 16).date()}
    assert w.bed is BedChange.KEEP
    with_bed = replace_field(
        sample("a08_update"), b"PV1|1|I|", b"PV1|1|I|ICU^102^A^Carewire General"
    )
    assert only(planned(with_bed)).location == ICU102


def test_a08_with_quotes_deletes_values() -> None:
    raw = replace_field(sample("a08_update"), b"|19610616|M", b'|""|""')
    w = only(planned(raw))
    assert (w.values["dob"], w.values["sex"]) == (None, None)


def test_a11_cancels_the_admission_clearing_bed_and_admit_date() -> None:
    w = only(planned(sample("a11_cancel_admit")))
    assert (w.values["status"], w.values["admit_date"]) == (Status.CANCELLED, None)
    assert w.bed is BedChange.CLEAR


def test_a12_returns_to_pv1_3_or_else_pv1_6() -> None:
    w = only(planned(sample("a12_cancel_transfer")))
    assert (w.bed, w.location) == (BedChange.SET, ICU101)
    assert "status" not in w.values
    no_pv1_3 = replace_field(
        sample("a12_cancel_transfer"), b"PV1|1|I|ICU^101^A^Carewire General|", b"PV1|1|I||"
    )
    assert only(planned(no_pv1_3)).location == MS401A


def test_a13_readmits_to_the_bed() -> None:
    w = only(planned(sample("a13_cancel_discharge")))
    assert w.values["status"] == Status.ADMITTED
    assert (w.bed, w.location) == (BedChange.SET, MS401A)


def test_a17_swaps_two_beds_and_needs_both() -> None:
    p = planned(sample("a17_swap"))
    assert [(w.mrn, w.location) for w in p.patients] == [("MRN2001", ICU102), ("MRN2003", ICU101)]
    no_bed = replace_field(
        sample("a17_swap"),
        b"PV1|1|I|ICU^101^A^Carewire General|||ICU^102",
        b"PV1|1|I|ICU^101^^Carewire General|||ICU^102",
    )
    with pytest.raises(Rejected, match="with a bed is required for a swap"):
        planned(no_bed)


def test_a40_merges_the_prior_patient() -> None:
    p = planned(sample("a40_merge"))
    assert p.merges == (Merge(prior_mrn="MRN2999", mrn="MRN2001"),)
    assert only(p).bed is BedChange.KEEP
    no_mrg1 = replace_field(sample("a40_merge"), b"MRG|MRN2999^^^GENERAL HOSPITAL^MR", b"MRG|")
    with pytest.raises(Rejected, match="MRG-1"):
        planned(no_mrg1)


def test_a_bed_without_a_room_and_a_room_without_facility_are_ae() -> None:
    with pytest.raises(Rejected, match="names a bed but no room") as info:
        planned(sample("bad_bed_without_room"))
    assert info.value.ack is AckCode.AE
    raw = replace_field(sample("a01_admit"), b"|ICU^101^A^Carewire General|", b"|ICU^101^A|")
    with pytest.raises(Rejected, match="no default facility"):
        planned(raw)
    assert only(planned(raw, ReadOptions(facility="Main"))).location == Location(
        point_of_care="ICU", room="101", bed="A", facility="Main"
    )


def test_a_patient_without_a_bed_is_planned_with_no_bed() -> None:
    w = only(planned(sample("patient_without_bed")))
    assert w.bed is BedChange.SET
    assert w.location == Location(point_of_care="ICU", facility=FACILITY)
