"""Reading the organisation forms (Update Organization, Create Hospital, Create Practice).

The choice lists are the plan's: sound lengths 5/10/15/30/60 seconds,
expiration from 30 minutes to 30 days, retention in days/weeks/months/years
(empty: never purge), PINs of 4 or 6 digits. Values outside them are refused
by the directory service with a sentence naming the field.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Mapping

from carewire.directory.model import (
    PIN_LENGTHS,
    SOUND_SECONDS,
    AdminInvitee,
    InvalidFieldError,
    MessageExpiration,
    Organisation,
    OrganisationSettings,
    RetentionUnit,
)
from carewire.web.console.directory.common import text

#: (value, label) of the Message Expiration Time dropdown.
EXPIRATIONS: tuple[tuple[str, str], ...] = tuple((e.value, e.label) for e in MessageExpiration)
#: (value, label) of the retention unit dropdown.
RETENTION_UNITS: tuple[tuple[str, str], ...] = tuple((u.value, u.label) for u in RetentionUnit)
#: (value, label) of the High Priority Notification Sound Length dropdown.
SOUNDS: tuple[tuple[str, str], ...] = tuple((str(s), f"{s} Seconds") for s in SOUND_SECONDS)
#: (value, label) of the PIN length dropdown (6 recommended: NIST SP 800-63B).
PIN_CHOICES: tuple[tuple[str, str], ...] = tuple(
    (str(n), f"{n} digits" + (" (recommended)" if n == 6 else "")) for n in PIN_LENGTHS
)


@functools.cache
def time_zones() -> tuple[str, ...]:
    """Every IANA time zone name, sorted (the Default/Select Time Zone dropdowns)."""
    return tuple(sorted(zoneinfo.available_timezones()))


def _whole(value: str, field: str, label: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise InvalidFieldError(field, f"{label} must be a whole number.") from None


def _choice(value: str, field: str, label: str, choices: tuple[tuple[str, str], ...]) -> str:
    if value not in {v for v, _ in choices}:
        raise InvalidFieldError(field, f"Choose a value from the list for {label}.")
    return value


def yes(form: Mapping[str, object], name: str) -> bool:
    """A Yes/No dropdown (or a checkbox) sent as ``yes``/``on``."""
    return text(form, name) in ("yes", "on", "true")


def settings_of(form: Mapping[str, object]) -> OrganisationSettings:
    """The Secure Message Options and time zone a form sent.

    Raises:
        InvalidFieldError: A value that is not a number or not in its list.
    """
    raw_value = text(form, "retention_value").strip()
    raw_unit = text(form, "retention_unit").strip()
    retention_value = (
        _whole(raw_value, "retention_value", "Message retention period") if raw_value else None
    )
    retention_unit = None
    if retention_value is not None:
        retention_unit = RetentionUnit(
            _choice(raw_unit, "retention_unit", "the retention unit", RETENTION_UNITS)
        )
    sound = _choice(
        text(form, "high_priority_sound_seconds"),
        "high_priority_sound_seconds",
        "High Priority Notification Sound Length",
        SOUNDS,
    )
    expiration = _choice(
        text(form, "message_expiration"),
        "message_expiration",
        "Message Expiration Time",
        EXPIRATIONS,
    )
    pin_length = _choice(text(form, "pin_length"), "pin_length", "PIN length", PIN_CHOICES)
    return OrganisationSettings(
        default_time_zone=text(form, "default_time_zone").strip(),
        whole_org_messaging=yes(form, "whole_org_messaging"),
        non_user_messaging=yes(form, "non_user_messaging"),
        high_priority_sound_seconds=int(sound),
        message_expiration=MessageExpiration(expiration),
        retention_value=retention_value,
        retention_unit=retention_unit,
        pin_length=int(pin_length),
    )


def settings_values(s: OrganisationSettings) -> dict[str, str]:
    """What the settings fields show for stored settings."""
    return {
        "default_time_zone": s.default_time_zone,
        "whole_org_messaging": "yes" if s.whole_org_messaging else "no",
        "non_user_messaging": "yes" if s.non_user_messaging else "no",
        "high_priority_sound_seconds": str(s.high_priority_sound_seconds),
        "message_expiration": s.message_expiration.value,
        "retention_value": "" if s.retention_value is None else str(s.retention_value),
        "retention_unit": s.retention_unit.value if s.retention_unit else RetentionUnit.YEARS,
        "pin_length": str(s.pin_length),
    }


def org_values(org: Organisation) -> dict[str, str]:
    """What Update Organization shows for an organisation."""
    return {
        "name": org.name,
        "office_number": org.office_number,
        **settings_values(org.settings),
    }


#: The form fields of the details and options (a refused form is shown as it was sent).
ORG_FIELDS = (
    "name",
    "office_number",
    "default_time_zone",
    "whole_org_messaging",
    "non_user_messaging",
    "high_priority_sound_seconds",
    "message_expiration",
    "retention_value",
    "retention_unit",
    "pin_length",
)
ADMIN_FIELDS = ("admin_first_name", "admin_last_name", "admin_email")


def sent_values(form: Mapping[str, object], names: tuple[str, ...]) -> dict[str, str]:
    """The fields as sent, to show a refused form again."""
    return {n: text(form, n) for n in names}


def admin_of(form: Mapping[str, object]) -> AdminInvitee:
    """The first administrator a Create Hospital or Create Practice form names.

    Raises:
        InvalidFieldError: The e-mail address is empty.
    """
    email = text(form, "admin_email").strip()
    if not email:
        raise InvalidFieldError("admin_email", "Email Address is required.")
    return AdminInvitee(
        email=email,
        first_name=text(form, "admin_first_name"),
        last_name=text(form, "admin_last_name"),
    )
