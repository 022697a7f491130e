"""Attribute values: coercion from JSON and text, back to JSON, emptiness."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carewire.datasets.model import Attribute, AttrType
from carewire.datasets.values import RecordError, coerce, is_empty, to_json
from carewire.errors import ValidationError

STRING = Attribute(name="topic", type=AttrType.STRING)
INTEGER = Attribute(name="ttl", type=AttrType.INTEGER)
BOOLEAN = Attribute(name="played", type=AttrType.BOOLEAN)
DATE = Attribute(name="dob", type=AttrType.DATE)
DATETIME = Attribute(name="sent_at", type=AttrType.DATETIME)


@pytest.mark.parametrize("attr", [STRING, INTEGER, BOOLEAN, DATE, DATETIME], ids=str)
def test_none_stays_none(attr: Attribute) -> None:
    assert coerce("X", attr, None) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Rounds", "Rounds"), ("", ""), (" x ", " x "), (12, "12"), (1.5, "1.5")],
)
def test_string(value: object, expected: str) -> None:
    assert coerce("CONVERSATIONS", STRING, value) == expected


@pytest.mark.parametrize("value", [True, False, [1], {"a": 1}, date(2026, 1, 1)])
def test_string_refuses_non_scalars_and_booleans(value: object) -> None:
    with pytest.raises(RecordError):
        coerce("CONVERSATIONS", STRING, value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(12, 12), ("12", 12), (" 12 ", 12), ("-3", -3), (12.0, 12), (0, 0), (2**40, 2**40)],
)
def test_integer(value: object, expected: int) -> None:
    result = coerce("CONVERSATIONS", INTEGER, value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize("value", [True, False, "true", 12.5, "1.5", "twelve", "", [1]])
def test_integer_refuses(value: object) -> None:
    with pytest.raises(RecordError) as info:
        coerce("CONVERSATIONS", INTEGER, value)
    assert info.value.code == "wrong-type"
    assert info.value.field == "ttl"


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_integer_text_round_trip(n: int) -> None:
    assert coerce("X", INTEGER, str(n)) == n


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("TRUE", True),
        ("t", True),
        ("yes", True),
        ("y", True),
        ("1", True),
        ("false", False),
        ("f", False),
        (" F ", False),
        ("no", False),
        ("n", False),
        ("0", False),
    ],
)
def test_boolean(value: object, expected: bool) -> None:
    assert coerce("CALL_LOG_HISTORY", BOOLEAN, value) is expected


@pytest.mark.parametrize("value", ["maybe", "", "2", 1, 0, 1.0, [True]])
def test_boolean_refuses(value: object) -> None:
    with pytest.raises(RecordError) as info:
        coerce("CALL_LOG_HISTORY", BOOLEAN, value)
    assert info.value.code == "wrong-type"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-31", date(2026, 1, 31)),
        (" 1980-02-29 ", date(1980, 2, 29)),
        (date(2000, 1, 1), date(2000, 1, 1)),
    ],
)
def test_date(value: object, expected: date) -> None:
    result = coerce("PATIENTS", DATE, value)
    assert result == expected
    assert type(result) is date


@pytest.mark.parametrize(
    "value",
    [
        "2026-02-30",
        "31/01/2026",
        "2026-01-31T08:00:00",
        20260131,
        datetime(2026, 1, 31, tzinfo=UTC),
        "",
    ],
)
def test_date_refuses(value: object) -> None:
    with pytest.raises(RecordError):
        coerce("PATIENTS", DATE, value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-31T08:00:00Z", datetime(2026, 1, 31, 8, tzinfo=UTC)),
        ("2026-01-31T08:00:00+00:00", datetime(2026, 1, 31, 8, tzinfo=UTC)),
        ("2026-01-31T10:00:00+02:00", datetime(2026, 1, 31, 8, tzinfo=UTC)),
        ("2026-01-31T03:30:00-04:30", datetime(2026, 1, 31, 8, tzinfo=UTC)),
        (" 2026-01-31T08:00:00.250Z ", datetime(2026, 1, 31, 8, 0, 0, 250000, tzinfo=UTC)),
        (datetime(2026, 1, 31, 8, tzinfo=UTC), datetime(2026, 1, 31, 8, tzinfo=UTC)),
    ],
)
def test_datetime(value: object, expected: datetime) -> None:
    result = coerce("MESSAGES", DATETIME, value)
    assert isinstance(result, datetime)
    assert result == expected
    assert result.utcoffset() is not None


def test_datetime_keeps_its_offset() -> None:
    result = coerce("MESSAGES", DATETIME, "2026-01-31T10:00:00+02:00")
    assert isinstance(result, datetime)
    assert result.utcoffset() == timedelta(hours=2)
    assert result.tzinfo == timezone(timedelta(hours=2))


@pytest.mark.parametrize("value", ["2026-01-31T08:00:00", "2026-01-31", datetime(2026, 1, 31, 8)])
def test_naive_datetime_is_refused(value: object) -> None:
    with pytest.raises(RecordError) as info:
        coerce("MESSAGES", DATETIME, value)
    assert "time zone is required" in str(info.value)
    assert info.value.code == "wrong-type"


@pytest.mark.parametrize("value", ["yesterday", "", 1769846400, date(2026, 1, 31), True])
def test_datetime_refuses(value: object) -> None:
    with pytest.raises(RecordError):
        coerce("MESSAGES", DATETIME, value)


@given(st.datetimes(timezones=st.timezones()))
def test_datetime_text_round_trip(value: datetime) -> None:
    if value.utcoffset() is None:  # a zone that does not exist at that moment
        return
    result = coerce("X", DATETIME, value.isoformat())
    assert isinstance(result, datetime)
    assert result.astimezone(UTC) == value.astimezone(UTC)


def test_record_error_names_dataset_record_and_field() -> None:
    with pytest.raises(RecordError) as info:
        coerce("CONVERSATIONS", INTEGER, "soon", record=7)
    err = info.value
    assert str(err).startswith("CONVERSATIONS record 7, ttl: 'soon' is not a valid Integer")
    assert (err.dataset, err.record, err.field) == ("CONVERSATIONS", 7, "ttl")
    assert err.code == "wrong-type"
    assert isinstance(err, ValidationError)


def test_record_error_without_record_or_field() -> None:
    with pytest.raises(RecordError) as info:
        coerce("MESSAGES", DATETIME, "later")
    assert str(info.value).startswith("MESSAGES, sent_at: 'later' is not a valid Date/Time")
    assert info.value.record is None
    plain = RecordError("BEDS", "something is off")
    assert str(plain) == "BEDS: something is off"
    assert plain.code == "invalid-record"
    assert plain.field is None


def test_to_json() -> None:
    assert to_json(datetime(2026, 1, 31, 8, tzinfo=UTC)) == "2026-01-31T08:00:00+00:00"
    assert to_json(date(2026, 1, 31)) == "2026-01-31"
    assert to_json([date(2026, 1, 31), 3]) == ["2026-01-31", 3]
    assert to_json((1, 2)) == [1, 2]
    assert to_json([[date(2026, 1, 1)]]) == [["2026-01-01"]]
    for value in (None, True, 0, 12, "x", ""):
        assert to_json(value) == value
    assert to_json(True) is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, True),
        ("", True),
        ([], True),
        ((), True),
        (" ", False),
        (0, False),
        (False, False),
        ([None], False),
        ("x", False),
        (date(2026, 1, 1), False),
    ],
)
def test_is_empty(value: object, expected: bool) -> None:
    assert is_empty(value) is expected


def test_integers_beyond_64_bits_are_refused() -> None:
    from carewire.datasets.values import INT_MAX, INT_MIN

    attr = Attribute(name="ttl", type=AttrType.INTEGER)
    assert coerce("CONVERSATIONS", attr, INT_MAX) == INT_MAX
    assert coerce("CONVERSATIONS", attr, str(INT_MIN)) == INT_MIN
    for value in (INT_MAX + 1, str(INT_MIN - 1), float(2**70)):
        with pytest.raises(RecordError, match="out of range"):
            coerce("CONVERSATIONS", attr, value)
