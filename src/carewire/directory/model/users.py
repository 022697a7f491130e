"""Directory users: profiles, staff types, login states, creating and changing users."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from carewire.directory.model.base import DEFAULT_TIME_ZONE, GroupId, OrganisationId
from carewire.directory.model.orgs import MemberStatus

# -- users ---------------------------------------------------------------------------------


class StaffType(enum.StrEnum):
    """The profile's User Type."""

    PHYSICIAN = "Physician"
    NON_PHYSICIAN = "Non-Physician"


class LoginState(enum.StrEnum):
    """What Can Login shows."""

    ENABLED = "Login Enabled"
    DISABLED = "Login Disabled"
    LOCKED = "Invalid login hard limit reached. Delaying login attempts."


def display_name(first_name: str, last_name: str, credentials: str = "") -> str:
    """ "First Last, Credentials" (the seed shows credentials after the name: "Wei Chen, MD")."""
    name = f"{first_name} {last_name}".strip()
    return f"{name}, {credentials}" if credentials and name else name


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """The fields of Create/Update User Profile ("" when not given).

    First Name, Last Name and Email are "admin only"; Cell (Private) is never
    shown to other users. Physician fields are kept when the user is converted
    to Non-Physician (hidden, restored when converted back).
    """

    title: str = ""
    first_name: str
    last_name: str
    middle_name: str = ""
    credentials: str = ""
    job_title: str = ""
    email: str
    cell_number: str = ""
    address1: str = ""
    address2: str = ""
    city: str = ""
    state: str = ""
    zip: str = ""
    office_phone: str = ""
    office_fax: str = ""
    time_zone: str = DEFAULT_TIME_ZONE
    staff_type: StaffType = StaffType.PHYSICIAN
    specialty: str = ""
    medical_school: str = ""
    residency: str = ""
    fellowship: str = ""
    practice_description: str = ""
    home_page_url: str = ""
    photo: str = ""  # base64, as the USERS record keeps it
    photo_type: str = ""  # its content type (image/png, image/jpeg)

    @property
    def reference_name(self) -> str:
        """ "First Last", as the USERS record's ``reference_name`` and roster items show it."""
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def display_name(self) -> str:
        """How others see the user in rosters and search: "First Last, Credentials"."""
        return display_name(self.first_name, self.last_name, self.credentials)

    @property
    def sort_name(self) -> str:
        """ "Last, First", as member lists show it."""
        return f"{self.last_name}, {self.first_name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectoryUser:
    """A user of an organisation: an XMPP account with a directory profile.

    Attributes:
        login: The account's login (the JID's localpart).
        organisation_id: Their organisation.
        staff_id: System-wide, increasing, immutable ("StaffID").
        profile: The profile (lists leave ``photo`` empty).
        can_login: False when an administrator disabled login (``accounts.is_disabled``).
        is_locked: Locked after repeated failed logins (an administrator unlocks).
        is_org_admin: An administrator of their organisation (has a console account).
        has_pin: A PIN is set.
        pin_is_temporary: The PIN must be changed at its next use.
        is_registered: Registered through an invitation (False: created by an
            administrator and not registered yet).
        created_at: When the profile was created.
        updated_at: When it last changed.
    """

    login: str
    organisation_id: OrganisationId
    staff_id: int
    profile: Profile
    can_login: bool = True
    is_locked: bool = False
    is_org_admin: bool = False
    has_pin: bool = False
    pin_is_temporary: bool = False
    is_registered: bool = True
    created_at: datetime
    updated_at: datetime

    @property
    def login_state(self) -> LoginState:
        """What Can Login shows (a lock wins over a disabled login)."""
        if self.is_locked:
            return LoginState.LOCKED
        return LoginState.ENABLED if self.can_login else LoginState.DISABLED


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """One row of Members (N): the user and their status."""

    user: DirectoryUser
    status: MemberStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class NewUser:
    """What Create User Profile asks.

    Attributes:
        profile: The profile.
        login: The login (suggested from the e-mail when None).
        pin: The PIN (the organisation's policy); None: no PIN yet (a provisioned
            user, who sets one when registering; the PIN gate does not apply until then).
        pin_is_temporary: "PIN is Temporary (Change at next login)".
        password: The XMPP (and, for administrators, console) password; None:
            the user sets one when registering through the invitation.
        is_org_admin: "Carewire Admin".
        groups: Groups of the organisation to put the user in.
        send_invitation: Mail an invitation so that the user registers.
    """

    profile: Profile
    login: str | None = None
    pin: str | None
    pin_is_temporary: bool = False
    password: str | None = None
    is_org_admin: bool = False
    groups: tuple[GroupId, ...] = ()
    send_invitation: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class UserUpdate:
    """Changes on Update User Profile (None: unchanged).

    Attributes:
        profile: The new profile (every field; a changed e-mail must be free).
        is_org_admin: Grant or revoke the administrator role.
        can_login: Enable or disable login.
        pin: Change PIN: the administrator sets it (the user is not told).
        pin_is_temporary: With ``pin``: must be changed at its next use.
        password: A new password (XMPP, and console for administrators).
    """

    profile: Profile | None = None
    is_org_admin: bool | None = None
    can_login: bool | None = None
    pin: str | None = None
    pin_is_temporary: bool | None = None
    password: str | None = None


class UserSortKey(enum.StrEnum):
    """Find Users' sort columns."""

    NAME = "name"  # last name, then first name
    STAFF_TYPE = "staff_type"
    EMAIL = "email"
    STAFF_ID = "staff_id"


@dataclass(frozen=True, slots=True, kw_only=True)
class UserFilter:
    """Find Users' search: case-insensitive substrings, combined with AND ("" matches all)."""

    first_name: str = ""
    last_name: str = ""
    email: str = ""
    staff_type: StaffType | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PinCheck:
    """The result of a correct PIN: whether it must be changed now."""

    must_change: bool
