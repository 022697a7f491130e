"""The XMPP adapter's settings schema: main settings, roster, and the editable lists."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

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
    SettingField(name="chat_domain", label="Chat Domain", is_required=True),
    SettingField(name="help_link", label="Help Link"),
    SettingField(
        name="mobile_session_timeout",
        label="Mobile Session Timeout",
        kind=FieldKind.CHOICE,
        choices=MOBILE_TIMEOUTS,
        default="Off",
    ),
    SettingField(
        name="desktop_session_timeout",
        label="Desktop Session Timeout",
        kind=FieldKind.CHOICE,
        choices=DESKTOP_TIMEOUTS,
        default="Off",
    ),
    SettingField(
        name="offline_message_timeout",
        label="Offline Message Timeout",
        kind=FieldKind.CHOICE,
        choices=OFFLINE_TIMEOUTS,
        default="Default",
    ),
    SettingField(
        name="disable_acknowledgements",
        label="Disable Acknowledgments",
        kind=FieldKind.BOOLEAN,
        default=False,
    ),
    SettingField(
        name="multiple_facility", label="Multiple Facility", kind=FieldKind.BOOLEAN, default=False
    ),
    SettingField(name="level1_prefix", label="Prefix for Assignment Level 1", default="Primary"),
    SettingField(name="level2_prefix", label="Prefix for Assignment Level 2", default="Backup"),
    SettingField(
        name="phone_number_transformations",
        label="Phone Number Transformations",
        kind=FieldKind.TABLE,
        columns=_PHONE,
    ),
    SettingField(
        name="patient_details",
        label="Patient Details",
        kind=FieldKind.TABLE,
        columns=_PATIENT_DETAILS,
    ),
    SettingField(
        name="patient_location_transformations",
        label="Patient Location Transformations",
        kind=FieldKind.TABLE,
        columns=_LOCATION,
    ),
    SettingField(name="custom_parameters", label="Custom Parameters", kind=FieldKind.PARAMETERS),
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
