"""Organisations, their settings, affiliations with permissions, communities and groups."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from carewire.directory.model.base import (
    DEFAULT_PIN_LENGTH,
    DEFAULT_SOUND_SECONDS,
    DEFAULT_TIME_ZONE,
    AffiliationId,
    GroupId,
    OrganisationId,
)

# -- organisations -------------------------------------------------------------------------


class OrgKind(enum.StrEnum):
    """A hospital has its own on-premises system and a community; a practice has neither."""

    HOSPITAL = "hospital"
    PRACTICE = "practice"


class MessageExpiration(enum.StrEnum):
    """Message Expiration Time: how long clients keep a message (the sender's organisation's)."""

    MINUTES_30 = "30m"
    HOUR_1 = "1h"
    HOURS_2 = "2h"
    HOURS_4 = "4h"
    HOURS_8 = "8h"
    HOURS_12 = "12h"
    DAY_1 = "1d"
    DAYS_2 = "2d"
    DAYS_3 = "3d"
    DAYS_7 = "7d"
    WEEKS_2 = "2w"
    DAYS_30 = "30d"

    @property
    def label(self) -> str:
        """The dropdown's text ("7 Days")."""
        return _EXPIRATION_LABELS[self]

    @property
    def duration(self) -> timedelta:
        """How long it is."""
        number, unit = int(self.value[:-1]), self.value[-1]
        return timedelta(**{_UNITS[unit]: number})


_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_EXPIRATION_LABELS = {
    MessageExpiration.MINUTES_30: "30 Minutes",
    MessageExpiration.HOUR_1: "1 Hour",
    MessageExpiration.HOURS_2: "2 Hours",
    MessageExpiration.HOURS_4: "4 Hours",
    MessageExpiration.HOURS_8: "8 Hours",
    MessageExpiration.HOURS_12: "12 Hours",
    MessageExpiration.DAY_1: "1 Day",
    MessageExpiration.DAYS_2: "2 Days",
    MessageExpiration.DAYS_3: "3 Days",
    MessageExpiration.DAYS_7: "7 Days",
    MessageExpiration.WEEKS_2: "2 Weeks",
    MessageExpiration.DAYS_30: "30 Days",
}
DEFAULT_EXPIRATION = MessageExpiration.DAYS_7


class RetentionUnit(enum.StrEnum):
    """The unit of the Message retention period."""

    DAYS = "days"
    WEEKS = "weeks"
    MONTHS = "months"
    YEARS = "years"

    @property
    def label(self) -> str:
        """The dropdown's text ("Years")."""
        return self.value.capitalize()


