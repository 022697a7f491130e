"""PCD-04 reading, PCD-05 building and the listener's guards, without sockets."""

from __future__ import annotations

from datetime import UTC, datetime

import hl7
import pytest

from carewire.adapters.hl7.ack import AckCode, ErrorCode
from carewire.adapters.pcd.limits import RecentIds, TokenBucket
from carewire.adapters.pcd.report import Refusal, parse_dtm, read_report
from carewire.adapters.pcd.status import AlarmStatus, StatusReport, build_status
from tests.adapters.pcd.conftest import sample_bytes

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def test_a_physiological_alarm_start() -> None:
    r = read_report(sample_bytes("spo2_low_start"), now=NOW)
    assert (r.alarm_id, r.sender, r.source) == ("ALM-0001", "MONITOR_GW", "0012A1FFFE00BED1")
    assert (r.code, r.code_name) == ("196674", "MDC_EVT_LO")
    assert r.text == "SpO2 low 85"
    assert r.measurement == "MDC_PULS_OXIM_SAT_O2 85 MDC_DIM_PERCENT"
    assert (r.priority, r.kind, r.phase, r.state) == ("PM", "SP", "start", "active")
    assert r.device_state == "active"
    assert r.alarm_time == datetime(2026, 3, 1, 7, 59, 41, tzinfo=UTC)
    assert r.mrn == "000123"  # the MR identifier, not the SS one
    assert r.location.label == "ICU 101 A"
    assert r.location.code == "ICU^101^A^Main General"
    assert r.header.control_id == "MSG00001"


def test_the_same_alarm_ends() -> None:
    r = read_report(sample_bytes("spo2_low_end"), now=NOW)
    assert (r.alarm_id, r.phase, r.state, r.device_state) == (
        "ALM-0001",
        "end",
        "ended",
        "inactive",
    )


def test_a_high_priority_alarm_with_its_text_and_an_offset_time() -> None:
    r = read_report(sample_bytes("hr_high_ph"), now=NOW)
    assert (r.priority, r.code_name, r.text) == ("PH", "MDC_EVT_HI", "HR high 162")
    assert r.alarm_time == datetime(2026, 3, 1, 8, 14, 58, tzinfo=UTC)  # -0500 read as such


def test_a_technical_alarm_names_only_a_location() -> None:
    r = read_report(sample_bytes("leads_off_technical"), now=NOW)
    assert (r.priority, r.kind, r.phase, r.mrn) == ("PL", "ST", "continue", "")
    assert r.text == "Leads off"
    assert r.alarm_time == datetime(2026, 3, 1, 8, 20, tzinfo=UTC)  # no offset: UTC


@pytest.mark.parametrize(
    ("name", "code", "error", "reason"),
    [
        ("wrong_version", AckCode.AR, ErrorCode.UNSUPPORTED_VERSION_ID, "unsupported version 2.3"),
        ("unknown_event", AckCode.AR, ErrorCode.UNSUPPORTED_EVENT_CODE, "unsupported event R01"),
        ("missing_control_id", AckCode.AR, ErrorCode.REQUIRED_FIELD_MISSING, "MSH-10"),
        ("out_of_order", AckCode.AR, ErrorCode.SEGMENT_SEQUENCE_ERROR, "segment PID"),
    ],
)
def test_bad_samples_are_refused_with_a_reason(
    name: str, code: AckCode, error: ErrorCode, reason: str
) -> None:
    with pytest.raises(Refusal) as caught:
        read_report(sample_bytes(name), now=NOW)
    assert (caught.value.code, caught.value.error) == (code, error)
    assert reason in caught.value.reason
    assert "000123" not in caught.value.reason  # never patient data


def _edit(name: str, old: str, new: str) -> bytes:
    return sample_bytes(name).replace(old.encode(), new.encode())


@pytest.mark.parametrize(
    ("message", "code", "reason"),
    [
        (_edit("spo2_low_start", "ALM-0001^", "^"), AckCode.AE, "OBR-3"),
        (_edit("spo2_low_start", "|start|", "|wobble|"), AckCode.AE, "event phase"),
        (_edit("spo2_low_start", "20260301075941+0000", "yesterday"), AckCode.AE, "DTM"),
        (_edit("spo2_low_start", "ORU^R40^ORU_R40", "ADT^A01^ADT_A01"), AckCode.AR, "type ADT"),
        (
            _edit("spo2_low_start", "|MONITOR_GW^0012A1FFFE000001^EUI-64|", "||"),
            AckCode.AR,
            "MSH-3",
        ),
        (b"PID|||1\rOBR|1\r", AckCode.AR, "unreadable MSH"),
        (sample_bytes("spo2_low_start").split(b"OBR")[0], AckCode.AR, "needs an OBR"),
    ],
)
def test_other_bad_messages(message: bytes, code: AckCode, reason: str) -> None:
    with pytest.raises(Refusal) as caught:
        read_report(message, now=NOW)
    assert caught.value.code is code
    assert reason in caught.value.reason


def test_hl7_times() -> None:
    assert parse_dtm("2026") == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_dtm("202603011230+0100") == datetime(2026, 3, 1, 11, 30, tzinfo=UTC)
    assert parse_dtm("20260301123000.25") == datetime(2026, 3, 1, 12, 30, 0, 250000, tzinfo=UTC)
    for bad in ("", "20261", "2026030112300", "20260301+01", "abcd"):
        with pytest.raises(ValueError):
            parse_dtm(bad)


def test_a_status_message_reads_back() -> None:
    report = StatusReport(
        alarm=7,
        alarm_id="ALM-0001",
        sender="MONITOR_GW",
        code="196674",
        code_name="MDC_EVT_LO",
        mrn="000123",
        location="ICU^101^A^Main General",
        status=AlarmStatus.ACCEPTED,
        responder="nurse.adams",
        at=NOW,
    )
    msg = hl7.parse(build_status(report, now=NOW, control_id="C1").decode())
    assert str(msg.segment("MSH")(9)) == "ORA^R41^ORA_R41"
    assert str(msg.segment("MSH")(10)) == "C1"
    assert str(msg.segment("MSH")(5)) == "MONITOR_GW"
    assert str(msg.segment("PID")(3)) == "000123^^^^MR"
    assert str(msg.segment("PV1")(3)) == "ICU^101^A^Main General"
    assert str(msg.segment("OBR")(3)) == "ALM-0001^MONITOR_GW"
    assert str(msg.segment("OBR")(4)) == "196674^MDC_EVT_LO^MDC"
    status, responder = msg.segments("OBX")
    assert str(status(5)) == "accepted"
    assert str(responder(5)) == "nurse.adams"


def test_a_status_without_patient_location_or_responder() -> None:
    report = StatusReport(
        alarm=1, alarm_id="A|1", sender="GW", status=AlarmStatus.DELIVERED, at=NOW
    )
    text = build_status(report, now=NOW).decode()
    assert "PID" not in text and "PV1" not in text and "OBX|2" not in text
    assert "OBR|1||A\\F\\1^GW||" in text  # delimiters escaped


def test_the_token_bucket() -> None:
    bucket = TokenBucket(2)
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.take(0.5)  # one token back after half a second
    assert not bucket.take(0.5)
    assert bucket.take(10.0) and bucket.take(10.0) and not bucket.take(10.0)  # capped at burst
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_recent_ids_forget_the_oldest() -> None:
    ids = RecentIds(2)
    for n in "abc":
        ids.add(("s", n))
    assert ("s", "a") not in ids and ("s", "b") in ids and ("s", "c") in ids
