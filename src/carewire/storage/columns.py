"""Column types shared by the schema (:mod:`.tables`) and the generated dataset tables."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Dialect, Text
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
