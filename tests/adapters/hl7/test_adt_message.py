"""Reading ADT messages (sans-IO): what is understood, and what is answered AR or AE."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from carewire.adapters.hl7 import message
from carewire.adapters.hl7.ack import AckCode, ErrorCode, Rejected
from carewire.adapters.hl7.adt_message import (
    NULL,
    AdtMessage,
    Event,
    Location,
    ReadOptions,
    read_adt,
)
from carewire.adapters.hl7.errors import RemoteProtocolError
from tests.adapters.hl7.hospital import FACILITY, replace_field, sample

OPTIONS = ReadOptions(tz=UTC, facility="Default Facility")


def read(raw: bytes, options: ReadOptions = OPTIONS) -> AdtMessage:
    parsed = message.parse(raw)
    return read_adt(parsed, message.header_of(parsed), options)


def rejected(raw: bytes, options: ReadOptions = OPTIONS) -> Rejected:
    with pytest.raises(Rejected) as info:
        read(raw, options)
    return info.value


def test_a01_reads_identity_demographics_location_and_admit_time() -> None:
    msg = read(sample("a01_admit"))
    assert msg.event is Event.A01
    assert msg.header.control_id == "A01-0001"
    assert msg.header.sending_application == "ADMIT"
    (visit,) = msg.visits
    assert visit.mrn == "MRN2001"
    assert (visit.last_name, visit.first_name) == ("EVERYMAN", "ADAM")
    assert visit.dob == date(1961, 6, 15)
    assert visit.sex == "M"
    assert visit.patient_class == "I"
    assert visit.location == Location(point_of_care="ICU", room="101", bed="A", facility=FACILITY)
    assert visit.prior_location is None
    assert visit.admitted_at == datetime(2026, 3, 1, 7, 55, tzinfo=UTC)


def test_times_without_offset_are_in_the_configured_zone_with_offset_as_sent() -> None:
    east = timezone(timedelta(hours=-5))
    raw = sample("a01_admit")
    assert read(raw, ReadOptions(tz=east)).visits[0].admitted_at == datetime(
        2026, 3, 1, 7, 55, tzinfo=east
    )
    raw = replace_field(raw, b"|20260301075500", b"|202603010755+0100")
    at = read(raw).visits[0].admitted_at
    assert isinstance(at, datetime)
    assert at.astimezone(UTC) == datetime(2026, 3, 1, 6, 55, tzinfo=UTC)


def test_the_mr_identifier_wins_over_an_earlier_one() -> None:
    raw = replace_field(
        sample("a01_admit"),
        b"MRN2001^^^GENERAL HOSPITAL^MR~998877^^^STATE^SS",
        b"998877^^^STATE^SS~MRN2001^^^GENERAL HOSPITAL^MR",
    )
    assert read(raw).visits[0].mrn == "MRN2001"


def test_a_location_without_facility_takes_the_default_and_empty_fields_are_none() -> None:
    raw = replace_field(sample("a01_admit"), b"|ICU^101^A^Carewire General|", b"|ICU^101^A|")
    raw = replace_field(raw, b"|19610615|M", b"||")
    visit = read(raw).visits[0]
    assert visit.location is not None
    assert visit.location.facility == "Default Facility"
    assert (visit.dob, visit.sex) == (None, None)


def test_two_double_quotes_ask_to_delete_a_value() -> None:
    raw = replace_field(sample("a08_update"), b"|19610616|M", b'|""|""')
    visit = read(raw).visits[0]
    assert (visit.dob, visit.sex) == (NULL, NULL)


def test_a17_has_two_visits_and_a40_reads_mrg() -> None:
    swap = read(sample("a17_swap"))
    assert [v.mrn for v in swap.visits] == ["MRN2001", "MRN2003"]
    assert swap.visits[0].prior_location == swap.visits[1].location
    merge = read(sample("a40_merge"))
    assert [(v.mrn, v.prior_mrn) for v in merge.visits] == [("MRN2001", "MRN2999")]


def test_segments_with_lf_or_crlf_ends_are_read_too() -> None:
    raw = sample("a01_admit")
    assert read(raw.replace(b"\r", b"\r\n")).visits[0].mrn == "MRN2001"
    assert read(raw.replace(b"\r", b"\n")).visits[0].mrn == "MRN2001"


@pytest.mark.parametrize(
    ("name", "error", "words"),
    [
        ("bad_unknown_event", ErrorCode.UNSUPPORTED_EVENT_CODE, "event 'A99' is not handled"),
        ("bad_version", ErrorCode.UNSUPPORTED_VERSION_ID, "version '3.0'"),
        ("bad_missing_control_id", ErrorCode.REQUIRED_FIELD_MISSING, "MSH-10"),
        ("bad_segment_order", ErrorCode.SEGMENT_SEQUENCE_ERROR, "MSH EVN PV1 PID"),
        ("bad_not_adt", ErrorCode.UNSUPPORTED_MESSAGE_TYPE, "'ORU' is not ADT"),
    ],
)
def test_messages_we_do_not_understand_are_ar(name: str, error: ErrorCode, words: str) -> None:
    rej = rejected(sample(name))
    assert (rej.ack, rej.error) == (AckCode.AR, error)
    assert words in rej.reason


def test_missing_type_and_version_and_required_segments_are_ar() -> None:
    raw = sample("a01_admit")
    no_type = replace_field(raw, b"ADT^A01^ADT_A01", b"")
    assert "MSH-9" in rejected(no_type).reason
    no_version = replace_field(raw, b"|P|2.5", b"|P|")
    assert "MSH-12" in rejected(no_version).reason
    no_pv1 = raw[: raw.index(b"PV1|")] + raw[raw.index(b"AL1|") :]
    assert rejected(no_pv1).error is ErrorCode.SEGMENT_SEQUENCE_ERROR
    one_pair = sample("a17_swap").rsplit(b"PID|", 1)[0]
    assert "PID PV1 PID PV1" in rejected(one_pair).reason


def test_a_processing_id_other_than_the_configured_one_is_ar() -> None:
    raw = replace_field(sample("a01_admit"), b"|P|2.5", b"|T|2.5")
    assert rejected(raw).error is ErrorCode.UNSUPPORTED_PROCESSING_ID
    assert read(raw, ReadOptions(processing_id=None)).event is Event.A01


def test_bad_content_is_ae() -> None:
    raw = sample("a01_admit")
    no_mrn = replace_field(raw, b"MRN2001^^^GENERAL HOSPITAL^MR~998877^^^STATE^SS", b"")
    rej = rejected(no_mrn)
    assert (rej.ack, rej.error) == (AckCode.AE, ErrorCode.REQUIRED_FIELD_MISSING)
    bad_dob = replace_field(raw, b"|19610615|", b"|1961-06-15|")
    assert (rejected(bad_dob).ack, rejected(bad_dob).error) == (
        AckCode.AE,
        ErrorCode.DATA_TYPE_ERROR,
    )
    no_day = replace_field(raw, b"|19610615|", b"|196106|")
    assert "PID-7" in rejected(no_day).reason
    bad_month = replace_field(raw, b"|20260301075500", b"|20261301075500")
    assert "PV1-44 is not a valid date/time" in rejected(bad_month).reason


def test_a_message_without_msh_cannot_be_parsed() -> None:
    with pytest.raises(RemoteProtocolError):
        message.parse(b"PID|1||MRN2001\r")
    with pytest.raises(RemoteProtocolError):
        message.parse(b"MSH|")
