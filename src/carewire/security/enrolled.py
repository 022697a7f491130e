"""Enrolled devices: whether a user has a device at an address (for the login lockout).

A locked or delayed XMPP account still admits its owner from one of their
devices (see :mod:`carewire.core.auth`). A device counts when it is a DEVICES
record of the user, not wiped nor unregistered, whose ``ip_address`` (written
by clinical presence at its last session) is the connecting address.
"""

from __future__ import annotations

from carewire.core.auth import EnrolledCheck
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.datasets.service import DatasetService


def enrolled_device_check(datasets: DatasetService) -> EnrolledCheck:
    """The check, reading USERS and DEVICES through ``datasets``."""

    async def check(login: str, remote_ip: str) -> bool:
        users = await datasets.query(
            "USERS", Query(filters=(Filter(field="login", op=FilterOp.EQ, value=login),), limit=1)
        )
        if not users.records:
            return False
        devices = await datasets.query(
            "DEVICES",
            Query(
                filters=(
                    Filter(field="usr", op=FilterOp.EQ, value=int(users.records[0].id)),
                    Filter(field="ip_address", op=FilterOp.EQ, value=remote_ip),
                    Filter(field="wipe_requested_at", op=FilterOp.EMPTY),
                ),
                limit=1,
            ),
        )
        return bool(devices.records) and devices.records[0].values.get("status") != "Unregistered"

    return check
