"""Clinical presence in the datasets: USERS, PRESENCE_HISTORY, DEVICES, REGISTRATION_HISTORY.

Theory of operation: presence routing never waits on the database. Every
write is a job on one queue, run in order by one worker task this module
owns (started at first use, drained and stopped on ``server/stopping``), so
history rows come out in the order the changes happened. The jobs waiting
when the worker looks share one transaction (up to ``GROUP_MAX`` of them, or
``GROUP_SECONDS`` of work, so other writers are not held up long): a login
storm leaves a DEVICES upsert and two history rows per login, and one commit
each could not keep up (thousands of writes were still queued at shutdown).
Lookups go through the group's transaction, so a job sees the writes of the
jobs before it. When a job fails, the group is rolled back and its jobs run
again one by one; the failed one is logged and skipped, and the next change
writes the current state again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from carewire.datasets.model import Origin, Record, RecordId
from carewire.datasets.query import Filter, FilterOp, Query, Sort
from carewire.datasets.service import Batch, DatasetService, RecordNotFoundError
from carewire.datasets.values import RecordError
from carewire.errors import ConflictError
from carewire.features.clinical_presence.model import Aggregate, DeviceInfo, DeviceStatus

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]
STOP_TIMEOUT = 10.0
#: At most this many jobs share a transaction…
GROUP_MAX = 64
#: …and no job joins one that has run this long (seconds): other writers wait meanwhile.
GROUP_SECONDS = 0.02
PAGE = 500
VENDOR = "XMPP"

USERS = "USERS"
PRESENCE_HISTORY = "PRESENCE_HISTORY"
PRESENCE_STATES = "PRESENCE_STATES"
DEVICES = "DEVICES"
REGISTRATION_HISTORY = "REGISTRATION_HISTORY"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceEvent:
    """A registration or disconnection of one device, to record.

    Attributes:
        login: The account.
        name: The device's name (DEVICES key), ``login/resource``.
        status: The new status.
        info: What the client registered.
        ip_address: The session's remote address.
        keep_status: Leave DEVICES.status as it is (an unregistered device disconnecting).
        active_at: When the device's app connected (DEVICES.last_active_at), if it did now.
    """

    login: str
    name: str
    status: DeviceStatus
    info: DeviceInfo
    ip_address: str = ""
    keep_status: bool = False
    active_at: datetime | None = None


class PresenceRecords:
    """Writes clinical presence to the datasets, off the routing path."""

    def __init__(
        self,
        datasets: DatasetService,
        *,
        origin: Callable[[str], Origin],
        dataset: Callable[[str], str] = str,
    ) -> None:
        """Write through ``datasets``.

        Args:
            datasets: The dataset service.
            origin: The origin of a write made for an actor ("user", "system", …).
            dataset: The dataset that plays a role (the XMPP adapter may map
                USERS to another dataset).
        """
        self.datasets = datasets
        self._origin = origin
        self._ds = dataset
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._users: dict[str, RecordId] = {}

    # -- the queue --------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Run ``job`` after every job submitted before it."""
        self._queue.put_nowait(job)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(
                self._run(), name="clinical-presence-records"
            )

    async def _run(self) -> None:
        while True:
            group = [await self._queue.get()]
            try:
                await self._run_group(group)
            finally:
                for _ in group:
                    self._queue.task_done()

    async def _run_group(self, group: list[Job]) -> None:
        """Run ``group`` (and the jobs queued meanwhile, appended to it) in one transaction."""
        try:
            async with self.datasets.group("clinical_presence"):
                started = time.perf_counter()
                index = 0
                while True:
                    await group[index]()
                    index += 1
                    if index == len(group):
                        if (
                            self._queue.empty()
                            or len(group) >= GROUP_MAX
                            or time.perf_counter() - started >= GROUP_SECONDS
                        ):
                            break
                        group.append(self._queue.get_nowait())
            return
        except Exception:  # one of them failed: the group is rolled back
            if len(group) == 1:
                log.exception("a clinical presence record could not be written")
                self._users.clear()  # ids created in the rolled-back transaction
                return
        self._users.clear()
        for job in group:  # each alone, in order, as if never grouped
            try:
                async with self.datasets.group("clinical_presence"):
                    await job()
            except Exception:  # supervisor: one failed write must not stop the others
                log.exception("a clinical presence record could not be written")
                self._users.clear()

    async def drain(self) -> None:
        """Return once every job submitted so far has run."""
        await self._queue.join()

    async def stop(self, _payload: object = None) -> None:
        """Hook ``server/stopping``: finish the queued writes (bounded), then stop the worker."""
        try:
            await asyncio.wait_for(self.drain(), STOP_TIMEOUT)
        except TimeoutError:
            log.warning("clinical presence: %d writes abandoned at shutdown", self._queue.qsize())
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    # -- users --------------------------------------------------------------------

    async def user_id(self, login: str) -> RecordId:
        """The USERS record of ``login``, created (just the login) when missing."""
        cached = self._users.get(login)
        if cached is not None:
            return cached
        users = self._ds(USERS)
        try:
            async with self.datasets.batch(self._origin(""), "user_record") as b:
                found = await self._lookup(b, users, "login", login)
                if found is None:
                    found = await b.create(users, {"login": login})
        except ConflictError:  # created meanwhile by someone else
            found = await self._find(users, "login", login)
            if found is None:
                raise
        self._users[login] = found.id
        return found.id

    async def _find(self, dataset: str, field: str, value: str) -> Record | None:
        page = await self.datasets.query(
            dataset, Query(filters=(Filter(field=field, op=FilterOp.EQ, value=value),), limit=1)
        )
        return page.records[0] if page.records else None

    async def _lookup(self, b: Batch, dataset: str, field: str, value: str) -> Record | None:
        """The record whose ``field`` is ``value`` as ``b``'s transaction sees it.

        By key when ``field`` is the dataset's key (the built-in USERS and DEVICES); a
        dataset mapped in its place with another key is queried (committed rows only).
        """
        try:
            found = await b.find_many(dataset, [{field: value}])
        except RecordError:
            return await self._find(dataset, field, value)
        return found[0] if found else None

    async def _retrying(self, login: str, write: Callable[[RecordId], Awaitable[None]]) -> None:
        """Run ``write`` with the user's record id; once more if the cached id went stale."""
        try:
            await write(await self.user_id(login))
        except (RecordNotFoundError, RecordError):
            if self._users.pop(login, None) is None:
                raise
            await write(await self.user_id(login))

    # -- presence ------------------------------------------------------------------

    async def presence_changed(
        self, login: str, agg: Aggregate, *, resource: str, changed_by: str, at: datetime
    ) -> None:
        """Update USERS.presence_show/presence_status and add a PRESENCE_HISTORY row."""

        async def write(usr: RecordId) -> None:
            async with self.datasets.batch(self._origin(changed_by), "presence_changed") as b:
                await b.update(
                    self._ds(USERS),
                    usr,
                    {"presence_show": agg.show, "presence_status": agg.status or None},
                )
                await b.create(
                    self._ds(PRESENCE_HISTORY),
                    {
                        "changed_by": changed_by,
                        "resource": resource,
                        "sent_at": at,
                        "show": agg.show,
                        "status": agg.status or None,
                        "usr": usr,
                    },
                )

        await self._retrying(login, write)

    async def state_duration(self, status: str) -> int | None:
        """The duration (minutes) of the PRESENCE_STATES state with this status text, if any."""
        if not status:
            return None
        page = await self.datasets.query(
            self._ds(PRESENCE_STATES),
            Query(
                filters=(
                    Filter(field="status", op=FilterOp.EQ, value=status),
                    Filter(field="duration", op=FilterOp.GT, value=0),
                ),
                sort=(Sort(field="id"),),
                limit=1,
            ),
        )
        if not page.records:
            return None
        duration = page.records[0].values.get("duration")
        return duration if isinstance(duration, int) else None

    async def last_change(self, login: str) -> Record | None:
        """The user's latest PRESENCE_HISTORY row."""
        usr = await self._find(self._ds(USERS), "login", login)
        if usr is None:
            return None
        page = await self.datasets.query(
            self._ds(PRESENCE_HISTORY),
            Query(
                filters=(Filter(field="usr", op=FilterOp.EQ, value=int(usr.id)),),
                sort=(Sort(field="id", is_descending=True),),
                limit=1,
            ),
        )
        return page.records[0] if page.records else None

    async def present_users(self) -> list[str]:
        """Logins whose USERS record shows them present (not offline, not empty)."""
        logins: list[str] = []
        filters = (
            Filter(field="presence_show", op=FilterOp.NOT_EMPTY),
            Filter(field="presence_show", op=FilterOp.NE, value="offline"),
        )
        while True:
            page = await self.datasets.query(
                self._ds(USERS),
                Query(filters=filters, sort=(Sort(field="id"),), offset=len(logins), limit=PAGE),
            )
            logins += [str(r.values.get("login") or "") for r in page.records]
            if len(page.records) < PAGE:
                return [login for login in logins if login]

    # -- devices -------------------------------------------------------------------

    async def device_changed(self, event: DeviceEvent) -> None:
        """Upsert the DEVICES record and add a REGISTRATION_HISTORY row."""

        async def write(usr: RecordId) -> None:
            async with self.datasets.batch(self._origin("user"), "device_changed") as b:
                before = await self._lookup(b, self._ds(DEVICES), "name", event.name)
                previous_ip = str(before.values.get("ip_address") or "") if before else ""
                info = event.info
                device: dict[str, object] = {
                    "name": event.name,
                    "vendor": VENDOR,
                    "ip_address": event.ip_address or None,
                    "usr": usr,
                }
                if not event.keep_status or before is None:
                    device["status"] = event.status.value
                if event.active_at is not None:
                    device["last_active_at"] = event.active_at
                if event.status is DeviceStatus.UNREGISTERED:
                    device["token"] = None
                elif info.push_token:
                    device["token"] = info.push_token
                rec = await b.upsert(self._ds(DEVICES), device)
                history: dict[str, object] = {
                    "device_status": event.status.value,
                    "ip_address": event.ip_address,
                    "previous_ip_address": previous_ip,
                    "application_version": info.app_version,
                    "os_version": info.os_version,
                    "hardware_version": info.hardware_version,
                    "token": info.push_token,
                    "uuid": info.uuid,
                }
                # Empty values are left unset rather than stored as "".
                history = {k: v for k, v in history.items() if v}
                await b.create(
                    self._ds(REGISTRATION_HISTORY), history | {"device": rec.id, "usr": usr}
                )

        await self._retrying(event.login, write)

    async def device_active(self, name: str, at: datetime) -> None:
        """Set DEVICES.last_active_at ("Most Recent Activity") of a recorded device."""
        async with self.datasets.batch(self._origin("user"), "device_active") as b:
            found = await self._lookup(b, self._ds(DEVICES), "name", name)
            if found is None:
                return  # its registration is recorded first (same queue): nothing to update yet
            await b.update(self._ds(DEVICES), found.id, {"last_active_at": at})

    async def device_priority(self, name: str, priority: str) -> None:
        """Set DEVICES.priority, the priority of the latest message sent to a recorded device."""
        async with self.datasets.batch(self._origin("system"), "device_priority") as b:
            found = await self._lookup(b, self._ds(DEVICES), "name", name)
            if found is None or found.values.get("priority") == priority:
                return
            await b.update(self._ds(DEVICES), found.id, {"priority": priority})
