"""The data of directory sync from LDAP: settings, attribute maps, runs, report lines, errors.

Every dataclass here is frozen; the settings as stored never hold the bind
secret in clear (``has_secret`` only says whether one was saved). See
docs/ldap.md.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, fields
from datetime import datetime
from urllib.parse import urlsplit

from carewire.directory.model import InvalidFieldError
from carewire.errors import ConflictError, NotFoundError, UnavailableError

#: The profile fields an attribute may fill (``Profile`` field names of the directory).
PROFILE_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "middle_name",
    "title",
    "credentials",
    "job_title",
    "cell_number",
    "office_phone",
    "office_fax",
    "address1",
    "city",
    "state",
    "zip",
)
#: The fields a user cannot be synced without.
REQUIRED_FIELDS = ("email", "first_name", "last_name")
_ATTRIBUTE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,63}$")
#: The longest value of any attribute that is read at all (the profile's limits are smaller).
MAX_VALUE_BYTES = 4096
#: The largest share of the linked users a run may disable without a confirmation (percent).
DEFAULT_MAX_DISABLE_PERCENT = 10


class StampKind(enum.StrEnum):
    """How a server tells what changed since the last run."""

    MODIFY_TIMESTAMP = "modifyTimestamp"  # OpenLDAP and most servers (GeneralizedTime)
    USN_CHANGED = "uSNChanged"  # Active Directory: an increasing update sequence number
    NONE = "none"  # every run is full


@dataclass(frozen=True, slots=True, kw_only=True)
class AttributeMap:
    """Which LDAP attribute fills which directory field ("" leaves the field to administrators).

    Attributes:
        external_id: The entry's stable identifier (``entryUUID``, AD's ``objectGUID``).
        login: The login (``uid``, AD's ``sAMAccountName``); lower-cased.
        stamp: The change stamp the incremental search filters on.
        profile: Profile field name → attribute name.
    """

    external_id: str = "entryUUID"
    login: str = "uid"
    stamp: StampKind = StampKind.MODIFY_TIMESTAMP
    profile: dict[str, str] = field(
        default_factory=lambda: {
            "email": "mail",
            "first_name": "givenName",
            "last_name": "sn",
            "job_title": "title",
            "office_phone": "telephoneNumber",
            "cell_number": "mobile",
            "office_fax": "facsimileTelephoneNumber",
            "city": "l",
            "state": "st",
            "zip": "postalCode",
            "address1": "street",
        }
    )

    def synced_fields(self) -> frozenset[str]:
        """The profile fields this map fills (read-only for administrators)."""
        return frozenset(k for k, v in self.profile.items() if v)

    def attributes(self) -> list[str]:
        """Every attribute a user search must return."""
        names = [self.external_id, self.login, *(v for v in self.profile.values() if v)]
        if self.stamp is not StampKind.NONE:
            names.append(self.stamp.value)
        return list(dict.fromkeys(names))


OPENLDAP_MAP = AttributeMap()
ACTIVE_DIRECTORY_MAP = AttributeMap(
    external_id="objectGUID",
    login="sAMAccountName",
    stamp=StampKind.USN_CHANGED,
    profile={
        **AttributeMap().profile,
        "cell_number": "mobile",
        "address1": "streetAddress",
    },
)
#: Defaults of a new integration, per kind of server.
PRESETS = {"openldap": OPENLDAP_MAP, "active-directory": ACTIVE_DIRECTORY_MAP}
PRESET_FILTERS = {
    "openldap": ("(objectClass=inetOrgPerson)", "(objectClass=groupOfNames)"),
    "active-directory": (
        "(&(objectCategory=person)(objectClass=user))",
        "(objectClass=group)",
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class LdapSettings:
    """One organisation's LDAP integration (the bind secret is stored sealed, apart).

    Attributes:
        organisation_id: The organisation whose users it syncs.
        url: ``ldaps://host[:port]`` or ``ldap://host[:port]`` (StartTLS is then required).
        bind_dn: The account the sync binds as (read access to people and groups).
        base_dn: Where people are searched (subtree).
        user_filter: Which entries are the organisation's users.
        group_base_dn: Where groups are searched ("" syncs no groups).
        group_filter: Which entries are groups.
        group_member_attribute: The attribute holding members' DNs.
        group_name_attribute: The attribute naming the group (the directory group's name).
        ca_file: A PEM file of the CA that signed the server's certificate ("" trusts the
            system's CAs).
        mapping: Attributes → directory fields.
        is_sync_enabled: Scheduled runs happen (on demand works either way).
        is_sign_in_enabled: The organisation's synced users sign in with their directory
            password (simple bind), and have no password here.
        max_disable_percent: A run that would disable more than this share of the linked
            users waits for an administrator's confirmation.
        has_secret: A bind secret is saved (it is never shown again).
        updated_at: When the settings last changed.
    """

    organisation_id: int
    url: str
    bind_dn: str
    base_dn: str
    user_filter: str = "(objectClass=inetOrgPerson)"
    group_base_dn: str = ""
    group_filter: str = "(objectClass=groupOfNames)"
    group_member_attribute: str = "member"
    group_name_attribute: str = "cn"
    ca_file: str = ""
    mapping: AttributeMap = field(default_factory=AttributeMap)
    is_sync_enabled: bool = True
    is_sign_in_enabled: bool = False
    max_disable_percent: int = DEFAULT_MAX_DISABLE_PERCENT
    has_secret: bool = False
    updated_at: datetime | None = None

    @property
    def is_ldaps(self) -> bool:
        """TLS from the first byte (``ldaps://``) rather than StartTLS."""
        return self.url.lower().startswith("ldaps://")


class RunKind(enum.StrEnum):
    """A full run sees every entry (and so who left); an incremental one only changes."""

    FULL = "full"
    INCREMENTAL = "incremental"


class RunState(enum.StrEnum):
    """Where a run is."""

    RUNNING = "running"
    DONE = "done"
    HELD = "held"  # it would disable too many users: waits for a confirmation
    FAILED = "failed"  # the directory could not be read; nothing changed
    INTERRUPTED = "interrupted"  # the process stopped during it; the next run finishes


class Trigger(enum.StrEnum):
    """What started a run."""

    SCHEDULE = "schedule"
    CONSOLE = "console"
    API = "api"
    CLI = "cli"


class ChangeType(enum.StrEnum):
    """A report line's change, as the Import Results page shows it."""

    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DISABLED = "DISABLED"  # left the directory (or the filter): login disabled, never deleted
    NONE = "NONE"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCounts:
    """How many users each kind of change touched."""

    created: int = 0
    updated: int = 0
    disabled: int = 0
    unchanged: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncRun:
    """One run's import result."""

    id: int
    organisation_id: int
    kind: RunKind
    trigger: Trigger
    state: RunState
    started_at: datetime
    ended_at: datetime | None = None
    counts: RunCounts = field(default_factory=RunCounts)
    message: str = ""
    actor: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportLine:
    """One user's line of a run's report (unchanged users are counted, not listed)."""

    change: ChangeType
    login: str = ""
    staff_id: int | None = None
    external_id: str = ""
    name: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class LdapStatus:
    """What the Integrations page shows at the top."""

    is_configured: bool
    is_connected: bool = False
    checked_at: datetime | None = None
    error: str = ""
    last_run: SyncRun | None = None
    held_run: SyncRun | None = None
    linked_users: int = 0


class LdapError(UnavailableError):
    """The directory could not be reached, bound or read; the message says why."""

    code = "ldap-unavailable"


class LdapBindRefusedError(LdapError):
    """The directory refused the DN or its password (a wrong password, not an outage)."""

    code = "ldap-bind-refused"


class LdapSettingsError(InvalidFieldError):
    """A setting is not valid; ``field`` names it."""


class NoIntegrationError(NotFoundError):
    """The organisation has no LDAP integration."""

    code = "not-found"


class RunInProgressError(ConflictError):
    """A run of this organisation is going on."""

    code = "sync-in-progress"


def check_settings(settings: LdapSettings, *, has_secret: bool) -> LdapSettings:
    """``settings`` checked and trimmed.

    Raises:
        LdapSettingsError: A setting is not valid (``field`` names it).
    """
    url = settings.url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("ldap", "ldaps") or not parts.hostname:
        raise LdapSettingsError(
            "url", "The server URL must be ldaps://host[:port] or ldap://host[:port] (StartTLS)."
        )
    if parts.path not in ("", "/") or parts.query:
        raise LdapSettingsError("url", "The server URL takes no path or query: set the base DN.")
    try:
        _ = parts.port
    except ValueError:
        raise LdapSettingsError("url", "The server URL has an invalid port.") from None
    for name in ("bind_dn", "base_dn"):
        if not _is_dn(getattr(settings, name)):
            raise LdapSettingsError(
                name, f"{_LABELS[name]} must be a DN like ou=people,dc=x,dc=org."
            )
    if settings.group_base_dn.strip() and not _is_dn(settings.group_base_dn):
        raise LdapSettingsError("group_base_dn", "The group base DN must be a DN (or empty).")
    for name in ("user_filter", "group_filter"):
        check_filter(getattr(settings, name), name)
    _check_mapping(settings)
    if not has_secret:
        raise LdapSettingsError("bind_secret", "The bind password is required.")
    if not 0 <= settings.max_disable_percent <= 100:
        raise LdapSettingsError("max_disable_percent", "The share is a percentage, 0 to 100.")
    if settings.ca_file and not settings.ca_file.startswith("/"):
        raise LdapSettingsError("ca_file", "The CA file must be an absolute path.")
    values = {f.name: getattr(settings, f.name) for f in fields(settings)}
    for name in ("bind_dn", "base_dn", "group_base_dn", "user_filter", "group_filter"):
        values[name] = values[name].strip()
    values["url"] = url.rstrip("/")
    return LdapSettings(**values)


_LABELS = {"bind_dn": "The bind DN", "base_dn": "The base DN"}


def _is_dn(value: str) -> bool:
    value = value.strip()
    return bool(value) and len(value) <= 1024 and all("=" in rdn for rdn in value.split(","))


def check_filter(value: str, field_name: str) -> None:
    """A search filter in parentheses with balanced brackets (RFC 4515's outer form).

    Raises:
        LdapSettingsError: It is not.
    """
    value = value.strip()
    depth = 0
    for char in value:
        depth += 1 if char == "(" else -1 if char == ")" else 0
        if depth < 0:
            break
    if not value.startswith("(") or depth != 0 or len(value) > 4096:
        raise LdapSettingsError(
            field_name, "A filter is in parentheses, e.g. (objectClass=person)."
        )


def _check_mapping(settings: LdapSettings) -> None:
    m = settings.mapping
    names = [m.external_id, m.login, settings.group_member_attribute, settings.group_name_attribute]
    for key, value in m.profile.items():
        if key not in PROFILE_FIELDS:
            raise LdapSettingsError(
                f"map_{key}", f"{key} is not a profile field a directory fills."
            )
        if value:
            names.append(value)
    for required in REQUIRED_FIELDS:
        if not m.profile.get(required):
            raise LdapSettingsError(f"map_{required}", f"The {required} field needs an attribute.")
    for name in names:
        if not _ATTRIBUTE.match(name):
            raise LdapSettingsError("mapping", f"{name!r} is not an LDAP attribute name.")
