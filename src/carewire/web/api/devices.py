"""A user's devices (``/users/{login}/devices``): push notification, remote wipe, delete.

Each device is a DEVICES record (written when the user's client registers),
named here by its record id. Its status text is the one User's Devices
shows ("Device is active. Push notification active." …). Wiping ends the
device's sessions at once and tells the app to erase its data when it next
connects; only a device whose wipe was requested may have its information
deleted (otherwise a 409). A user of another organisation is a 404 for an
organisation's token. Every change is recorded in the audit trail by the
directory service (``directory.device.*``).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from carewire.directory.model import Caller, Device, DeviceAction, DeviceState, UnknownDeviceError
from carewire.directory.service import DirectoryService
from carewire.web.api.deps import Directory, DirectoryCaller, authorize
from carewire.web.api.directory_schemas import Id, Login

router = APIRouter(
    prefix="/users/{login}/devices", tags=["devices"], dependencies=[Depends(authorize)]
)


class DeviceOut(BaseModel):
    """One of the user's devices."""

    id: int = Field(description="The DEVICES record's id.")
    name: str = Field(description="`login/resource`.")
    login: str
    status: DeviceState
    push_enabled: bool
    wipe_requested_at: datetime | None
    wipe_confirmed_at: datetime | None
    last_active_at: datetime | None = Field(description="Most Recent Activity.")
    actions: list[DeviceAction] = Field(description="The Remove Access actions offered now.")


class DeviceList(BaseModel):
    """The user's devices, most recently active first."""

    devices: list[DeviceOut]


class NotificationsBody(BaseModel):
    """Enable or Disable Notification."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool


def device_out(d: Device) -> DeviceOut:
    """The answer for a device."""
    return DeviceOut(
        id=d.record_id,
        name=d.name,
        login=d.login,
        status=d.state,
        push_enabled=d.push_enabled,
        wipe_requested_at=d.wipe_requested_at,
        wipe_confirmed_at=d.wipe_confirmed_at,
        last_active_at=d.last_active_at,
        actions=list(d.actions),
    )


async def _device(
    directory: DirectoryService, caller: Caller, login: str, device_id: int
) -> Device:
    """The user's device with this record id."""
    for d in await directory.devices.list_for(caller, login):
        if d.record_id == device_id:
            return d
    raise UnknownDeviceError(f"no device {device_id} of {login}")


@router.get("", summary="List a user's devices")
async def list_devices(login: Login, directory: Directory, caller: DirectoryCaller) -> DeviceList:
    """User's Devices: status, push notification, Most Recent Activity, actions."""
    found = await directory.devices.list_for(caller, login)
    return DeviceList(devices=[device_out(d) for d in found])


@router.put("/{device_id}/notifications", summary="Enable or disable push notifications")
async def set_notifications(
    login: Login,
    device_id: Id,
    body: NotificationsBody,
    directory: Directory,
    caller: DirectoryCaller,
) -> DeviceOut:
    """Enable or Disable Notification for the device."""
    device = await _device(directory, caller, login, device_id)
    return device_out(await directory.devices.set_push(caller, login, device.name, body.enabled))


@router.post("/{device_id}/wipe", summary="Wipe a device")
async def wipe(
    login: Login, device_id: Id, directory: Directory, caller: DirectoryCaller
) -> DeviceOut:
    """Request a remote wipe: the device's sessions end now; the app erases its data."""
    device = await _device(directory, caller, login, device_id)
    return device_out(await directory.devices.wipe(caller, login, device.name))


@router.delete("/{device_id}", status_code=204, summary="Delete a device's information")
async def delete_device(
    login: Login, device_id: Id, directory: Directory, caller: DirectoryCaller
) -> Response:
    """Delete Device Info (only after a wipe was requested: otherwise a 409)."""
    device = await _device(directory, caller, login, device_id)
    await directory.devices.delete(caller, login, device.name)
    return Response(status_code=204)
