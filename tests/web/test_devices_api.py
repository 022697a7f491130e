"""``/users/{login}/devices``: status, push notifications, remote wipe, delete device info."""

from __future__ import annotations

from datetime import timedelta

from carewire.datasets.query import Filter, FilterOp, Query
from carewire.security.tokens import Role
from tests.web.conftest import assert_problem
from tests.web.directory_world import CLIENT_IP, World, db_url, world

__all__ = ["db_url", "world"]


async def _device(world: World, login: str, resource: str, *, minutes_ago: int = 0) -> int:
    """A DEVICES record of ``login``, as clinical presence writes it when a client registers."""
    ds = world.platform.datasets
    users = await ds.query(
        "USERS", Query(filters=(Filter(field="login", op=FilterOp.EQ, value=login),), limit=1)
    )
    record = await ds.create(
        "DEVICES",
        {
            "name": f"{login}/{resource}",
            "status": "Registered",
            "vendor": "XMPP",
            "usr": users.records[0].id,
            "last_active_at": world.clock.now() - timedelta(minutes=minutes_ago),
        },
    )
    return int(record.id)


async def test_list_and_switch_notifications(world: World) -> None:
    org = await world.hospital("General")
    await world.user(org, "jane")
    phone = await _device(world, "jane", "phone")
    tablet = await _device(world, "jane", "tablet", minutes_ago=30)
    admin = await world.client("general", organisation=org)
    devices = (await admin.get("/users/jane/devices")).json()["devices"]
    assert [(d["id"], d["name"]) for d in devices] == [
        (phone, "jane/phone"),
        (tablet, "jane/tablet"),
    ]
    assert devices[0]["status"] == "Device is active. Push notification active."
    assert devices[0]["actions"] == ["Disable Notification", "Wipe Device"]
    r = await admin.put(f"/users/jane/devices/{phone}/notifications", json={"enabled": False})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "Device is active. Push notifications not active."
    assert (
        r.json()["actions"] == ["Enable Notification", "Wipe Device"]
        and r.json()["push_enabled"] is False
    )
    r = await admin.put(f"/users/jane/devices/{phone}/notifications", json={"enabled": True})
    assert r.json()["status"] == "Device is active. Push notification active."
    entries = await world.audit("directory.device.push.disable")
    assert entries[0].event.target == "jane/phone" and entries[0].event.remote_ip == CLIENT_IP


async def test_wipe_then_delete_the_device_info(world: World) -> None:
    org = await world.hospital("General")
    await world.user(org, "jane")
    phone = await _device(world, "jane", "phone")
    assert_problem(await world.system.delete(f"/users/jane/devices/{phone}"), 409, "conflict")
    r = await world.system.post(f"/users/jane/devices/{phone}/wipe")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "Remote wipe requested."
    assert (
        r.json()["actions"] == ["Delete Device Info"] and r.json()["wipe_requested_at"] is not None
    )
    assert world.platform.directory.devices.is_wipe_pending("jane/phone")
    assert (await world.system.delete(f"/users/jane/devices/{phone}")).status_code == 204
    assert (await world.system.get("/users/jane/devices")).json()["devices"] == []
    assert_problem(
        await world.system.post(f"/users/jane/devices/{phone}/wipe"), 404, "unknown-device"
    )
    assert [e.event.action for e in await world.audit("directory.device.delete")] == [
        "directory.device.delete"
    ]


async def test_a_device_is_found_only_under_its_user_and_organisation(world: World) -> None:
    mine, theirs = await world.hospital("Mine"), await world.hospital("Theirs")
    await world.user(mine, "mia")
    await world.user(theirs, "tom")
    toms = await _device(world, "tom", "phone")
    admin = await world.client("mine", organisation=mine)
    assert_problem(await admin.get("/users/tom/devices"), 404, "unknown-user")
    assert_problem(await admin.post(f"/users/tom/devices/{toms}/wipe"), 404, "unknown-user")
    assert_problem(await admin.post(f"/users/mia/devices/{toms}/wipe"), 404, "unknown-device")
    body = {"enabled": False}
    assert_problem(
        await admin.put(f"/users/mia/devices/{toms}/notifications", json=body),
        404,
        "unknown-device",
    )
    reader = await world.client("reader", role=Role.READ_ONLY, organisation=theirs)
    assert len((await reader.get("/users/tom/devices")).json()["devices"]) == 1
    for c in (reader, world.auditor):
        assert_problem(await c.post(f"/users/tom/devices/{toms}/wipe"), 403, "forbidden")
    device = (await world.system.get("/users/tom/devices")).json()["devices"][0]
    assert device["status"] == "Device is active. Push notification active."
