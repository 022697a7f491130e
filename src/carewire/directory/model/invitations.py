"""User invitations: statuses and their transition table, CSV rows, registration."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from carewire.directory.model.base import (
    DEFAULT_PIN_LENGTH,
    DEFAULT_TIME_ZONE,
    InvitationId,
    OrganisationId,
)
from carewire.directory.model.orgs import Organisation
from carewire.directory.model.users import StaffType

# -- invitations ---------------------------------------------------------------------------


class InvitationStatus(enum.StrEnum):
    """Status of a user invitation, exactly as the Invitations page shows it."""

    PENDING = "Pending"
    EMAIL_SENT = "Email Sent"
    FAILURE = "Failure"
    USER_CLICKED = "User Clicked"
    REGISTERED = "Registered"


class InvitationEvent(enum.StrEnum):
    """What happens to an invitation."""

    MAIL_ACCEPTED = "mail-accepted"  # the mailer took the message
    MAIL_REFUSED = "mail-refused"  # the mailer refused it
    CLICKED = "clicked"  # the registration link was opened
    REGISTERED = "registered"  # the invitee registered
    RESENT = "resent"  # an administrator resent it (new token)


_S = InvitationStatus
_E = InvitationEvent
#: The transition table: ``(status, event) → status``; a pair not in it is refused.
INVITATION_TRANSITIONS: Mapping[tuple[InvitationStatus, InvitationEvent], InvitationStatus] = {
    (_S.PENDING, _E.MAIL_ACCEPTED): _S.EMAIL_SENT,
    (_S.PENDING, _E.MAIL_REFUSED): _S.FAILURE,
    (_S.PENDING, _E.CLICKED): _S.USER_CLICKED,
    (_S.EMAIL_SENT, _E.CLICKED): _S.USER_CLICKED,
    (_S.USER_CLICKED, _E.CLICKED): _S.USER_CLICKED,
    (_S.USER_CLICKED, _E.REGISTERED): _S.REGISTERED,
    (_S.PENDING, _E.RESENT): _S.PENDING,
    (_S.EMAIL_SENT, _E.RESENT): _S.PENDING,
    (_S.FAILURE, _E.RESENT): _S.PENDING,
    (_S.USER_CLICKED, _E.RESENT): _S.PENDING,
}
#: Statuses whose link may be used to register.
OPEN_STATUSES = frozenset({_S.PENDING, _S.EMAIL_SENT, _S.USER_CLICKED})


@dataclass(frozen=True, slots=True, kw_only=True)
class Invitation:
    """An invitation to register in an organisation.

    Attributes:
        id: Its id.
        organisation_id: The inviting organisation.
        email: The invitee's address (lower-case).
        first_name: From the CSV ("" otherwise).
        last_name: From the CSV.
        department: From the CSV: the group the invitee joins on registration.
        is_admin: The invitee becomes an administrator of the organisation.
        status: Its status.
        expires_at: When its link stops working.
        invited_by: The actor who sent it.
        created_at: When it was made.
        updated_at: "Last Updated": the last status change.
        login: The login registered through it (None until Registered).
    """

    id: InvitationId
    organisation_id: OrganisationId
    email: str
    first_name: str = ""
    last_name: str = ""
    department: str = ""
    is_admin: bool = False
    status: InvitationStatus = InvitationStatus.PENDING
    expires_at: datetime
    invited_by: str
    created_at: datetime
    updated_at: datetime
    login: str | None = None


class InvitationSortKey(enum.StrEnum):
    """The Invitations table's sort columns."""

    UPDATED = "updated"  # newest first by default
    EMAIL = "email"
    LAST_NAME = "last_name"
    FIRST_NAME = "first_name"
    STATUS = "status"


@dataclass(frozen=True, slots=True, kw_only=True)
class InvitationFilter:
    """The Invitations page's filters: case-insensitive substrings, and a status (None: All)."""

    email: str = ""
    first_name: str = ""
    last_name: str = ""
    status: InvitationStatus | None = None
    sort: InvitationSortKey = InvitationSortKey.UPDATED
    is_descending: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class CsvRow:
    """One data row of an invitation or group CSV ("" for empty cells)."""

    line: int  # 1-based line number in the file (the header is line 1)
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    department: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CsvProblem:
    """A row that was left out, and why."""

    line: int
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InviteRequest:
    """What Invite Users submits: typed addresses, a CSV file, or both (merged).

    Attributes:
        emails: Addresses separated by spaces or line breaks (commas and
            semicolons too). One malformed address refuses the whole request.
        csv_text: A CSV upload: bad rows are reported by line, good ones go in.
        is_admin: Invite administrators of the organisation.
    """

    emails: str = ""
    csv_text: str | None = None
    is_admin: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class InviteResult:
    """What one invite request did.

    Attributes:
        invited: New invitations (each mailed: see its status).
        resent: Pending or failed invitations to the same addresses, sent again.
        existing_users: Addresses of registered users, skipped.
        duplicates: Addresses given more than once (case-insensitively), sent once.
        problems: CSV rows left out.
        groups_created: Groups the Department column created.
    """

    invited: tuple[Invitation, ...] = ()
    resent: tuple[Invitation, ...] = ()
    existing_users: tuple[str, ...] = ()
    duplicates: tuple[str, ...] = ()
    problems: tuple[CsvProblem, ...] = ()
    groups_created: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class BulkResult:
    """What a bulk action on invitations did."""

    done: tuple[InvitationId, ...] = ()
    skipped: tuple[InvitationId, ...] = ()  # Registered (not resent) or not found


@dataclass(frozen=True, slots=True, kw_only=True)
class PracticeCreated:
    """Create Practice's outcome: the practice and what its invitations did."""

    practice: Organisation
    admin_invitation: Invitation
    users: InviteResult


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationInfo:
    """What the registration page shows for a valid link.

    Attributes:
        organisation: The inviting organisation's name.
        email: The invitee's address (fixed).
        login: The suggested (or, for a user an administrator created, the fixed) login.
        is_login_fixed: The login cannot be chosen.
        first_name: Pre-filled.
        last_name: Pre-filled.
        time_zone: The organisation's default.
        pin_length: Digits the PIN must have.
        is_admin: The invitee becomes an administrator.
        expires_at: When the link stops working.
    """

    organisation: str
    email: str
    login: str
    is_login_fixed: bool = False
    first_name: str = ""
    last_name: str = ""
    time_zone: str = DEFAULT_TIME_ZONE
    pin_length: int = DEFAULT_PIN_LENGTH
    is_admin: bool = False
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationForm:
    """What the registration page submits (the service checks each pair matches)."""

    login: str
    first_name: str
    last_name: str
    cell_number: str
    password: str
    password_confirm: str
    pin: str
    pin_confirm: str
    time_zone: str = ""  # "" : the organisation's default
    staff_type: StaffType = StaffType.PHYSICIAN


@dataclass(frozen=True, slots=True, kw_only=True)
class PinResetInfo:
    """What the PIN-reset page shows for a valid link."""

    login: str
    pin_length: int
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupImportResult:
    """What a group CSV import did."""

    created: tuple[str, ...] = ()
    existing: tuple[str, ...] = ()
    members_added: int = 0
    problems: tuple[CsvProblem, ...] = ()
