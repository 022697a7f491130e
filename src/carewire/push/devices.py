"""Which devices may be pushed to: the directory's Disable Notification and pending wipes.

The DEVICES record of a device (named ``login/resource``) carries
``push_enabled``, set by an administrator's Disable / Enable Notification
(the directory's devices facet); a device waiting to be wiped is never
pushed to either. A device without a DEVICES record (a client that never
registered with clinical presence) may be pushed to.

The answers are kept in memory (a push fan-out asks once per device, not
once per push): any committed change to DEVICES in this process drops them
at once, and they are read again after :data:`MAX_AGE` seconds anyway, for
changes another process (the command line) made.
"""

from __future__ import annotations

import time
from typing import Final

from carewire.datasets.model import RecordChanged
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.datasets.service import DatasetService
from carewire.directory.devices import DEVICES
from carewire.directory.service import DirectoryService

MAX_AGE: Final = 30.0


class DirectoryDevicePolicy:
    """:class:`carewire.push.appserver.DevicePolicy` on the DEVICES dataset."""

    def __init__(self, datasets: DatasetService, directory: DirectoryService) -> None:
        self.datasets = datasets
        self.directory = directory
        self._known: dict[str, tuple[bool, float]] = {}
        datasets.subscribe(self._changed)

    def _changed(self, event: RecordChanged) -> None:
        if event.dataset == DEVICES:
            self._known.clear()

    async def may_push(self, device: str) -> bool:
        """False when notifications are disabled for the device or a wipe is pending."""
        if self.directory.devices.is_wipe_pending(device):
            return False
        known = self._known.get(device)
        if known is not None and time.monotonic() - known[1] < MAX_AGE:
            return known[0]
        page = await self.datasets.query(
            DEVICES, Query(filters=(Filter(field="name", op=FilterOp.EQ, value=device),), limit=1)
        )
        allowed = not page.records or page.records[0].values.get("push_enabled") is not False
        self._known[device] = (allowed, time.monotonic())
        return allowed