#: The longest retention period, in days (a value is refused beyond it).
MAX_RETENTION_DAYS = 3650
RETENTION_UNIT_DAYS = {
    RetentionUnit.DAYS: 1,
    RetentionUnit.WEEKS: 7,
    RetentionUnit.MONTHS: 30,
    RetentionUnit.YEARS: 365,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class OrganisationSettings:
    """Default time zone and the Secure Message Options of an organisation.

    Attributes:
        default_time_zone: IANA name used for time stamps of its members' messages.
        whole_org_messaging: "Members can send messages to whole organization".
        non_user_messaging: "Allow messages to non-users via email and SMS".
        high_priority_sound_seconds: One of :data:`SOUND_SECONDS`.
        message_expiration: Message Expiration Time.
        retention_value: Message retention period (None: never purge).
        retention_unit: Its unit (None exactly when ``retention_value`` is).
        pin_length: Digits of a PIN in this organisation, 4 or 6.
    """

    default_time_zone: str = DEFAULT_TIME_ZONE
    whole_org_messaging: bool = False
    non_user_messaging: bool = False
    high_priority_sound_seconds: int = DEFAULT_SOUND_SECONDS
    message_expiration: MessageExpiration = DEFAULT_EXPIRATION
    retention_value: int | None = None
    retention_unit: RetentionUnit | None = None
    pin_length: int = DEFAULT_PIN_LENGTH


@dataclass(frozen=True, slots=True, kw_only=True)
class Organisation:
    """A hospital or practice ("Group ID" is ``id``; "Group name" is ``name``).

    Attributes:
        id: System-assigned, shown to system administrators only.
        kind: Hospital or practice.
        name: Unique, case-insensitive.
        office_number: The main contact number.
        voice_number: Assigned by a telephony provider ("" when none is configured).
        settings: Time zone and message options.
        created_at: When it was created.
        updated_at: When it last changed.
    """

    id: OrganisationId
    kind: OrgKind
    name: str
    office_number: str
    voice_number: str = ""
    settings: OrganisationSettings = field(default_factory=OrganisationSettings)
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OrganisationRef:
    """An organisation's name only (the Invite Organization type-ahead)."""

    id: OrganisationId
    kind: OrgKind
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminInvitee:
    """The first administrator of a new organisation, invited by e-mail."""

    email: str
    first_name: str
    last_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NewHospital:
    """What Create Hospital asks (system administrators only)."""

    name: str
    office_number: str
    settings: OrganisationSettings = field(default_factory=OrganisationSettings)
    admin: AdminInvitee


@dataclass(frozen=True, slots=True, kw_only=True)
class NewPractice:
    """What Create Practice asks: details, its administrator and initial standard users.

    Attributes:
        hospital_id: The hospital creating it (affiliated with it at once).
        name: Practice Name.
        office_number: Office number.
        admin: The Practice Administrator (invited by e-mail).
        emails: Initial Standard Users, typed (spaces or line breaks between them).
        csv_text: Initial Standard Users, as an uploaded CSV file.
    """

    hospital_id: OrganisationId
    name: str
    office_number: str
    admin: AdminInvitee
    emails: str = ""
    csv_text: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrganisationUpdate:
    """Changes on Update Organization (None: unchanged)."""

    name: str | None = None
    office_number: str | None = None
    settings: OrganisationSettings | None = None


class MemberStatus(enum.StrEnum):
    """A member's status on Update Organization (from their clinical presence)."""

    AVAILABLE = "Available"
    BUSY = "Busy"
    NOT_AVAILABLE = "Not Available"
    NONE = "None"


# -- affiliations, permissions, communities ----------------------------------------------------


class AffiliationStatus(enum.StrEnum):
    """An affiliation invitation's state (an active one is an affiliation)."""

    PENDING = "pending"
    ACTIVE = "active"
    DECLINED = "declined"


class PermissionMode(enum.StrEnum):
    """Association Permissions: which of my users may communicate with the affiliate."""

    NONE = "none"  # no-one ("temporarily ended")
    ORGANISATION = "organisation"  # everyone (the default)
    GROUPS = "groups"  # members of the chosen groups


@dataclass(frozen=True, slots=True, kw_only=True)
class Permission:
    """One side's permission toward an affiliate."""

    mode: PermissionMode = PermissionMode.ORGANISATION
    groups: frozenset[GroupId] = frozenset()


EVERYONE = Permission()
NO_ONE = Permission(mode=PermissionMode.NONE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Affiliation:
    """An affiliation (or an invitation to one) between two organisations.

    Attributes:
        id: Its id (in the acceptance link).
        inviter_id: The organisation that invited.
        invitee_id: The organisation invited.
        status: Pending, active or declined.
        expires_at: When the pending invitation's link stops working.
        invited_by: The actor who invited.
        created_at: When it was sent.
        accepted_at: When it was accepted (None: not yet).
        permissions: Each side's permission toward the other, by organisation id.
    """

    id: AffiliationId
    inviter_id: OrganisationId
    invitee_id: OrganisationId
    status: AffiliationStatus
    expires_at: datetime
    invited_by: str
    created_at: datetime
    accepted_at: datetime | None = None
    permissions: Mapping[OrganisationId, Permission] = field(default_factory=dict)

    def other(self, organisation_id: int) -> OrganisationId:
        """The organisation on the other side from ``organisation_id``."""
        return self.invitee_id if organisation_id == self.inviter_id else self.inviter_id

    def permission_of(self, organisation_id: int) -> Permission:
        """``organisation_id``'s permission toward the other side (everyone by default)."""
        return self.permissions.get(OrganisationId(organisation_id), EVERYONE)


@dataclass(frozen=True, slots=True, kw_only=True)
class AffiliationView:
    """One row of "Organizations with whom we can communicate", seen from one side.

    Attributes:
        affiliation: The affiliation.
        other: The organisation on the other side.
        is_incoming: A pending invitation the other side sent us.
        permission: Our permission toward them.
        label: What the list shows: the name, "(pending)" appended while
            pending, or the invited administrator's e-mail for a practice whose
            administrator has not registered yet.
    """

    affiliation: Affiliation
    other: OrganisationRef
    is_incoming: bool = False
    permission: Permission = EVERYONE
    label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AffiliationLink:
    """What the Invitation (accept) page shows."""

    affiliation: Affiliation
    inviter: OrganisationRef
    invitee: OrganisationRef
    groups: tuple[Group, ...]  # the invitee's groups, for "Only some of your users"


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptChoice:
    """The answer on the Invitation page: all users, or a group (existing or new)."""

    group_id: GroupId | None = None
    new_group_name: str | None = None

    @property
    def is_all_users(self) -> bool:
        """ "All your users"."""
        return self.group_id is None and not self.new_group_name


@dataclass(frozen=True, slots=True, kw_only=True)
class Community:
    """A hospital and the organisations actively affiliated with it (one level)."""

    hospital: OrganisationRef
    members: tuple[OrganisationRef, ...]  # the hospital first, then by name


# -- groups --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    """A named subset of an organisation's users (a "Sub group").

    Attributes:
        id: Its id.
        organisation_id: Its organisation.
        name: 1–64 characters, unique in the organisation (case-insensitive).
        slug: Its address's localpart (``<slug>@groups.DOMAIN``).
        whole_group_messaging: "Members can send messages to whole group".
        member_count: How many members it has.
        created_at: When it was created.
        updated_at: When it last changed.
    """

    id: GroupId
    organisation_id: OrganisationId
    name: str
    slug: str
    whole_group_messaging: bool = False
    member_count: int = 0
    created_at: datetime
    updated_at: datetime
