"""Clinical presence in the datasets: USERS, PRESENCE_HISTORY, DEVICES, REGISTRATION_HISTORY.

Theory of operation: presence routing never waits on the database. Every
write is a job on one queue, run in order by one worker task this module
owns (started at first use, drained and stopped on ``server/stopping``), so
history rows come out in the order the changes happened.

A login storm leaves a DEVICES upsert, a USERS update and two history rows per
login; written one transaction and a dozen statements each, they could not keep
up (thousands were still queued at shutdown, and lost). So the items waiting
when the worker looks (up to ``GROUP_MAX``) share one transaction, and the
common changes are not closures but typed records (:class:`PresenceChange`,
:class:`DeviceEvent`, :class:`ActiveChange`, :class:`PriorityChange`): a run of
them is written with a few bulk statements (one key lookup per dataset, then
``create_many``/``update_many``), their order kept by working the changes out
in memory first. Other jobs (start-up restore, ending a virtual session) run as
closures between runs, inside the same transaction. When anything fails the
group is rolled back and its items run again one by one; the failed one is
logged and skipped, and the next change writes the current state again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from carewire.datasets.model import Origin, Record, RecordId
from carewire.datasets.query import Filter, FilterOp, Query, Sort
from carewire.datasets.service import Batch, DatasetService
from carewire.datasets.values import RecordError
from carewire.errors import ConflictError
from carewire.features.clinical_presence.model import Aggregate, DeviceInfo, DeviceStatus

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]
STOP_TIMEOUT = 10.0
#: At most this many items share a transaction (other writers wait while it is open).
GROUP_MAX = 128
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


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceChange:
    """A user's aggregated presence changed: USERS.presence_* and a PRESENCE_HISTORY row.

    Attributes:
        login: The account.
        agg: The new aggregate.
        resource: The resource that caused it (or ``*``).
        changed_by: Who changed it (``user``, ``system``, an admin).
        at: When.
        then: Run after the change is written (in the same transaction), if set.
    """

    login: str
    agg: Aggregate
    resource: str
    changed_by: str
    at: datetime
    then: Job | None = None


@dataclass(frozen=True, slots=True)
class ActiveChange:
    """A recorded device's app was active (DEVICES.last_active_at)."""

    name: str
    at: datetime


@dataclass(frozen=True, slots=True)
class PriorityChange:
    """The priority of the latest message sent to a recorded device (DEVICES.priority)."""

    name: str
    priority: str


Change = PresenceChange | DeviceEvent | ActiveChange | PriorityChange
Item = Job | Change


