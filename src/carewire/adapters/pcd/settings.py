"""The PCD Alarms adapter's settings: the listener, the status endpoint, the priority map."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from carewire.adapters.base import AdapterConfig
from carewire.rules.settings import FieldKind, SettingField

#: The kind's component name.
COMPONENT = "PCD Alarms"
#: The dataset role alarms are written to (the built-in DEVICE_ALARMS unless chosen).
ALARMS = "DEVICE_ALARMS"
REQUIRED_DATASETS = (ALARMS,)
DEFAULT_PORT = 7000
ALERT_PRIORITIES = ("Normal", "Important", "Urgent", "Critical")
#: PCD priority (OBX-8) → alert priority; an absent priority counts as PN.
DEFAULT_PRIORITY_MAP: dict[str, str] = {
    "PH": "Critical",
    "PM": "Urgent",
    "PL": "Important",
    "PN": "Normal",
}

SETTINGS = (
    SettingField(
        name="listen_port",
        label="Listen Port",
        kind=FieldKind.INTEGER,
        minimum=0,
        maximum=65535,
        default=DEFAULT_PORT,
        help="The TCP port PCD-04 (ORU^R40) messages arrive on over MLLP.",
    ),
    SettingField(
        name="bind_address",
        label="Bind Address",
        default="127.0.0.1",
        help="The address to listen on (0.0.0.0 for every interface).",
    ),
    SettingField(name="tls", label="TLS", kind=FieldKind.BOOLEAN, default=False),
    SettingField(
        name="status_host",
        label="Status Endpoint Host",
        help="Where PCD-05 (ORA^R41) statuses go; empty: none are sent.",
    ),
    SettingField(
        name="status_port",
        label="Status Endpoint Port",
        kind=FieldKind.INTEGER,
        minimum=1,
        maximum=65535,
    ),
    SettingField(
        name="status_tls", label="Status Endpoint TLS", kind=FieldKind.BOOLEAN, default=False
    ),
    SettingField(
        name="priority_map",
        label="Priority Mapping",
        kind=FieldKind.PARAMETERS,
        default=[{"parameter": k, "value": v} for k, v in DEFAULT_PRIORITY_MAP.items()],
        help="PCD priority (PH, PM, PL, PN) = alert priority (Normal … Critical).",
    ),
    SettingField(
        name="default_facility",
        label="Default Facility",
        help="The facility of a PV1-3 location that names none.",
    ),
    SettingField(
        name="application",
        label="Application Name",
        default="CAREWIRE",
        help="MSH-3 of the acknowledgements and statuses sent.",
    ),
    SettingField(
        name="rate_limit",
        label="Rate Limit (messages/s)",
        kind=FieldKind.INTEGER,
        minimum=1,
        default=200,
    ),
    SettingField(
        name="max_message_kb",
        label="Largest Message (KiB)",
        kind=FieldKind.INTEGER,
        minimum=1,
        maximum=16384,
        default=256,
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PcdSettings:
    """An instance's settings, typed.

    Attributes:
        reference_name: The instance's reference name.
        alarms: The dataset alarms are written to.
        host: Bind address.
        port: Listen port (0: any free port).
        tls: Whether the listener speaks TLS.
        status_host: PCD-05 endpoint host (empty: none).
        status_port: PCD-05 endpoint port.
        status_tls: Whether the PCD-05 endpoint speaks TLS.
        priority_map: PCD priority → alert priority.
        default_facility: Facility for a location without one.
        application: Our MSH-3.
        rate_limit: Messages per second the listener takes (a burst of as many).
        max_message: Largest message in bytes.
    """

    reference_name: str
    alarms: str = ALARMS
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    tls: bool = False
    status_host: str = ""
    status_port: int = 0
    status_tls: bool = False
    priority_map: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PRIORITY_MAP))
    default_facility: str = ""
    application: str = "CAREWIRE"
    rate_limit: int = 200
    max_message: int = 256 * 1024

    def alert_priority(self, priority: str) -> str:
        """The alert priority of a PCD priority (unknown or absent: as PN, else Normal)."""
        return self.priority_map.get(priority) or self.priority_map.get("PN") or "Normal"


def settings_of(config: AdapterConfig) -> PcdSettings:
    """The typed settings of an instance (already validated against :data:`SETTINGS`)."""
    s = config.settings

    def num(name: str, default: int) -> int:
        value = s.get(name)
        return default if value is None else int(str(value))

    mapping = dict(DEFAULT_PRIORITY_MAP)
    for row in s.get("priority_map") or ():  # type: ignore[attr-defined]
        key, value = str(row.get("parameter", "")).upper(), str(row.get("value", ""))
        if key and value in ALERT_PRIORITIES:
            mapping[key] = value
    return PcdSettings(
        reference_name=config.reference_name,
        alarms=config.required_datasets.get(ALARMS, ALARMS),
        host=str(s.get("bind_address") or "127.0.0.1"),
        port=num("listen_port", DEFAULT_PORT),
        tls=bool(s.get("tls")),
        status_host=str(s.get("status_host") or ""),
        status_port=num("status_port", 0),
        status_tls=bool(s.get("status_tls")),
        priority_map=mapping,
        default_facility=str(s.get("default_facility") or ""),
        application=str(s.get("application") or "CAREWIRE"),
        rate_limit=num("rate_limit", 200),
        max_message=num("max_message_kb", 256) * 1024,
    )
