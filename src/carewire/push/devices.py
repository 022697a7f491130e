"""Which devices may be pushed to: the directory's Disable Notification and pending wipes.

The DEVICES record of a device (named ``login/resource``) carries
``push_enabled``, set by an administrator's Disable / Enable Notification
(the directory's devices facet); a device waiting to be wiped is never
pushed to either. A device without a DEVICES record (a client that never
registered with clinical presence) may be pushed to.

A push fan-out must not query the dataset once per push: the names of the
devices with notifications disabled (few) are kept in memory. Every
committed DEVICES write of this process updates them at once; they are read
again at most :data:`MAX_AGE` seconds later anyway, for what another process
(the command line) changed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from carewire.datasets.model import RecordChanged
from carewire.datasets.query import MAX_LIMIT, Filter, FilterOp, Query
from carewire.datasets.service import DatasetService
from carewire.directory.devices import DEVICES
from carewire.directory.service import DirectoryService

MAX_AGE: Final = 30.0


class DirectoryDevicePolicy:
    """:class:`carewire.push.appserver.DevicePolicy` on the DEVICES dataset."""

    def __init__(self, datasets: DatasetService, directory: DirectoryService) -> None:
        self.datasets = datasets
        self.directory = directory
        self._disabled: set[str] = set()
        self._loaded_at = -MAX_AGE
        self._lock = asyncio.Lock()
        datasets.subscribe(self._changed)

    def _changed(self, event: RecordChanged) -> None:
        """A committed DEVICES write: the device's ``push_enabled`` as it is now."""
        if event.dataset != DEVICES:
            return
        for values in (event.old, event.new):
            if values is not None:
                self._disabled.discard(str(values.get("name")))
        if event.new is not None and event.new.get("push_enabled") is False:
            self._disabled.add(str(event.new.get("name")))

    async def _reload(self) -> None:
        async with self._lock:
            if time.monotonic() - self._loaded_at < MAX_AGE:
                return  # another task just did
            disabled: set[str] = set()
            offset = 0
            while True:
                page = await self.datasets.query(
                    DEVICES,
                    Query(
                        filters=(Filter(field="push_enabled", op=FilterOp.EQ, value=False),),
                        offset=offset,
                        limit=MAX_LIMIT,
                    ),
                )
                disabled.update(str(r.values.get("name")) for r in page.records)
                offset += len(page.records)
                if not page.records or offset >= page.total:
                    break
            self._disabled, self._loaded_at = disabled, time.monotonic()

    async def may_push(self, device: str) -> bool:
        """False when notifications are disabled for the device or a wipe is pending."""
        if self.directory.devices.is_wipe_pending(device):
            return False
        if time.monotonic() - self._loaded_at >= MAX_AGE:
            await self._reload()
        return device not in self._disabled
