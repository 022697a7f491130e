"""Column types shared by the schema (:mod:`.tables`) and the generated dataset tables."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Dialect, Text
from sqlalchemy.dialects.sqlite.base import DATETIME as SQLITE_DATETIME
from sqlalchemy.types import TypeDecorator

from carewire.security.envelope import Keyring


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back as an aware UTC datetime.

    SQLite keeps no time zone, so values are converted to naive UTC before
    they are written and marked UTC when read; PostgreSQL uses
    ``timestamp with time zone``. Naive datetimes are rejected.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC for storage.

        Raises:
            ValueError: ``value`` is naive.
        """
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: storage needs timezone-aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Mark a stored timestamp as UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: The text SQLite's DATETIME type writes (SQLAlchemy's default storage format).
_SQLITE_FORMAT = SQLITE_DATETIME._storage_format


#: The last time written and its text: a room's broadcast stamps its 200 deliveries with one
#: ``datetime`` object, written in one bulk insert (an identity test, never a stale answer:
#: datetimes are immutable).
_last: tuple[datetime | None, str] = (None, "")


def sqlite_utc_text(value: datetime | None) -> str | None:
    """What ``UTCDateTime`` stores on SQLite for ``value``, computed in one step.

    The same text as its bind parameter processing followed by SQLite's DATETIME
    processor (``YYYY-MM-DD HH:MM:SS.ffffff`` in naive UTC; a test compares the
    two), without the dictionary and ``%`` formatting those build per value.
    For bulk inserts of thousands of rows a second (:mod:`.bulk_insert`).

    Raises:
        ValueError: ``value`` is naive.
    """
    global _last
    if value is None:
        return None
    last = _last
    if value is last[0]:
        return last[1]
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("naive datetime: storage needs timezone-aware UTC datetimes")
    utc = value - offset if offset else value  # the same wall time in UTC (offset text cut)
    text = str(utc)  # "YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]"
    text = text[:26] if utc.microsecond else text[:19] + ".000000"
    _last = (value, text)
    return text


def is_plain_sqlite_utc(column_type: object, dialect: Dialect) -> bool:
    """Whether :func:`sqlite_utc_text` is this column's bind processing on ``dialect``."""
    if dialect.name != "sqlite" or not isinstance(column_type, UTCDateTime):
        return False
    impl = getattr(column_type.dialect_impl(dialect), "impl", None)
    return getattr(impl, "_storage_format", None) == _SQLITE_FORMAT


class EncryptedText(TypeDecorator[str]):
    """Text encrypted at rest: written sealed (``cw1:…``), read back in clear.

    The associated data names the column (``b"MESSAGES.message"``), so a
    value copied into another column does not decrypt. ``None`` and ``""``
    are stored as they are (they say nothing). A value written before
    encryption (no ``cw1:`` prefix) reads as it is. Such a column can only be
    tested for emptiness in SQL: equality needs a blind index.
    """

    impl = Text
    cache_ok = True

    def __init__(self, keyring: Keyring, aad: bytes) -> None:
        """Seal values with ``keyring`` under ``aad``."""
        super().__init__()
        self.keyring = keyring
        self.aad = aad

    def process_bind_param(self, value: object, dialect: Dialect) -> str | None:
        """Seal a value for storage."""
        if value is None or value == "":
            return None if value is None else ""
        return self.keyring.seal_text(str(value), aad=self.aad)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        """Open a stored value (plaintext from before encryption passes through)."""
        if value is None:
            return None
        return self.keyring.open_text(value, aad=self.aad)
