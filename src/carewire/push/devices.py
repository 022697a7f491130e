"""Which devices may be pushed to: the directory's Disable Notification and pending wipes.

The DEVICES record of a device (named ``login/resource``) carries
``push_enabled``, set by an administrator's Disable / Enable Notification
(the directory's devices facet); a device waiting to be wiped is never
pushed to either. A device without a DEVICES record (a client that never
registered with clinical presence) may be pushed to.
"""

from __future__ import annotations

from carewire.datasets.query import Filter, FilterOp, Query
from carewire.datasets.service import DatasetService
from carewire.directory.devices import DEVICES
from carewire.directory.service import DirectoryService


class DirectoryDevicePolicy:
    """:class:`carewire.push.appserver.DevicePolicy` on the DEVICES dataset."""

    def __init__(self, datasets: DatasetService, directory: DirectoryService) -> None:
        self.datasets = datasets
        self.directory = directory

    async def may_push(self, device: str) -> bool:
        """False when notifications are disabled for the device or a wipe is pending."""
        if self.directory.devices.is_wipe_pending(device):
            return False
        page = await self.datasets.query(
            DEVICES, Query(filters=(Filter(field="name", op=FilterOp.EQ, value=device),), limit=1)
        )
        if not page.records:
            return True
        return page.records[0].values.get("push_enabled") is not False
