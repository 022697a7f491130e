"""User's Devices: the DEVICES records of a user, push notification, remote wipe.

The DEVICES dataset (written by clinical presence when a client registers)
carries ``push_enabled``, ``wipe_requested_at`` and ``last_active_at``.
Wipe marks the device wipe-pending and ends its sessions at once (the
``DeviceWiped`` notification); the device, when it next connects, is told to
erase its data and answers; then :meth:`Devices.confirm_wiped` makes it
logged out, and the administrator may delete its information.
"""

from __future__ import annotations

import logging
from datetime import datetime

from carewire.datasets.model import Record
from carewire.datasets.query import Filter, FilterOp, Query, Sort
from carewire.directory.context import Facet
from carewire.directory.model import (
    Caller,
    Device,
    DeviceState,
    DeviceWiped,
    DirectoryUser,
    UnknownDeviceError,
)
from carewire.directory.people import USERS, record_origin
from carewire.directory.policy import UNREGISTERED, device_state
from carewire.errors import ConflictError
from carewire.security.audit import Channel, Outcome

log = logging.getLogger(__name__)

DEVICES = "DEVICES"
REGISTRATION_HISTORY = "REGISTRATION_HISTORY"
LINES = "LINES"


def device_of(login: str, record: Record) -> Device:
    """The directory's view of a DEVICES record."""
    v = record.values
    wiped = v.get("wipe_requested_at")
    confirmed = v.get("wipe_confirmed_at")
    active = v.get("last_active_at")
    push = v.get("push_enabled")
    return Device(
        name=str(v.get("name")),
        login=login,
        state=device_state(
            None if v.get("status") is None else str(v.get("status")),
            None if push is None else bool(push),
            wiped,
            confirmed,
        ),
        push_enabled=push is not False,
        wipe_requested_at=wiped if isinstance(wiped, datetime) else None,
        wipe_confirmed_at=confirmed if isinstance(confirmed, datetime) else None,
        last_active_at=active if isinstance(active, datetime) else None,
        record_id=int(record.id),
    )


