"""Clinical presence, the pure core: device registration elements and presence aggregation.

Nothing here awaits or reads a clock. :func:`parse_register` turns the
``<register xmlns='urn:carewire:device:0'/>`` payload into a
:class:`DeviceInfo`; :func:`aggregate` turns the presence of every resource of
a user into the one presence the clinical platform records
(Available > Unavailable > Offline).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from xml.etree.ElementTree import Element

from carewire.xmpp.errors import StanzaCondition, StanzaError

#: The device registration namespace (ours; documented in docs/presence.md).
NS_DEVICE: Final = "urn:carewire:device:0"
REGISTER: Final = f"{{{NS_DEVICE}}}register"
UNREGISTER: Final = f"{{{NS_DEVICE}}}unregister"

#: Attribute of ``<register/>`` → (DeviceInfo field, longest accepted value).
REGISTER_ATTRIBUTES: Final = {
    "app-version": ("app_version", 64),
    "os-version": ("os_version", 64),
    "hardware-version": ("hardware_version", 64),
    "push-token": ("push_token", 1024),
    "uuid": ("uuid", 64),
}
MAX_STATUS: Final = 1024  # status text kept in the records (longer text is cut)

#: The ``presence_show`` values the records hold (XMPP <show/> values, plus 'offline').
SHOW_AVAILABLE: Final = "chat"
SHOW_OFFLINE: Final = "offline"
UNAVAILABLE_SHOWS: Final = frozenset({"away", "xa", "dnd"})


class DeviceKind(StrEnum):
    """What kind of client a session is."""

    MOBILE = "mobile"
    DESKTOP = "desktop"
    VIRTUAL = "virtual"  # a session the server keeps for a user without a client


class DeviceStatus(StrEnum):
    """DEVICES.status and REGISTRATION_HISTORY.device_status values."""

    REGISTERED = "Registered"
    DISCONNECTED = "Disconnected"
    VIRTUAL = "Virtual"
    UNREGISTERED = "Unregistered"


class PresenceKind(StrEnum):
    """A resource's or a user's presence, as the clinical platform sees it."""

    AVAILABLE = "Available"
    UNAVAILABLE = "Unavailable"
    OFFLINE = "Offline"


RANK: Final = {PresenceKind.OFFLINE: 0, PresenceKind.UNAVAILABLE: 1, PresenceKind.AVAILABLE: 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceInfo:
    """What a client told us about its device (kept in ``session.data["device"]``).

    Attributes:
        kind: Mobile (also for clients that never register), desktop or virtual.
        app_version: The client application's version.
        os_version: The operating system's version.
        hardware_version: The device model.
        push_token: The push notification token (never logged).
        uuid: A client-chosen identifier of the device.
        is_registered: The client sent a ``<register/>``.
    """

    kind: DeviceKind = DeviceKind.MOBILE
    app_version: str = ""
    os_version: str = ""
    hardware_version: str = ""
    push_token: str = ""
    uuid: str = ""
    is_registered: bool = False


def parse_register(payload: Element) -> DeviceInfo:
    """Read a ``<register/>`` payload; every attribute is optional.

    Raises:
        StanzaError: ``bad-request`` for an unknown kind or a value that is too long.
    """
    kind_text = payload.get("kind", DeviceKind.MOBILE.value)
    if kind_text not in (DeviceKind.MOBILE.value, DeviceKind.DESKTOP.value):
        raise StanzaError(StanzaCondition.BAD_REQUEST, "kind must be 'mobile' or 'desktop'")
    values: dict[str, str] = {}
    for attr, (name, limit) in REGISTER_ATTRIBUTES.items():
        value = payload.get(attr, "")
        if len(value) > limit:
            raise StanzaError(
                StanzaCondition.BAD_REQUEST, f"{attr} is longer than {limit} characters"
            )
        values[name] = value
    return DeviceInfo(kind=DeviceKind(kind_text), is_registered=True, **values)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourcePresence:
    """The last broadcast presence of one resource.

    Attributes:
        resource: The resource.
        device: The kind of device behind it.
        is_available: It sent available presence (and no unavailable since).
        show: Its <show/> value ("" when absent).
        status: Its <status/> text.
        seq: When it last changed, in the order changes happened.
    """

    resource: str
    device: DeviceKind
    is_available: bool
    show: str = ""
    status: str = ""
    seq: int = 0

    @property
    def kind(self) -> PresenceKind:
        """Available, Unavailable (away/xa/dnd, or any desktop client) or Offline."""
        if not self.is_available:
            return PresenceKind.OFFLINE
        if self.show in UNAVAILABLE_SHOWS or self.device is DeviceKind.DESKTOP:
            return PresenceKind.UNAVAILABLE
        return PresenceKind.AVAILABLE


@dataclass(frozen=True, slots=True, kw_only=True)
class Aggregate:
    """A user's presence as recorded in USERS and PRESENCE_HISTORY.

    Attributes:
        kind: The highest presence over the user's resources.
        show: USERS.presence_show: 'chat', 'away', 'xa', 'dnd' or 'offline'.
        status: USERS.presence_status (the status text of the deciding resource).
        resource: The deciding resource ("" when offline).
    """

    kind: PresenceKind
    show: str
    status: str = ""
    resource: str = ""

    def same_as(self, other: Aggregate | None) -> bool:
        """Whether the records would not change (the deciding resource does not matter)."""
        return other is not None and (self.show, self.status) == (other.show, other.status)


OFFLINE: Final = Aggregate(kind=PresenceKind.OFFLINE, show=SHOW_OFFLINE)


def show_for(kind: PresenceKind, show: str = "") -> str:
    """The recorded show of a presence kind (an Unavailable one keeps away/xa/dnd)."""
    if kind is PresenceKind.AVAILABLE:
        return SHOW_AVAILABLE
    if kind is PresenceKind.UNAVAILABLE:
        return show if show in UNAVAILABLE_SHOWS else "away"
    return SHOW_OFFLINE


def aggregate(resources: Iterable[ResourcePresence]) -> Aggregate:
    """The user's presence: the highest resource wins; among equals, the latest change."""
    best: ResourcePresence | None = None
    for r in resources:
        if best is None or (RANK[r.kind], r.seq) > (RANK[best.kind], best.seq):
            best = r
    if best is None or best.kind is PresenceKind.OFFLINE:
        return OFFLINE
    return Aggregate(
        kind=best.kind,
        show=show_for(best.kind, best.show),
        status=best.status[:MAX_STATUS],
        resource=best.resource,
    )
