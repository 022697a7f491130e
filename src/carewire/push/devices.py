"""Which devices may be pushed to: the directory's Disable Notification and pending wipes.

The DEVICES record of a device (named ``login/resource``) carries
``push_enabled``, set by an administrator's Disable / Enable Notification
(the directory's devices facet); a device waiting to be wiped is never
pushed to either. A device without a DEVICES record (a client that never
registered with clinical presence) may be pushed to.

A push fan-out must not query the dataset once per push, nor wait for a query
at all: the names of the devices with notifications disabled (few) are kept in
memory, read when the app server starts (:meth:`DirectoryDevicePolicy.load`).
Every committed DEVICES write of this process updates them at once; for what
another process (the command line) changed they are read again when a push
finds them older than :data:`MAX_AGE` seconds, in the background (that push,
and those until the read is done, are judged on what is in memory).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

from carewire.datasets.model import RecordChanged
from carewire.datasets.query import MAX_LIMIT, Filter, FilterOp, Query
from carewire.datasets.service import DatasetService
from carewire.directory.devices import DEVICES
from carewire.directory.service import DirectoryService

MAX_AGE: Final = 30.0

log = logging.getLogger(__name__)


class DirectoryDevicePolicy:
    """:class:`carewire.push.appserver.DevicePolicy` on the DEVICES dataset."""

    def __init__(self, datasets: DatasetService, directory: DirectoryService) -> None:
        self.datasets = datasets
        self.directory = directory
        self._disabled: set[str] = set()
        self._loaded_at = -MAX_AGE
        self._is_loaded = False
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None  # a background reload, owned here
        datasets.subscribe(self._changed, (DEVICES,))

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
            self._is_loaded = True

    async def load(self) -> None:
        """Read the devices with notifications disabled (at start)."""
        await self._reload()

    async def close(self) -> None:
        """Stop a background reload."""
        if self._refresh is not None:
            self._refresh.cancel()
            await asyncio.gather(self._refresh, return_exceptions=True)
            self._refresh = None

    async def _background_reload(self) -> None:
        try:
            await self._reload()
        except Exception:  # a supervisor: the next push tries again
            log.exception("reading the devices with notifications disabled failed")

    async def may_push(self, device: str) -> bool:
        """False when notifications are disabled for the device or a wipe is pending."""
        if self.directory.devices.is_wipe_pending(device):
            return False
        if time.monotonic() - self._loaded_at >= MAX_AGE:
            if not self._is_loaded:
                await self._reload()  # never read yet (the app server was not started)
            elif self._refresh is None or self._refresh.done():
                self._refresh = asyncio.create_task(self._background_reload(), name="push-devices")
        return device not in self._disabled