@dataclass(slots=True)
class _Device:
    """A DEVICES record as a run of changes leaves it (worked out before writing)."""

    id: RecordId | None  # None until written, when the run creates it
    is_new: bool
    values: dict[str, object]  # as the run leaves them
    user_changes: dict[str, object] = field(default_factory=dict)  # the "user" origin's
    system_changes: dict[str, object] = field(default_factory=dict)  # the priority ("system")


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
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._users: dict[str, RecordId] = {}

    # -- the queue --------------------------------------------------------------

    def submit(self, job: Item) -> None:
        """Write ``job`` (a change, or a closure to run) after every one submitted before it."""
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

    async def _run_group(self, group: list[Item]) -> None:
        """Write ``group`` and the items waiting now (appended to it) in one transaction."""
        while len(group) < GROUP_MAX and not self._queue.empty():
            group.append(self._queue.get_nowait())
        try:
            async with self.datasets.group("clinical_presence"):
                await self._run_items(group)
            return
        except Exception:  # something failed: the group is rolled back
            self._users.clear()  # ids created in the rolled-back transaction
            if len(group) == 1 and callable(group[0]):
                log.exception("a clinical presence record could not be written")
                return
        # Each alone, in order, as if never grouped. A change gets one more try than a
        # closure: the user's cached record may have gone (deleted meanwhile), and the
        # cache is empty now.
        for item in group:
            tries = 1 if callable(item) or len(group) == 1 else 2
            for attempt in range(1, tries + 1):
                try:
                    async with self.datasets.group("clinical_presence"):
                        await self._run_items([item])
                    break
                except Exception:  # supervisor: one failed write must not stop the others
                    self._users.clear()
                    if attempt == tries:
                        log.exception("a clinical presence record could not be written")

    async def _run_items(self, items: list[Item]) -> None:
        """Runs of changes in bulk, closures one at a time, in order."""
        run: list[Change] = []
        for item in items:
            if not callable(item):
                run.append(item)
                continue
            if run:
                await self._write(run)
                run = []
            await item()
        if run:
            await self._write(run)

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

    async def _user_ids(self, logins: list[str]) -> dict[str, RecordId]:
        """The USERS record of each login: one lookup and one insert for those not cached."""
        missing = [login for login in dict.fromkeys(logins) if login not in self._users]
        if missing:
            users = self._ds(USERS)
            async with self.datasets.batch(self._origin(""), "user_records") as b:
                found = await self._find_many(b, users, "login", missing)
                for rec in found or ():
                    self._users[str(rec.values.get("login"))] = rec.id
                new = [login for login in missing if login not in self._users]
                if new and found is not None:
                    for rec in await b.create_many(users, [{"login": login} for login in new]):
                        self._users[str(rec.values.get("login"))] = rec.id
            for login in missing:
                if login not in self._users:  # not found by key: one at a time
                    await self.user_id(login)
        return {login: self._users[login] for login in logins}

    async def _find(self, dataset: str, field: str, value: str) -> Record | None:
        page = await self.datasets.query(
            dataset, Query(filters=(Filter(field=field, op=FilterOp.EQ, value=value),), limit=1)
        )
        return page.records[0] if page.records else None

    @staticmethod
    async def _find_many(
        b: Batch, dataset: str, field: str, values: list[str]
    ) -> list[Record] | None:
        """The records whose key ``field`` is one of ``values`` (None: not the key)."""
        try:
            return await b.find_many(dataset, [{field: value} for value in values])
        except RecordError:  # a dataset mapped in the built-in one's place, keyed otherwise
            return None

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

    # -- writing a run of changes ---------------------------------------------------------

    async def write_now(self, changes: list[Change]) -> None:
        """Write ``changes`` at once (not queued), in one transaction."""
        async with self.datasets.group("clinical_presence"):
            await self._write(changes)

    async def _write(self, run: list[Change]) -> None:
        """A run of changes in a few bulk statements, as if written one by one in order."""
        logins = [c.login for c in run if isinstance(c, PresenceChange | DeviceEvent)]
        users = await self._user_ids(logins)
        await self._write_devices(run, users)
        presence = [c for c in run if isinstance(c, PresenceChange)]
        start = 0
        for end in range(1, len(presence) + 1):  # one batch per stretch of one origin
            if end == len(presence) or presence[end].changed_by != presence[start].changed_by:
                await self._write_presence(presence[start:end], users)
                start = end
        for change in presence:
            if change.then is not None:
                await change.then()

    async def _write_presence(
        self, changes: list[PresenceChange], users: dict[str, RecordId]
    ) -> None:
        """USERS.presence_show/presence_status and PRESENCE_HISTORY rows (one origin)."""
        async with self.datasets.batch(
            self._origin(changes[0].changed_by), "presence_changed"
        ) as b:
            await b.update_many(
                self._ds(USERS),
                [
                    (
                        int(users[c.login]),
                        {"presence_show": c.agg.show, "presence_status": c.agg.status or None},
                    )
                    for c in changes
                ],
            )
            await b.create_many(
                self._ds(PRESENCE_HISTORY),
                [
                    {
                        "changed_by": c.changed_by,
                        "resource": c.resource,
                        "sent_at": c.at,
                        "show": c.agg.show,
                        "status": c.agg.status or None,
                        "usr": users[c.login],
                    }
                    for c in changes
                ],
            )

    async def _write_devices(self, run: list[Change], users: dict[str, RecordId]) -> None:
        """DEVICES records and REGISTRATION_HISTORY rows for the run's device changes."""
        names = [c.name for c in run if isinstance(c, DeviceEvent | ActiveChange | PriorityChange)]
        if not names:
            return
        ds = self._ds(DEVICES)
        async with self.datasets.batch(self._origin("user"), "device_changed") as b:
            unique = list(dict.fromkeys(names))
            found = await self._find_many(b, ds, "name", unique)
            if found is None:
                found = [r for n in unique if (r := await self._find(ds, "name", n)) is not None]
            state = {
                str(rec.values.get("name")): _Device(
                    id=rec.id, is_new=False, values=dict(rec.values)
                )
                for rec in found
            }
            history = self._work_out(run, users, state)
            created = [d for d in state.values() if d.is_new]
            if created:
                rows = [d.user_changes | d.system_changes for d in created]
                for dev, rec in zip(created, await b.create_many(ds, rows), strict=True):
                    dev.id = rec.id
            changed = [d for d in state.values() if not d.is_new and d.user_changes]
            if changed:
                await b.update_many(ds, [(int(d.id or 0), d.user_changes) for d in changed])
            if history:
                await b.create_many(
                    self._ds(REGISTRATION_HISTORY),
                    [row | {"device": dev.id} for dev, row in history],
                )
        prioritised = [d for d in state.values() if not d.is_new and d.system_changes]
        if prioritised:
            async with self.datasets.batch(self._origin("system"), "device_priority") as b:
                await b.update_many(ds, [(int(d.id or 0), d.system_changes) for d in prioritised])

    @staticmethod
    def _work_out(
        run: list[Change], users: dict[str, RecordId], state: dict[str, _Device]
    ) -> list[tuple[_Device, dict[str, object]]]:
        """Apply the run's device changes to ``state`` in order; the history rows they add."""
        history: list[tuple[_Device, dict[str, object]]] = []
        for change in run:
            if isinstance(change, DeviceEvent):
                dev = state.get(change.name)
                previous_ip = str(dev.values.get("ip_address") or "") if dev else ""
                info = change.info
                usr = users[change.login]
                device: dict[str, object] = {
                    "vendor": VENDOR,
                    "ip_address": change.ip_address or None,
                    "usr": usr,
                }
                if not change.keep_status or dev is None:
                    device["status"] = change.status.value
                if change.active_at is not None:
                    device["last_active_at"] = change.active_at
                if change.status is DeviceStatus.UNREGISTERED:
                    device["token"] = None
                elif info.push_token:
                    device["token"] = info.push_token
                if dev is None:
                    dev = state[change.name] = _Device(
                        id=None, is_new=True, values={}, user_changes={"name": change.name}
                    )
                dev.values.update(device)
                dev.user_changes.update(device)
                row: dict[str, object] = {
                    "device_status": change.status.value,
                    "ip_address": change.ip_address,
                    "previous_ip_address": previous_ip,
                    "application_version": info.app_version,
                    "os_version": info.os_version,
                    "hardware_version": info.hardware_version,
                    "token": info.push_token,
                    "uuid": info.uuid,
                }
                # Empty values are left unset rather than stored as "".
                history.append((dev, {k: v for k, v in row.items() if v} | {"usr": usr}))
            elif isinstance(change, ActiveChange):
                dev = state.get(change.name)
                if dev is not None:  # else its registration is not recorded: nothing to update
                    dev.values["last_active_at"] = change.at
                    dev.user_changes["last_active_at"] = change.at
            elif isinstance(change, PriorityChange):
                dev = state.get(change.name)
                if dev is not None and dev.values.get("priority") != change.priority:
                    dev.values["priority"] = change.priority
                    dev.system_changes["priority"] = change.priority
        return history

    # -- reads ------------------------------------------------------------------------------

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
