"""The fused SQLite timestamp processor writes what SQLAlchemy's two steps write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime
from sqlalchemy.dialects import postgresql, sqlite

from carewire.storage.columns import UTCDateTime, is_plain_sqlite_utc, sqlite_utc_text

SQLITE = sqlite.dialect()


def sqlalchemy_text(value: datetime | None) -> object:
    """What a SQLAlchemy statement binds: UTCDateTime's conversion, then SQLite's DATETIME."""
    processor = UTCDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    assert processor is not None
    return processor(value)


zones = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(
    st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30), timezones=zones)
)
def test_any_aware_time_is_written_as_sqlalchemy_writes_it(value: datetime) -> None:
    assert sqlite_utc_text(value) == sqlalchemy_text(value)


def test_whole_seconds_keep_their_microsecond_digits() -> None:
    value = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
    assert sqlite_utc_text(value) == "2026-12-07 12:00:00.000000" == sqlalchemy_text(value)


def test_none_stays_none_and_a_naive_time_is_refused() -> None:
    assert sqlite_utc_text(None) is None
    with pytest.raises(ValueError, match="naive datetime"):
        sqlite_utc_text(datetime(2026, 12, 7, 12, 0))


def test_only_utc_columns_on_sqlite_with_the_default_format_take_the_fused_path() -> None:
    assert is_plain_sqlite_utc(UTCDateTime(), SQLITE)
    pg = postgresql.dialect()  # type: ignore[no-untyped-call]
    assert not is_plain_sqlite_utc(UTCDateTime(), pg)
    assert not is_plain_sqlite_utc(DateTime(timezone=True), SQLITE)


def test_the_same_time_object_again_is_not_formatted_again_and_another_is() -> None:
    shared = datetime(2026, 12, 7, 12, 0, 1, 500, tzinfo=UTC)
    first = sqlite_utc_text(shared)
    assert sqlite_utc_text(shared) is first  # the text kept for that very object
    equal_elsewhere = datetime(2026, 12, 7, 13, 0, 1, 500, tzinfo=timezone(timedelta(hours=1)))
    assert sqlite_utc_text(equal_elsewhere) == first  # the same instant, formatted again
    later = shared + timedelta(microseconds=1)
    assert sqlite_utc_text(later) == "2026-12-07 12:00:01.000501"
    assert sqlite_utc_text(shared) == "2026-12-07 12:00:01.000500"
