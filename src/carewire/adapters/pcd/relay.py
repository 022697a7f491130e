"""PCD-05 back to the reporter: alert delivery and responses as ORA^R41, retried, bounded.

Theory of operation. The dataset service announces every committed write;
:class:`StatusHub` (subscribed once, for the kind) picks the few that say
something about an alarm's alert and hands them to the running instances'
:class:`StatusRelay`:

- DELIVERIES: a firing whose ``source`` is an alarm record and that now links
  the alert's MESSAGES record teaches the relay *message → alarm*; the
  message's deliveries already received or displayed are then read once, so
  a receipt that was committed before the link is not lost;
- MESSAGE_DELIVERIES: ``received_at`` set → **delivered**, ``displayed_at``
  set → **read**, for a message known to be an alarm's alert;
- the alarm record: ``status`` changed to a value starting ``Accept`` →
  **accepted**, ``Declin`` or ``Reject`` → **rejected** (the example rules'
  Accept and Decline updates), with ``responder``.

Each (alarm, status, clinician) is sent once. The relay's one worker sends
in order, each ORA^R41 in its own MLLP connection; a refused (AR) status is
not retried, anything else (no answer, AE, a connection error) is retried
with a back-off doubling from ``retry_delay``, at most ``attempts`` times.
A status that is finally not delivered is counted, kept as the health's last
error and written to the audit trail. The queue is bounded; a full queue
drops (and counts) the newest status rather than holding the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from carewire.adapters.hl7.ack import AckCode, ack_code
from carewire.adapters.hl7.errors import Hl7Error
from carewire.adapters.hl7.mllp import send_mllp
from carewire.adapters.pcd.beds import BedCache
from carewire.adapters.pcd.limits import RecentIds
from carewire.adapters.pcd.settings import PcdSettings
from carewire.adapters.pcd.status import AlarmStatus, StatusReport, build_status
from carewire.clock import Clock
from carewire.datasets.model import ChangeKind, RecordChanged
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.datasets.service import DatasetService
from carewire.errors import CarewireError

log = logging.getLogger(__name__)

MAX_QUEUE = 10_000
SEND_TIMEOUT = 10.0

#: Audits a status that could not be delivered: (reason, details without patient data).
FailureSink = Callable[[str, Mapping[str, str]], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Job:
    alarm: int
    status: AlarmStatus | None = None  # None: catch up on the deliveries of ``message``
    recipient: int | None = None  # IDENTITIES id
    responder: str = ""
    message: int | None = None


def response_status(value: object) -> AlarmStatus | None:
    """The PCD-05 status a response written to ``status`` stands for, if any."""
    text = str(value or "").strip().lower()
    if text.startswith("accept"):
        return AlarmStatus.ACCEPTED
    if text.startswith(("declin", "reject")):
        return AlarmStatus.REJECTED
    return None


def _source_id(source: object, alarms: str) -> int | None:
    prefix = f"{alarms}/"
    text = str(source or "")
    if not text.startswith(prefix) or not text[len(prefix) :].isdigit():
        return None
    return int(text[len(prefix) :])


@dataclass(slots=True, kw_only=True)
class RelayCounters:
    """PCD-05 statuses: sent, retried, failed (given up), dropped (queue full)."""

    status_sent: int = 0
    status_retries: int = 0
    status_failed: int = 0
    status_dropped: int = 0
    last_error: str = ""

    def as_dict(self) -> dict[str, int | str]:
        """JSON-ready values."""
        return {
            "status_sent": self.status_sent,
            "status_retries": self.status_retries,
            "status_failed": self.status_failed,
            "status_dropped": self.status_dropped,
            "status_last_error": self.last_error,
        }


class StatusRelay:
    """One instance's PCD-05 sender: decides, queues and sends its alarms' statuses."""

    def __init__(
        self,
        *,
        settings: PcdSettings,
        datasets: DatasetService,
        clock: Clock,
        counters: RelayCounters,
        ssl_context: ssl.SSLContext | None = None,
        on_failure: FailureSink | None = None,
        attempts: int = 5,
        retry_delay: float = 1.0,
    ) -> None:
        self._s = settings
        self._datasets = datasets
        self._clock = clock
        self._counters = counters
        self._ssl = ssl_context
        self._on_failure = on_failure
        self._attempts = attempts
        self._retry_delay = retry_delay
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(MAX_QUEUE)
        self._alerts: dict[int, int] = {}  # MESSAGES id → alarm record id
        self._sent = RecentIds(50_000)

    @property
    def is_configured(self) -> bool:
        """Whether a PCD-05 endpoint is set."""
        return bool(self._s.status_host and self._s.status_port)

    def offer(self, event: RecordChanged) -> None:
        """Look at one committed write (called by the hub, synchronously)."""
        if not self.is_configured or event.new is None:
            return
        job = self._job_for(event)
        if job is None:
            return
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self._counters.status_dropped += 1

    def _job_for(self, event: RecordChanged) -> _Job | None:
        new, changed = event.new or {}, event.changed
        if event.dataset == self._s.alarms:
            status = response_status(new.get("status")) if "status" in changed else None
            if status is None or event.kind is not ChangeKind.UPDATE:
                return None
            return _Job(
                alarm=event.record_id, status=status, responder=str(new.get("responder") or "")
            )
        if event.dataset == "DELIVERIES" and "message" in changed:
            alarm = _source_id(new.get("source"), self._s.alarms)
            message = new.get("message")
            if alarm is None or not isinstance(message, int):
                return None
            self._alerts[message] = alarm
            return _Job(alarm=alarm, message=message)
        if event.dataset == "MESSAGE_DELIVERIES":
            alarm = self._alerts.get(int(str(new.get("message") or 0)))
            if alarm is None:
                return None
            recipient = new.get("recipient")
            rid = recipient if isinstance(recipient, int) else None
            if "displayed_at" in changed and new.get("displayed_at") is not None:
                return _Job(alarm=alarm, status=AlarmStatus.READ, recipient=rid)
            if "received_at" in changed and new.get("received_at") is not None:
                return _Job(alarm=alarm, status=AlarmStatus.DELIVERED, recipient=rid)
        return None

    async def run(self) -> None:
        """Send queued statuses until cancelled."""
        while True:
            job = await self._queue.get()
            try:
                await self._handle(job)
            except CarewireError as exc:  # the alarm or clinician record went away meanwhile
                log.info("PCD-05 status skipped: %s", type(exc).__name__)
            finally:
                self._queue.task_done()

    async def drain(self) -> None:
        """Wait until every queued status is sent or given up (for tests and shutdown)."""
        await self._queue.join()

    async def _handle(self, job: _Job) -> None:
        if job.status is None:
            await self._catch_up(job)
            return
        alarm = await self._datasets.get(self._s.alarms, job.alarm)
        if alarm.get("interface_name") not in (None, "", self._s.reference_name):
            return  # another instance's alarm
        responder = job.responder or await self._login(job.recipient)
        key = (f"{job.alarm}/{job.status.value}", responder)
        if key in self._sent:
            return
        self._sent.add(key)
        report = StatusReport(
            alarm=job.alarm,
            alarm_id=str(alarm.get("alarm_id") or ""),
            sender=str(alarm.get("sender") or ""),
            code=str(alarm.get("code") or ""),
            code_name=str(alarm.get("code_name") or ""),
            mrn=str(alarm.get("mrn") or ""),
            location=str(alarm.get("location_code") or ""),
            status=job.status,
            responder=responder,
            at=self._clock.now(),
        )
        await self._send(report)

    async def _catch_up(self, job: _Job) -> None:
        page = await self._datasets.query(
            "MESSAGE_DELIVERIES",
            Query(filters=(Filter(field="message", op=FilterOp.EQ, value=job.message),)),
        )
        for rec in page.records:
            rid = rec.get("recipient")
            recipient = rid if isinstance(rid, int) else None
            if rec.get("received_at") is not None:
                await self._handle(
                    _Job(alarm=job.alarm, status=AlarmStatus.DELIVERED, recipient=recipient)
                )
            if rec.get("displayed_at") is not None:
                await self._handle(
                    _Job(alarm=job.alarm, status=AlarmStatus.READ, recipient=recipient)
                )

    async def _login(self, identity: int | None) -> str:
        if identity is None:
            return ""
        rec = await self._datasets.get("IDENTITIES", identity)
        return str(rec.get("name") or "").split("@", 1)[0]

    async def _send(self, report: StatusReport) -> None:
        message = build_status(report, now=self._clock.now(), application=self._s.application)
        delay, reason = self._retry_delay, ""
        for attempt in range(1, self._attempts + 1):
            try:
                reply = await send_mllp(
                    message,
                    host=self._s.status_host,
                    port=self._s.status_port,
                    timeout=SEND_TIMEOUT,
                    ssl_context=self._ssl,
                )
            except (OSError, TimeoutError, Hl7Error) as exc:
                reason = f"{type(exc).__name__}"
            else:
                code = ack_code(reply)
                if code is AckCode.AA:
                    self._counters.status_sent += 1
                    return
                reason = f"answered {code.value if code else 'without an MSA'}"
                if code is AckCode.AR:
                    break
            if attempt < self._attempts:
                self._counters.status_retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
        await self._failed(report, reason)

    async def _failed(self, report: StatusReport, reason: str) -> None:
        self._counters.status_failed += 1
        self._counters.last_error = f"PCD-05 {report.status.value} not delivered: {reason}"
        log.warning("PCD-05 status for alarm record %d not delivered: %s", report.alarm, reason)
        if self._on_failure is not None:
            await self._on_failure(
                reason,
                {"alarm_record": str(report.alarm), "status": report.status.value},
            )


class StatusHub:
    """The one dataset-service subscriber of the kind; forwards to the running relays."""

    def __init__(self, beds: BedCache | None = None) -> None:
        self._relays: dict[str, StatusRelay] = {}
        self.beds = beds or BedCache()

    def __call__(self, event: RecordChanged) -> None:
        """Offer ``event`` to every running relay (and show it to the intake's bed cache)."""
        self.beds.notice(event)
        for relay in list(self._relays.values()):
            relay.offer(event)

    def attach(self, name: str, relay: StatusRelay) -> None:
        """Route events to ``relay`` (of the instance ``name``)."""
        self._relays[name] = relay

    def detach(self, name: str, relay: StatusRelay) -> None:
        """Stop routing to ``relay`` (if it is still the instance's)."""
        if self._relays.get(name) is relay:
            del self._relays[name]
