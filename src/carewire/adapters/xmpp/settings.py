"""The XMPP adapter's settings schema: main settings, roster, and the editable lists."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from carewire.adapters.base import SettingSection
from carewire.adapters.xmpp.transforms import (
    location_rule_problem,
    location_transform,
    phone_transform,
)
from carewire.rules.settings import FieldKind, SettingField

if TYPE_CHECKING:
    from carewire.adapters.base import AdapterConfig
    from carewire.adapters.manager import AdapterManager

#: The XMPP adapter kind's component name.
COMPONENT = "XMPP"

#: The datasets the XMPP adapter keeps its state in.
REQUIRED_DATASETS = (
    "ACTORS",
    "ASSIGNMENTS",
    "BEDS",
    "CALL_LOG_HISTORY",
    "CALL_LOG_RECEIPTS",
    "CONTACT_DETAILS",
    "CONVERSATIONS",
    "CONVERSATION_HISTORY",
    "DELIVERIES",
    "DELIVERY_HISTORY",
    "DEVICES",
    "FACILITIES",
    "FUNCTIONAL_ROLES",
    "GROUPS",
    "IDENTITIES",
    "LINES",
    "LOCATIONS",
    "MESSAGES",
    "MESSAGE_DELIVERIES",
    "PATIENTS",
    "PLACES",
    "PRESENCE_HISTORY",
    "PRESENCE_STATES",
    "REGISTRATION_HISTORY",
    "ROOMS",
    "SITES",
    "TEMPLATES",
    "TEMPLATE_CATEGORIES",
    "UNITS",
    "USERS",
)

MOBILE_TIMEOUTS = ("Off", "13 hours", "7 days")
DESKTOP_TIMEOUTS = (
    "Off",
    "15 minutes",
    "30 minutes",
    "1 hour",
    "2 hours",
    "4 hours",
    "8 hours",
    "12 hours",
    "1 day",
    "7 days",
)
OFFLINE_TIMEOUTS = (
    "Default",
    "1 hour",
    "12 hours",
    "1 day",
    "3 days",
    "7 days",
    "14 days",
    "30 days",
)

_PHONE = (
    SettingField(name="reference_name", label="Reference Name"),
    SettingField(name="active", label="Active", kind=FieldKind.BOOLEAN, default=True),
    SettingField(
        name="pattern",
        label="Pattern",
        is_required=True,
        help="X matches any digit; spaces and ) - , . ( are ignored.",
    ),
    SettingField(name="mask", label="Mask", is_required=True),
)
_PATIENT_DETAILS = (
    SettingField(name="label", label="Label", is_required=True),
    SettingField(name="attribute_path", label="Attribute Path", is_required=True),
    SettingField(name="hidden", label="Hidden", kind=FieldKind.BOOLEAN, default=False),
)
_LOCATION = (
    SettingField(name="reference_name", label="Reference Name"),
    SettingField(name="active", label="Active", kind=FieldKind.BOOLEAN, default=True),
    SettingField(name="pattern", label="Pattern", is_required=True, help="A regular expression."),
    SettingField(name="replacement", label="Replacement", is_required=True, help="$1 for groups."),
)

SETTINGS = (
    SettingField(
        name="chat_domain",
        label="Chat Domain",
        is_required=True,
        help="The domain users sign in to (user@DOMAIN); the one given to carewire init.",
    ),
    SettingField(
        name="help_link", label="Help Link", help="A web page clients offer as their help."
    ),
    SettingField(
        name="mobile_session_timeout",
        label="Mobile Session Timeout",
        kind=FieldKind.CHOICE,
        choices=MOBILE_TIMEOUTS,
        default="Off",
        help="End a phone's session after it has been in the background this long.",
    ),
    SettingField(
        name="desktop_session_timeout",
        label="Desktop Session Timeout",
        kind=FieldKind.CHOICE,
        choices=DESKTOP_TIMEOUTS,
        default="Off",
        help="End a desktop client's session after it has sent nothing for this long.",
    ),
    SettingField(
        name="offline_message_timeout",
        label="Offline Message Timeout",
        kind=FieldKind.CHOICE,
        choices=OFFLINE_TIMEOUTS,
        default="Default",
        help="How long a message waits for a user who is offline (Default: 7 days).",
    ),
    SettingField(
        name="disable_acknowledgements",
        label="Disable Acknowledgments",
        kind=FieldKind.BOOLEAN,
        default=False,
        help="Stop offering clients the Acknowledge button (messages are still stored).",
    ),
    SettingField(
        name="multiple_facility",
        label="Multiple Facility",
        kind=FieldKind.BOOLEAN,
        default=False,
        help="Put the facility's name before each unit and location clients show.",
    ),
    SettingField(
        name="level1_prefix",
        label="Prefix for Assignment Level 1",
        default="Primary",
        help="Names a role's level-1 assignees in the roster (Primary RN).",
    ),
    SettingField(
        name="level2_prefix",
        label="Prefix for Assignment Level 2",
        default="Backup",
        help="Names a role's level-2 assignees in the roster (Backup RN).",
    ),
    SettingField(
        name="phone_number_transformations",
        label="Phone Number Transformations",
        kind=FieldKind.TABLE,
        columns=_PHONE,
        help="The first active rule whose pattern matches a number rewrites it with its mask.",
    ),
    SettingField(
        name="patient_details",
        label="Patient Details",
        kind=FieldKind.TABLE,
        columns=_PATIENT_DETAILS,
        help="Shown after the five default details: a label and a path into PATIENTS each.",
    ),
    SettingField(
        name="patient_location_transformations",
        label="Patient Location Transformations",
        kind=FieldKind.TABLE,
        columns=_LOCATION,
        help="The first active rule whose regular expression matches a location rewrites it.",
    ),
    SettingField(
        name="custom_parameters",
        label="Custom Parameters",
        kind=FieldKind.PARAMETERS,
        help="Name and value pairs handed to clients as they are.",
    ),
)

#: How the console groups the settings, each group with what it does, its defaults and when to
#: change it (docs/client-settings.md and docs/presence.md say more).
SECTIONS = (
    SettingSection(
        title="Domain and Help",
        help="Where users sign in and where clients send them for help. The domain is set by "
        "carewire init; change it only when the server moves to another domain (every user "
        "then signs in again with the new address). No help link by default.",
        fields=("chat_domain", "help_link"),
    ),
    SettingSection(
        title="Sessions",
        help="How long an idle client stays signed in. Default: Off for both (sessions never "
        "time out). Set a timeout when policy wants unattended phones or shared workstations "
        "signed out; an active session is never ended.",
        fields=("mobile_session_timeout", "desktop_session_timeout"),
    ),
    SettingSection(
        title="Messages",
        help="How long messages wait for offline users and whether clients offer "
        "acknowledgements. Defaults: 7 days, acknowledgements on. Shorten the wait for a "
        "stricter retention policy (messages stored already keep their expiry); disable "
        "acknowledgements only if the clients in use cannot show them.",
        fields=("offline_message_timeout", "disable_acknowledgements"),
    ),
    SettingSection(
        title="Roster and Assignments",
        help="How clients name units and the care team of each location. Defaults: unit names "
        "alone, Primary and Backup. Turn Multiple Facility on when several facilities share "
        "this server; change the prefixes to the words your wards use for the two levels.",
        fields=("multiple_facility", "level1_prefix", "level2_prefix"),
    ),
    SettingSection(
        title="Phone Numbers",
        help="Rewrites extensions and numbers into what a phone can dial. None by default. Add "
        "a rule when the nurse-call or telephony system reports numbers another way than "
        "staff dial them (X stands for one digit).",
        fields=("phone_number_transformations",),
    ),
    SettingSection(
        title="Patients",
        help="What clients show about a patient, and how a location reads. By default the five "
        "standard details (first and last name, date of birth, sex, admit date) and the "
        "locations as the admission feed wrote them. Add details your staff need; add a "
        "location rule when the feed's codes are not what people read on the ward.",
        fields=("patient_details", "patient_location_transformations"),
    ),
    SettingSection(
        title="Client Parameters",
        help="Extra name and value pairs for clients. None by default; add one only when a "
        "client's documentation asks for it.",
        fields=("custom_parameters",),
    ),
)


def _duration(choice: object, default: timedelta | None) -> timedelta | None:
    """``"13 hours"``/``"7 days"``/``"15 minutes"`` → timedelta; ``Off`` → None."""
    text = str(choice or "").strip().lower()
    if text in ("", "default"):
        return default
    if text == "off":
        return None
    count, _, unit = text.partition(" ")
    seconds = {"minute": 60, "hour": 3600, "day": 86400}[unit.rstrip("s")]
    return timedelta(seconds=int(count) * seconds)


#: The offline message timeout that "Default" stands for.
DEFAULT_OFFLINE_TIMEOUT = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """The enabled XMPP adapter's settings, read with their defaults applied.

    ``raw`` is the settings mapping as stored (lists of transformations, patient
    details and custom parameters are in it as validated lists of mappings).
    """

    raw: Mapping[str, object]

    def get(self, name: str) -> object:
        """One setting, or the schema's default when it was never set."""
        if name in self.raw and self.raw[name] not in (None, ""):
            return self.raw[name]
        field = _BY_NAME.get(name)
        return field.default if field is not None else None

    @property
    def mobile_session_timeout(self) -> timedelta | None:
        """How long a mobile app may stay in the background before its session ends."""
        return _duration(self.get("mobile_session_timeout"), None)

    @property
    def desktop_session_timeout(self) -> timedelta | None:
        """How long a desktop client may stay idle before its session ends."""
        return _duration(self.get("desktop_session_timeout"), None)

    @property
    def offline_message_timeout(self) -> timedelta:
        """How long messages for offline users are kept."""
        return _duration(self.get("offline_message_timeout"), DEFAULT_OFFLINE_TIMEOUT) or (
            DEFAULT_OFFLINE_TIMEOUT
        )

    @property
    def acknowledgements_disabled(self) -> bool:
        """Whether the acknowledgement feature is hidden from clients."""
        return bool(self.get("disable_acknowledgements"))

    def rows(self, name: str) -> list[Mapping[str, object]]:
        """The rows of a table setting (anything that is not a row is skipped)."""
        value = self.get(name)
        if not isinstance(value, list | tuple):
            return []
        return [row for row in value if isinstance(row, Mapping)]

    def transform_phone(self, number: str) -> str:
        """``number`` after the Phone Number Transformations (see :mod:`.transforms`)."""
        return phone_transform(number, self.rows("phone_number_transformations"))

    def transform_location(self, location: str) -> str:
        """``location`` after the Patient Location Transformations."""
        return location_transform(location, self.rows("patient_location_transformations"))

    def location_transformations(self) -> list[Mapping[str, object]]:
        """The active location rules that can be applied, in order (for clients to apply)."""
        return [
            row
            for row in self.rows("patient_location_transformations")
            if row.get("active", True) is not False and location_rule_problem(row) is None
        ]


