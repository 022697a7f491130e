"""File sharing's input checks: file names, content types, and a PUT against its slot.

Pure functions of their arguments (no I/O, no clock): what XEP-0363 §4 and
§5 ask of slot requests and uploads, with the service's own limits on names.
"""

from __future__ import annotations

from datetime import datetime

from carewire.uploads.model import UploadError, UploadRecord, UploadState

#: Longest filename accepted (bytes of UTF-8).
MAX_FILENAME = 255
DEFAULT_TYPE = "application/octet-stream"
_FORBIDDEN_NAME = frozenset("/\\\x00")


def check_filename(name: str) -> str:
    """``name`` if it is a usable file name.

    Raises:
        UploadError: Empty, too long, a path, or with control characters (``bad-request``).
    """
    if not name or name in (".", "..") or len(name.encode("utf-8")) > MAX_FILENAME:
        raise UploadError("the filename must be 1 to 255 bytes", code="bad-request")
    if any(c in _FORBIDDEN_NAME or ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise UploadError(
            "the filename must not contain '/', '\\' or control characters", code="bad-request"
        )
    return name


def check_content_type(value: str | None) -> str:
    """The slot's Content-Type (``application/octet-stream`` when none is given).

    Raises:
        UploadError: Not a ``type/subtype`` token (``bad-request``).
    """
    if not value:
        return DEFAULT_TYPE
    value = value.strip().lower()
    main, slash, rest = value.partition("/")
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789!#$&-^_.+;= ")
    if not slash or not main or not rest or len(value) > 255 or not set(value) <= allowed | {"/"}:
        raise UploadError(f"not a content type: {value[:64]!r}", code="bad-request")
    return value


def same_type(declared: str, slot: str) -> bool:
    """Whether a PUT's Content-Type is the slot's (parameters and case aside)."""
    return declared.split(";")[0].strip().lower() == slot.split(";")[0].strip().lower()


def check_put(
    record: UploadRecord, now: datetime, *, length: int | None, content_type: str | None
) -> None:
    """Refuse a PUT to ``record`` that its slot does not allow (nothing read yet).

    Raises:
        UploadError: ``conflict``, ``expired``, ``length-required``, ``too-large``,
            ``size-mismatch`` or ``type-mismatch``.
    """
    if record.state is not UploadState.SLOT:
        raise UploadError("this upload slot was used already", code="conflict")
    if record.slot_expires_at <= now:
        raise UploadError("this upload slot has expired", code="expired")
    # XEP-0363 §5: "The upload service MUST reject the file upload if the
    # Content-Length does not match the size of the slot request."
    if length is None:
        raise UploadError("a Content-Length is required", code="length-required")
    if length != record.size:
        raise UploadError(
            f"Content-Length {length} is not the slot's size {record.size}",
            code="too-large" if length > record.size else "size-mismatch",
        )
    # §5: "The service SHOULD reject the file if the Content-Type has been
    # specified beforehand and does not match."
    if not same_type(content_type or DEFAULT_TYPE, record.content_type):
        raise UploadError(
            f"Content-Type is not the slot's ({record.content_type})", code="type-mismatch"
        )
