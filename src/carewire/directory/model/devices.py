"""Devices as the directory sees them (DEVICES records) and the change notifications."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from carewire.directory.model.base import GroupId, OrganisationId

# -- devices -------------------------------------------------------------------------------


class DeviceState(enum.StrEnum):
    """A device's Status text, exactly as User's Devices shows it."""

    ACTIVE_PUSH = "Device is active. Push notification active."
    ACTIVE_NO_PUSH = "Device is active. Push notifications not active."
    WIPE_REQUESTED = "Remote wipe requested."
    LOGGED_OUT = "Device is logged out."


class DeviceAction(enum.StrEnum):
    """The Remove Access links."""

    DISABLE_NOTIFICATION = "Disable Notification"
    ENABLE_NOTIFICATION = "Enable Notification"
    WIPE = "Wipe Device"
    DELETE_INFO = "Delete Device Info"


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    """A DEVICES record as the directory sees it.

    Attributes:
        name: The DEVICES key (``login/resource``).
        login: Its user.
        state: The Status text.
        push_enabled: Push notifications allowed.
        wipe_requested_at: When a wipe was requested (kept after it is confirmed).
        wipe_confirmed_at: When the device confirmed it erased its data (None while pending).
        last_active_at: "Most Recent Activity".
        record_id: The DEVICES record's id.
    """

    name: str
    login: str
    state: DeviceState
    push_enabled: bool = True
    wipe_requested_at: datetime | None = None
    wipe_confirmed_at: datetime | None = None
    last_active_at: datetime | None = None
    record_id: int

    @property
    def actions(self) -> tuple[DeviceAction, ...]:
        """The links offered for this state."""
        wiped = (DeviceAction.DELETE_INFO,) if self.wipe_requested_at is not None else ()
        if self.state is DeviceState.ACTIVE_PUSH:
            return (DeviceAction.DISABLE_NOTIFICATION, DeviceAction.WIPE)
        if self.state is DeviceState.ACTIVE_NO_PUSH:
            return (DeviceAction.ENABLE_NOTIFICATION, DeviceAction.WIPE)
        if self.state is DeviceState.WIPE_REQUESTED:
            return (DeviceAction.DELETE_INFO,)
        return (DeviceAction.WIPE, *wiped)


# -- change notifications (for the XMPP side) ------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class MembershipChanged:
    """Members joined or left a group (or it was renamed: both tuples empty, ``renamed``)."""

    group_id: GroupId
    organisation_id: OrganisationId
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    is_renamed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupDeleted:
    """A group was deleted; ``members`` were in it."""

    group_id: GroupId
    organisation_id: OrganisationId
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class UserChanged:
    """A user was created, registered or their profile changed (name, organisation)."""

    login: str
    organisation_id: OrganisationId


@dataclass(frozen=True, slots=True, kw_only=True)
class UserDisabled:
    """Login was disabled: end the user's sessions now."""

    login: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UserDeleted:
    """A user was deleted (their account too; sessions already ended)."""

    login: str
    organisation_id: OrganisationId
    groups: tuple[GroupId, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceWiped:
    """A wipe was requested: end that device's sessions now."""

    login: str
    device: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyChanged:
    """Affiliations, permissions or communities changed: who may message whom changed."""


DirectoryEvent = (
    MembershipChanged
    | GroupDeleted
    | UserChanged
    | UserDisabled
    | UserDeleted
    | DeviceWiped
    | PolicyChanged
)
