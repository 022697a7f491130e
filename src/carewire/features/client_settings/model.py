"""Client settings data: namespaces, limits, errors and answer values (``urn:carewire:settings:0``).

The namespaces and element names of the three IQs, the limits applied to
requests and reads, :class:`UnknownPatientError`, the frozen values the
service returns and the XML builders render, and the helpers both use to read
setting rows and format record values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from carewire.errors import NotFoundError

NS_SETTINGS = "urn:carewire:settings:0"
NS_ROSTER = "urn:carewire:roster:0"
NS_PATIENT = "urn:carewire:patient:0"
SETTINGS = f"{{{NS_SETTINGS}}}settings"
ROSTER = f"{{{NS_ROSTER}}}roster"
PATIENT = f"{{{NS_PATIENT}}}patient"
#: ``<break-glass mrn='…'><reason>…</reason></break-glass>``: read a patient off the care team.
BREAK_GLASS = f"{{{NS_PATIENT}}}break-glass"

#: The patient attributes always reported first: (label, attribute path).
DEFAULT_DETAILS = (
    ("First Name", "first_name"),
    ("Last Name", "last_name"),
    ("Date of Birth", "dob"),
    ("Sex", "sex"),
    ("Facility Admit Date", "admit_date"),
)
#: Longest MRN accepted in a patient request.
MAX_MRN = 256


class UnknownPatientError(NotFoundError):
    """No patient has this MRN."""

    code = "unknown-patient"


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientLocation:
    """Where a patient (or a bed or room) is, and the text clients show for it.

    Attributes:
        facility: The facility's name ("" when unknown).
        unit: The unit's name.
        room: The room number.
        bed: The bed number.
        text: ``UNIT ROOM-BED`` (``FACILITY UNIT ROOM-BED`` with Multiple
            Facility on) after the patient location transformations.
    """

    facility: str = ""
    unit: str = ""
    room: str = ""
    bed: str = ""
    text: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceState:
    """A facility-defined presence (PRESENCE_STATES record)."""

    facility: str
    show: str
    status: str
    duration: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterUser:
    """A user assigned to a location in a role."""

    jid: str
    name: str
    level: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterRole:
    """The users of one functional role (and, when both levels exist, one level) at a location."""

    name: str  # as displayed, with the level prefix when there is one
    role: str  # the functional role's own name
    users: tuple[RosterUser, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterLocation:
    """A location of a unit and its roles."""

    location_id: str
    roles: tuple[RosterRole, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterUnit:
    """A unit as the roster shows it."""

    name: str  # as displayed (facility prefix with Multiple Facility)
    unit: str
    facility: str
    locations: tuple[RosterLocation, ...]


def setting_rows(value: object) -> list[Mapping[str, object]]:
    """The rows of a table setting (anything that is not a row is skipped)."""
    if not isinstance(value, list | tuple):
        return []
    return [row for row in value if isinstance(row, Mapping)]


def format_value(value: object) -> str:
    """A record value as text: dates in ISO 8601 (times in UTC), lists comma-separated."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        utc = value.astimezone(UTC) if value.tzinfo is not None else value
        return utc.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v) for v in value)
    return str(value)
