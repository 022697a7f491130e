"""Checks of the values people type: names, phones, time zones, profiles, settings, pages.

Each check returns the value as stored (trimmed, lower-cased where it
matters) or raises :class:`~carewire.directory.model.InvalidFieldError`
naming the form's field, with a sentence a person can act on.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from dataclasses import replace

from carewire.directory.model import (
    ADDRESS_MAX,
    CREDENTIALS_MAX,
    FREE_TEXT_MAX,
    GROUP_NAME_MAX,
    JOB_TITLE_MAX,
    MAX_PAGE_SIZE,
    MAX_RETENTION_DAYS,
    NAME_MAX,
    ORG_NAME_MAX,
    PHONE_MAX,
    PHONE_MIN,
    PHOTO_MAX,
    PIN_LENGTHS,
    RETENTION_UNIT_DAYS,
    SOUND_SECONDS,
    TITLE_MAX,
    URL_MAX,
    InvalidFieldError,
    OrganisationSettings,
    PageRequest,
    Profile,
)
from carewire.directory.policy import normalize_email

_PHONE = re.compile(r"^[0-9()+\-. ]+$")
_PHOTO_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def text(value: str, field: str, *, label: str, limit: int, required: bool = False) -> str:
    """A one-line text: trimmed, inner whitespace collapsed, printable, at most ``limit``."""
    value = " ".join(value.split())
    if required and not value:
        raise InvalidFieldError(field, f"{label} is required.")
    if len(value) > limit:
        raise InvalidFieldError(field, f"{label} has at most {limit} characters.")
    if not value.isprintable():
        raise InvalidFieldError(field, f"{label} holds characters that cannot be shown.")
    return value


def phone(value: str, field: str, *, label: str, required: bool = False) -> str:
    """A phone number: 7–20 of digits, spaces and ``()+-.`` (or empty when not required)."""
    value = value.strip()
    if not value and not required:
        return ""
    digits = sum(c.isdigit() for c in value)
    if not (PHONE_MIN <= len(value) <= PHONE_MAX) or not _PHONE.match(value) or digits < 7:
        raise InvalidFieldError(
            field,
            f"{label} must be a phone number of {PHONE_MIN}–{PHONE_MAX} characters, "
            "e.g. (408) 882-5830.",
        )
    return value


def time_zone(value: str, field: str = "time_zone") -> str:
    """An IANA time zone name (``America/New_York``)."""
    value = value.strip()
    if value not in _zones():
        raise InvalidFieldError(field, f"{value!r} is not a known time zone (e.g. US/Pacific).")
    return value


def url(value: str, field: str, *, label: str) -> str:
    """An http(s) URL, or empty."""
    value = value.strip()
    if value and (len(value) > URL_MAX or not re.match(r"^https?://\S+$", value)):
        raise InvalidFieldError(field, f"{label} must be an http:// or https:// address.")
    return value


def free_text(value: str, field: str, *, label: str) -> str:
    """A multi-line text of at most :data:`FREE_TEXT_MAX` characters."""
    value = value.strip()
    if len(value) > FREE_TEXT_MAX:
        raise InvalidFieldError(field, f"{label} has at most {FREE_TEXT_MAX} characters.")
    return value


def profile(p: Profile) -> Profile:
    """A profile as stored, every field checked."""
    return replace(
        p,
        title=text(p.title, "title", label="Title", limit=TITLE_MAX),
        first_name=text(
            p.first_name, "first_name", label="First Name", limit=NAME_MAX, required=True
        ),
        last_name=text(p.last_name, "last_name", label="Last Name", limit=NAME_MAX, required=True),
        middle_name=text(p.middle_name, "middle_name", label="Middle Name", limit=NAME_MAX),
        credentials=text(p.credentials, "credentials", label="Credentials", limit=CREDENTIALS_MAX),
        job_title=text(p.job_title, "job_title", label="Job Title", limit=JOB_TITLE_MAX),
        email=normalize_email(p.email),
        cell_number=phone(p.cell_number, "cell_number", label="Cell (Private)"),
        address1=text(p.address1, "address1", label="Address 1", limit=ADDRESS_MAX),
        address2=text(p.address2, "address2", label="Address 2", limit=ADDRESS_MAX),
        city=text(p.city, "city", label="City", limit=NAME_MAX),
        state=text(p.state, "state", label="State", limit=NAME_MAX),
        zip=text(p.zip, "zip", label="Zip", limit=16),
        office_phone=phone(p.office_phone, "office_phone", label="Office Phone"),
        office_fax=phone(p.office_fax, "office_fax", label="Office Fax"),
        time_zone=time_zone(p.time_zone),
        specialty=text(p.specialty, "specialty", label="Specialty", limit=ADDRESS_MAX),
        medical_school=text(
            p.medical_school, "medical_school", label="Medical School", limit=ADDRESS_MAX
        ),
        residency=text(p.residency, "residency", label="Residency", limit=ADDRESS_MAX),
        fellowship=text(p.fellowship, "fellowship", label="Fellowship", limit=ADDRESS_MAX),
        practice_description=free_text(
            p.practice_description, "practice_description", label="Practice Description"
        ),
        home_page_url=url(p.home_page_url, "home_page_url", label="Home Page URL"),
        photo=_photo(p.photo),
        photo_type=_photo_type(p.photo, p.photo_type),
    )


def _photo(value: str) -> str:
    value = value.strip()
    if len(value) > PHOTO_MAX:
        raise InvalidFieldError(
            "photo", f"The photo is larger than {PHOTO_MAX * 3 // 4 // 1024} KB."
        )
    if value and not re.fullmatch(r"[A-Za-z0-9+/=\s]+", value):
        raise InvalidFieldError("photo", "The photo must be base64 encoded.")
    return value


def _photo_type(photo: str, value: str) -> str:
    value = value.strip().lower()
    if not photo.strip():
        return ""
    if value not in _PHOTO_TYPES:
        raise InvalidFieldError("photo_type", "The photo must be a PNG, JPEG, GIF or WebP image.")
    return value


def organisation_name(value: str) -> str:
    """Group name (an organisation's name): required, at most :data:`ORG_NAME_MAX`."""
    return text(value, "name", label="Group name", limit=ORG_NAME_MAX, required=True)


def office_number(value: str) -> str:
    """Office number: a required phone number."""
    return phone(value, "office_number", label="Office number", required=True)


def settings(s: OrganisationSettings) -> OrganisationSettings:
    """The Secure Message Options, checked against their choice lists."""
    if s.high_priority_sound_seconds not in SOUND_SECONDS:
        raise InvalidFieldError(
            "high_priority_sound_seconds",
            "High Priority Notification Sound Length is one of "
            f"{', '.join(map(str, SOUND_SECONDS))} seconds.",
        )
    if s.pin_length not in PIN_LENGTHS:
        raise InvalidFieldError("pin_length", "A PIN has 4 or 6 digits.")
    if (s.retention_value is None) != (s.retention_unit is None):
        raise InvalidFieldError(
            "retention_value",
            "Give both a retention period and its unit, or neither (never purge).",
        )
    if s.retention_value is not None and s.retention_unit is not None:
        days = s.retention_value * RETENTION_UNIT_DAYS[s.retention_unit]
        if s.retention_value < 1 or days > MAX_RETENTION_DAYS:
            raise InvalidFieldError(
                "retention_value",
                f"The retention period is a whole number from 1 day to {MAX_RETENTION_DAYS} days.",
            )
    return replace(s, default_time_zone=time_zone(s.default_time_zone, "default_time_zone"))


def group_name(value: str) -> str:
    """A group's name: 1–64 characters."""
    return text(value, "name", label="Group name", limit=GROUP_NAME_MAX, required=True)


def page(request: PageRequest | None, default_limit: int) -> PageRequest:
    """A page request within bounds (None: the first page of ``default_limit``)."""
    if request is None:
        return PageRequest(offset=0, limit=default_limit)
    if request.offset < 0:
        raise InvalidFieldError("offset", "The offset cannot be negative.")
    if not 1 <= request.limit <= MAX_PAGE_SIZE:
        raise InvalidFieldError("limit", f"A page has 1 to {MAX_PAGE_SIZE} rows.")
    return request
