"""Typed attribute values: coercion from JSON/text input, and back to JSON.

Input from the REST API, the CLI, CSV files or an interface arrives as JSON
scalars or text; :func:`coerce` turns it into the attribute's Python type or
raises a :class:`RecordError` naming the dataset, record and attribute.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from carewire.datasets.model import Attribute, AttrType
from carewire.errors import ValidationError

_TRUE = {"true", "t", "1", "yes", "y"}
#: Integers are stored as 64-bit signed numbers on every database.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
_FALSE = {"false", "f", "0", "no", "n"}


class RecordError(ValidationError):
    """A record's value is missing or wrong; the message names dataset, record and field.

    Attributes:
        dataset: The dataset's name.
        record: The record's id, if it has one yet.
        field: The attribute or link concerned, if any.
    """

    def __init__(
        self,
        dataset: str,
        message: str,
        *,
        field: str | None = None,
        record: int | None = None,
        code: str = "invalid-record",
    ) -> None:
        where = dataset if record is None else f"{dataset} record {record}"
        if field is not None:
            where += f", {field}"
        super().__init__(f"{where}: {message}", code=code)
        self.dataset, self.record, self.field = dataset, record, field


def coerce(dataset: str, attr: Attribute, value: object, record: int | None = None) -> object:
    """``value`` as the attribute's type (None stays None).

    Raises:
        RecordError: The value cannot be read as that type.
    """
    if value is None:
        return None
    try:
        return _COERCE[attr.type](value)
    except (ValueError, TypeError) as exc:
        raise RecordError(
            dataset,
            f"{value!r} is not a valid {attr.type} ({exc})",
            field=attr.name,
            record=record,
            code="wrong-type",
        ) from None


def _string(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("expected text")
    return str(value)


def _integer(value: object) -> int:
    if isinstance(value, bool):
        raise TypeError("expected a whole number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        number = int(value.strip())
    else:
        raise TypeError("expected a whole number")
    if not INT_MIN <= number <= INT_MAX:
        raise ValueError("out of range: whole numbers are stored in 64 bits")
    return number


def is_record_id(value: int) -> bool:
    """Whether ``value`` can be a record id at all (ids are positive 64-bit numbers)."""
    return 0 < value <= INT_MAX


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise TypeError("expected true or false")


def _date(value: object) -> date:
    if isinstance(value, datetime):
        raise TypeError("expected a date without a time")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value.strip())
    raise TypeError("expected an ISO 8601 date")


def _datetime(value: object) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise TypeError("expected an ISO 8601 date and time")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a time zone is required, e.g. 2026-01-31T08:00:00Z")
    try:
        # Stored in UTC: 9999-12-31T23:59:59-14:00 is past the calendar's last day there.
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range: the time in UTC is outside years 1 to 9999") from None
    return value


_COERCE = {
    AttrType.STRING: _string,
    AttrType.INTEGER: _integer,
    AttrType.BOOLEAN: _boolean,
    AttrType.DATE: _date,
    AttrType.DATETIME: _datetime,
}


def to_json(value: object) -> object:
    """A stored value as JSON (dates in ISO 8601; lists element-wise)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def is_empty(value: object) -> bool:
    """None, an empty string or an empty list."""
    return value is None or value == "" or (isinstance(value, list | tuple) and not value)