class Devices(Facet):
    """User's Devices (``DirectoryService.devices``)."""

    async def _records(self, login: str) -> list[Record]:
        ds = self._ctx.datasets
        users = await ds.query(
            USERS, Query(filters=(Filter(field="login", op=FilterOp.EQ, value=login),), limit=1)
        )
        if not users.records:
            return []
        page = await ds.query(
            DEVICES,
            Query(
                filters=(Filter(field="usr", op=FilterOp.EQ, value=int(users.records[0].id)),),
                sort=(Sort(field="last_active_at", is_descending=True),),
                limit=1000,
            ),
        )
        return list(page.records)

    async def _device(self, login: str, name: str) -> Device:
        for record in await self._records(login):
            if record.values.get("name") == name:
                return device_of(login, record)
        raise UnknownDeviceError(f"no device {name!r} of {login}")

    async def list_for(self, caller: Caller, login: str) -> list[Device]:
        """The user's devices, most recently active first.

        Raises:
            UnknownUserError: Not a user of the caller's organisation.
        """
        user = await self._ctx.user(caller, login, with_photo=False)
        return [device_of(user.login, r) for r in await self._records(user.login)]

    async def _change(
        self,
        caller: Caller,
        user: DirectoryUser,
        device: Device,
        action: str,
        values: dict[str, object],
    ) -> Device:
        ctx = self._ctx
        async with ctx.store.db.transaction(f"device_{action}"):
            await ctx.datasets.update(
                DEVICES, device.record_id, values, origin=record_origin(caller)
            )
            await ctx.record(
                caller,
                f"device.{action}",
                device.name,
                user=user.login,
                organisation=user.organisation_id,
            )
        return await self._device(user.login, device.name)

    async def set_push(self, caller: Caller, login: str, device: str, enabled: bool) -> Device:
        """Enable or Disable Notification.

        Raises:
            UnknownUserError: Not a user of the caller's organisation.
            UnknownDeviceError: Not a device of the user.
            ReadOnlyError: An auditor.
        """
        user = await self._ctx.user(caller, login, with_photo=False)
        self._ctx.check_write(caller)
        found = await self._device(user.login, device)
        action = "push.enable" if enabled else "push.disable"
        return await self._change(caller, user, found, action, {"push_enabled": enabled})

    async def wipe(self, caller: Caller, login: str, device: str) -> Device:
        """Wipe Device: mark it wipe-pending and end its sessions now.

        Raises:
            UnknownUserError: Not a user of the caller's organisation.
            UnknownDeviceError: Not a device of the user.
            ReadOnlyError: An auditor.
        """
        ctx = self._ctx
        user = await ctx.user(caller, login, with_photo=False)
        ctx.check_write(caller)
        found = await self._device(user.login, device)
        after = await self._change(
            caller,
            user,
            found,
            "wipe",
            {"wipe_requested_at": ctx.clock.now(), "wipe_confirmed_at": None},
        )
        ctx.index.set_wipe_pending(after.name, True)  # a logged-out device gets it when it connects
        resource = device.partition("/")[2]
        if resource:
            ctx.accounts.end_sessions(user.login, resource, text="device wipe requested")
        await ctx.notify(DeviceWiped(login=user.login, device=after.name))
        return after

    async def confirm_wiped(self, login: str, device: str) -> Device:
        """The device answered that it erased its data: it is now logged out.

        Called by the XMPP side for the device's own session.

        Raises:
            UnknownDeviceError: Not a device of the user, or no wipe was requested.
        """
        ctx = self._ctx
        found = await self._device(login, device)
        if found.state is not DeviceState.WIPE_REQUESTED:
            raise UnknownDeviceError(f"no wipe is pending for {device!r}")
        async with ctx.store.db.transaction("device_wiped"):
            await ctx.datasets.update(
                DEVICES,
                found.record_id,
                {"status": UNREGISTERED, "token": None, "wipe_confirmed_at": ctx.clock.now()},
            )
            await ctx.record_public(
                "device.wiped", device, Outcome.SUCCESS, actor=f"xmpp:{login}", channel=Channel.XMPP
            )
        ctx.index.set_wipe_pending(device, False)
        return await self._device(login, device)

    async def delete(self, caller: Caller, login: str, device: str) -> None:
        """Delete Device Info (only after a wipe was requested).

        The device's registration history is kept, no longer linked to it.

        Raises:
            UnknownUserError: Not a user of the caller's organisation.
            UnknownDeviceError: Not a device of the user.
            ConflictError: No wipe was requested for it.
            ReadOnlyError: An auditor.
        """
        ctx = self._ctx
        user = await ctx.user(caller, login, with_photo=False)
        ctx.check_write(caller)
        found = await self._device(user.login, device)
        if found.wipe_requested_at is None:
            raise ConflictError("Device information can be deleted only after a wipe.")
        async with ctx.store.db.transaction("device_delete"):
            async with ctx.datasets.batch(record_origin(caller), "device_delete") as batch:
                for dataset, link in ((REGISTRATION_HISTORY, "device"), (LINES, "devices")):
                    page = await ctx.datasets.query(
                        dataset,
                        Query(
                            filters=(Filter(field=link, op=FilterOp.EQ, value=found.record_id),),
                            limit=1000,
                        ),
                    )
                    for record in page.records:
                        await batch.update(dataset, record.id, {link: None})
                await batch.delete(DEVICES, found.record_id)
            await ctx.record(
                caller, "device.delete", device, user=user.login, organisation=user.organisation_id
            )
        ctx.index.set_wipe_pending(device, False)

    def is_wipe_pending(self, device: str) -> bool:
        """Whether a wipe is pending for the device (in memory: the XMPP hot path)."""
        return self._ctx.index.is_wipe_pending(device)

    async def pending_wipes(self) -> list[str]:
        """The devices (DEVICES names) whose wipe is pending, read from the dataset."""
        page = await self._ctx.datasets.query(
            DEVICES,
            Query(
                filters=(
                    Filter(field="wipe_requested_at", op=FilterOp.NOT_EMPTY),
                    Filter(field="wipe_confirmed_at", op=FilterOp.EMPTY),
                ),
                limit=1000,
            ),
        )
        return [str(r.values.get("name")) for r in page.records]
