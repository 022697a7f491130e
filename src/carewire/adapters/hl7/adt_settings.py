"""The HL7 ADT adapter's settings: the schema people fill in, the typed view the runtime reads."""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import tzinfo

from carewire.adapters.hl7.adt_message import ReadOptions
from carewire.adapters.hl7.mllp import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_MESSAGE
from carewire.errors import ConfigError
from carewire.rules.settings import FieldKind, SettingField

COMPONENT = "HL7 ADT"
DEFAULT_PORT = 6661
ANY_PROCESSING_ID = "any"

SETTINGS = (
    SettingField(
        name="port",
        label="Port",
        kind=FieldKind.INTEGER,
        minimum=0,
        maximum=65535,
        default=DEFAULT_PORT,
        help="The MLLP port the admission system connects to (0: any free port).",
    ),
    SettingField(
        name="bind",
        label="Bind Address",
        default="127.0.0.1",
        help='The address to listen on; "0.0.0.0" accepts other machines.',
    ),
    SettingField(
        name="use_tls",
        label="Use TLS",
        kind=FieldKind.BOOLEAN,
        default=False,
        help="MLLP inside TLS 1.2+, with the server's certificate.",
    ),
    SettingField(
        name="facility",
        label="Facility",
        help="The FACILITIES name of locations whose PV1-3 names no facility.",
    ),
    SettingField(
        name="create_locations",
        label="Create Locations",
        kind=FieldKind.BOOLEAN,
        default=False,
        help="Create the facilities, units, rooms and beds messages name (else they must exist).",
    ),
    SettingField(
        name="processing_id",
        label="Processing Id",
        kind=FieldKind.CHOICE,
        choices=("P", "T", "D", ANY_PROCESSING_ID),
        default="P",
        help="The MSH-11 accepted: P production, T training, D debugging.",
    ),
    SettingField(
        name="time_zone",
        label="Time Zone",
        help="Of times sent without an offset (default: the rules' time zone).",
    ),
    SettingField(
        name="application",
        label="Application",
        default="CAREWIRE",
        help="MSH-3 of our acknowledgements when the message names no receiving application.",
    ),
    SettingField(
        name="max_message_bytes",
        label="Max Message Size",
        kind=FieldKind.INTEGER,
        minimum=1024,
        maximum=16 * 1024 * 1024,
        default=DEFAULT_MAX_MESSAGE,
        help="Larger messages are answered AR and their connection is closed.",
    ),
    SettingField(
        name="idle_timeout_seconds",
        label="Idle Timeout",
        kind=FieldKind.INTEGER,
        minimum=5,
        maximum=86400,
        default=int(DEFAULT_IDLE_TIMEOUT),
        help="Seconds a connection may stay silent before it is closed.",
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AdtSettings:
    """The settings, typed (defaults filled in)."""

    port: int = DEFAULT_PORT
    bind: str = "127.0.0.1"
    use_tls: bool = False
    facility: str = ""
    create_locations: bool = False
    processing_id: str = "P"
    tz: tzinfo
    application: str = "CAREWIRE"
    max_message_bytes: int = DEFAULT_MAX_MESSAGE
    idle_timeout_seconds: int = int(DEFAULT_IDLE_TIMEOUT)

    @classmethod
    def from_mapping(cls, settings: Mapping[str, object], *, default_tz: tzinfo) -> AdtSettings:
        """Read validated settings.

        Raises:
            ConfigError: The time zone is unknown.
        """
        zone = str(settings.get("time_zone") or "")
        try:
            tz = zoneinfo.ZoneInfo(zone) if zone else default_tz
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"Time Zone: unknown time zone {zone!r}") from None
        return cls(
            port=int(str(settings.get("port", DEFAULT_PORT))),
            bind=str(settings.get("bind") or "127.0.0.1"),
            use_tls=settings.get("use_tls") is True,
            facility=str(settings.get("facility") or ""),
            create_locations=settings.get("create_locations") is True,
            processing_id=str(settings.get("processing_id") or "P"),
            tz=tz,
            application=str(settings.get("application") or "CAREWIRE"),
            max_message_bytes=int(str(settings.get("max_message_bytes", DEFAULT_MAX_MESSAGE))),
            idle_timeout_seconds=int(
                str(settings.get("idle_timeout_seconds", int(DEFAULT_IDLE_TIMEOUT)))
            ),
        )

    def read_options(self) -> ReadOptions:
        """How messages are read under these settings."""
        wanted = None if self.processing_id == ANY_PROCESSING_ID else self.processing_id
        return ReadOptions(tz=self.tz, processing_id=wanted, facility=self.facility)
