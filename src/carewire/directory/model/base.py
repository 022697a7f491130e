"""The directory's identifiers, limits, texts, callers and pages."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, NewType, TypeVar

from carewire.security.audit import Channel

T = TypeVar("T")

OrganisationId = NewType("OrganisationId", int)
GroupId = NewType("GroupId", int)
InvitationId = NewType("InvitationId", int)
AffiliationId = NewType("AffiliationId", int)

# -- limits -------------------------------------------------------------------------------

#: Names (first, last, middle): 1–64 characters.
NAME_MAX = 64
TITLE_MAX = 32
CREDENTIALS_MAX = 32
JOB_TITLE_MAX = 100
#: RFC 5321: a forward path holds at most 254 characters of address.
EMAIL_MAX = 254
PHONE_MIN = 7
PHONE_MAX = 20
ADDRESS_MAX = 200
FREE_TEXT_MAX = 2000
URL_MAX = 2048
ORG_NAME_MAX = 100
GROUP_NAME_MAX = 64
#: Logins chosen at registration: 1–64 of a–z, 0–9, '.', '_', '-', starting with a letter or digit.
LOGIN_MAX = 64
#: A profile photo (base64 text), at most this many characters.
PHOTO_MAX = 350_000
#: Rows of one CSV upload (invitations or groups).
MAX_CSV_ROWS = 20_000
#: Addresses of one typed e-mail list.
MAX_EMAILS_PER_REQUEST = 1_000
#: A CSV upload, at most this many characters.
MAX_CSV_CHARS = 8 * 1024 * 1024
#: Page sizes offered by Find Users (10 is the default); invitations list 50 a page.
PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_PAGE_SIZE = 10
INVITATIONS_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
#: Organisation members on Update Organization, per page.
MEMBERS_PAGE_SIZE = 10

DEFAULT_TIME_ZONE = "America/New_York"
PIN_LENGTHS = (4, 6)
DEFAULT_PIN_LENGTH = 4
SOUND_SECONDS = (5, 10, 15, 30, 60)
DEFAULT_SOUND_SECONDS = 30

#: The header and example rows of the sample CSV file ("Download sample CSV file").
SAMPLE_CSV = (
    "Email,First Name,Last Name,Department\r\n"
    "jdoe@example.org,Jane,Doe,Cardiology\r\n"
    "rroe@example.org,Richard,Roe,\r\n"
    ",,,Physical Therapy\r\n"
)
CSV_COLUMNS = ("Email", "First Name", "Last Name", "Department")

# -- texts administrators and users see --------------------------------------------------------

PRODUCT = "Carewire"
INVITATIONS_SENT = "Invitations have been sent successfully."
AFFILIATION_INVITED = "Invitations have been sent to the Carewire administrators for {org}."
PERMISSIONS_UPDATED = "Permissions updated successfully"
ADD_MEMBERS_HINT = "You can now add members by clicking 'Add Members' button below"
PIN_RESET_SENT = "Success. A PIN Reset email has been sent to the user."
PRACTICE_CREATED = "Practice {name} was created."
INVALID_EMAIL = "Invalid email address: {address}. No invitations were sent."
NOT_A_COMMUNITY = "A community holds organisations, never other communities"
MESSAGE_REFUSED = "You may not message users of {org}"
LINK_GONE = "This link is not valid any more."


# -- callers -------------------------------------------------------------------------------


class CallerRole(enum.StrEnum):
    """What the caller may do (the values of the console's roles)."""

    SYSTEM_ADMIN = "system-admin"
    ORG_ADMIN = "org-admin"
    AUDITOR = "auditor"


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    """Who calls a directory operation, for scoping and the audit trail.

    A system administrator sees every organisation; an organisation
    administrator only ``organisation_id`` (anything of another organisation
    is "not found"); an auditor reads what ``organisation_id`` allows (all
    organisations when None) and writes nothing.

    Attributes:
        actor: Who, for the audit trail (``console:alice``, ``api:gateway``, ``cli``).
        role: What they may do.
        organisation_id: Their organisation (None: all, for system administrators
            and global auditors).
        channel: Where the call came from.
        remote_ip: The peer's address, if any.
    """

    actor: str
    role: CallerRole
    organisation_id: OrganisationId | None = None
    channel: Channel = Channel.SYSTEM
    remote_ip: str = ""

    @property
    def can_write(self) -> bool:
        """Whether the caller may change anything."""
        return self.role is not CallerRole.AUDITOR

    @property
    def is_system_admin(self) -> bool:
        """Whether the caller acts for every organisation."""
        return self.role is CallerRole.SYSTEM_ADMIN

    def sees(self, organisation_id: int) -> bool:
        """Whether things of ``organisation_id`` exist for this caller."""
        return self.organisation_id is None or self.organisation_id == organisation_id


#: The command-line tool: a system administrator on the machine.
CLI_CALLER = Caller(actor="cli", role=CallerRole.SYSTEM_ADMIN, channel=Channel.CLI)
#: The server itself (jobs, the XMPP side acting for a device).
SYSTEM_CALLER = Caller(actor="system", role=CallerRole.SYSTEM_ADMIN, channel=Channel.SYSTEM)


@dataclass(frozen=True, slots=True, kw_only=True)
class PageRequest:
    """Which page: ``limit`` rows from ``offset``."""

    offset: int = 0
    limit: int = DEFAULT_PAGE_SIZE


@dataclass(frozen=True, slots=True, kw_only=True)
class Page(Generic[T]):
    """One page of results and how many there are in all."""

    items: tuple[T, ...]
    total: int
    offset: int
    limit: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectoryConfig:
    """The directory's settings (``[directory]``) and where its links point.

    Attributes:
        domain: The chat domain (users are ``login@domain``; groups ``slug@groups.domain``).
        link_base: Scheme and authority of mailed links (the console's base URL,
            ``https://host:8443``); never taken from a request.
        invitation_link_ttl: How long a user invitation's link works.
        affiliation_link_ttl: How long an affiliation invitation's link works.
        pin_reset_link_ttl: How long a PIN-reset link works.
        index_reload_interval: How often the server re-reads the directory
            (changes made by another process, such as the CLI).
    """

    domain: str = "carewire.localhost"
    link_base: str = ""
    invitation_link_ttl: timedelta = timedelta(days=14)
    affiliation_link_ttl: timedelta = timedelta(days=7)
    pin_reset_link_ttl: timedelta = timedelta(hours=24)
    index_reload_interval: timedelta = timedelta(seconds=30)

    @property
    def links(self) -> str:
        """The base of mailed links, without a trailing slash."""
        return (self.link_base or f"https://{self.domain}").rstrip("/")