class EnabledAdapterSettings:
    """The :class:`ChatSettings` of whichever XMPP adapter is enabled when asked.

    Implements :class:`carewire.adapters.xmpp.gateway.ChatSettingsSource`; the
    adapter manager keeps the instances in memory, so reading is cheap and an
    edit in the console applies at the next read.
    """

    def __init__(self, adapters: AdapterManager) -> None:
        self._adapters = adapters

    def _enabled(self) -> AdapterConfig | None:
        enabled = self._adapters.list(include_disabled=False)
        return next((c for c in enabled if c.component == COMPONENT), None)

    def current(self) -> ChatSettings:
        """The enabled adapter's settings (defaults when none is enabled)."""
        config = self._enabled()
        return ChatSettings(dict(config.settings) if config is not None else {})

    def adapter_name(self) -> str | None:
        """The enabled adapter's reference name."""
        config = self._enabled()
        return config.reference_name if config is not None else None

    def dataset(self, role: str) -> str:
        """The dataset the enabled adapter uses for ``role``."""
        config = self._enabled()
        return config.required_datasets.get(role, role) if config is not None else role


_BY_NAME = {f.name: f for f in SETTINGS}


def chat_settings(adapters: AdapterManager) -> ChatSettings:
    """TEMPORARY during the restructuring: the enabled XMPP adapter's settings."""
    return EnabledAdapterSettings(adapters).current()
