"""User's Devices: status texts, push notification, remote wipe, deleting device information."""

from __future__ import annotations

from datetime import timedelta

import pytest

from carewire.datasets.query import Filter, FilterOp, Query
from carewire.directory.model import (
    DeviceAction,
    DeviceState,
    DeviceWiped,
    ReadOnlyError,
    UnknownDeviceError,
)
from carewire.errors import ConflictError
from tests.directory.world import AUDITOR, SYSADMIN, World


async def device(world: World, login: str, resource: str, *, minutes_ago: int) -> int:
    users = await world.datasets.query(
        "USERS", Query(filters=(Filter(field="login", op=FilterOp.EQ, value=login),))
    )
    rec = await world.datasets.create(
        "DEVICES",
        {
            "name": f"{login}/{resource}",
            "status": "Registered",
            "vendor": "XMPP",
            "usr": users.records[0].id,
            "last_active_at": world.clock.now() - timedelta(minutes=minutes_ago),
        },
    )
    await world.datasets.create(
        "REGISTRATION_HISTORY",
        {"device_status": "Registered", "device": rec.id, "usr": users.records[0].id},
    )
    return int(rec.id)


async def test_states_and_actions(world: World) -> None:
    org = await world.hospital()
    await world.user(org, "a@example.org", login="a")
    await device(world, "a", "phone", minutes_ago=5)
    await device(world, "a", "tablet", minutes_ago=60)
    admin = world.admin_of(org)
    phone, tablet = await world.directory.devices.list_for(admin, "a")
    assert (phone.name, tablet.name) == ("a/phone", "a/tablet")  # most recent first
    assert phone.state is DeviceState.ACTIVE_PUSH
    assert phone.state.value == "Device is active. Push notification active."
    assert phone.actions == (DeviceAction.DISABLE_NOTIFICATION, DeviceAction.WIPE)

    quiet = await world.directory.devices.set_push(admin, "a", "a/phone", False)
    assert quiet.state.value == "Device is active. Push notifications not active."
    assert quiet.actions == (DeviceAction.ENABLE_NOTIFICATION, DeviceAction.WIPE)
    assert (await world.directory.devices.set_push(admin, "a", "a/phone", True)).push_enabled

    with pytest.raises(ConflictError):  # only after a wipe
        await world.directory.devices.delete(admin, "a", "a/phone")
    wiped = await world.directory.devices.wipe(admin, "a", "a/phone")
    assert wiped.state.value == "Remote wipe requested."
    assert wiped.actions == (DeviceAction.DELETE_INFO,)
    assert world.directory.devices.is_wipe_pending("a/phone")
    assert not world.directory.devices.is_wipe_pending("a/tablet")
    assert DeviceWiped(login="a", device="a/phone") in world.events

    done = await world.directory.devices.confirm_wiped("a", "a/phone")
    assert done.state.value == "Device is logged out."
    assert done.wipe_requested_at is not None
    assert done.actions == (DeviceAction.WIPE, DeviceAction.DELETE_INFO)
    assert not world.directory.devices.is_wipe_pending("a/phone")
    with pytest.raises(UnknownDeviceError):
        await world.directory.devices.confirm_wiped("a", "a/tablet")  # no wipe asked

    await world.directory.devices.delete(admin, "a", "a/phone")
    assert [d.name for d in await world.directory.devices.list_for(admin, "a")] == ["a/tablet"]
    history = await world.datasets.query("REGISTRATION_HISTORY", Query())
    assert history.total == 2  # kept, no longer linked to the deleted device
    entries, _ = await world.audit.store.entries(action="directory.device")
    assert [e.event.action for e in entries][:3] == [
        "directory.device.delete",
        "directory.device.wiped",
        "directory.device.wipe",
    ]


async def test_wipe_pending_survives_a_reload(world: World) -> None:
    org = await world.hospital()
    await world.user(org, "a@example.org", login="a")
    await device(world, "a", "phone", minutes_ago=1)
    await world.directory.devices.wipe(SYSADMIN, "a", "a/phone")
    world.directory.index.set_wipe_pending("a/phone", False)
    await world.directory.reload()
    assert world.directory.devices.is_wipe_pending("a/phone")


async def test_unknown_devices_and_read_only(world: World) -> None:
    org = await world.hospital()
    await world.user(org, "a@example.org", login="a")
    await world.user(org, "b@example.org", login="b")
    await device(world, "b", "phone", minutes_ago=1)
    with pytest.raises(UnknownDeviceError):
        await world.directory.devices.wipe(SYSADMIN, "a", "b/phone")  # not a's
    with pytest.raises(ReadOnlyError):
        await world.directory.devices.wipe(AUDITOR, "b", "b/phone")
    assert await world.directory.devices.list_for(SYSADMIN, "a") == []
