"""The alarm intake: one PCD-04 message in, its record written, its ACK out.

:class:`AlarmIntake` is the MLLP listener's handler. For each message, in
order: the rate limit (a flood is answered AR without reading further), the
PCD-04 reading (:mod:`.report`; AR/AE with a reason), duplicate detection by
MSH-10, then one transaction that finds the alarm by its key (sender and
alarm id), the patient by MRN and the bed by PV1-3, and creates or updates
the alarm record. The ACK (AA) is built only once that transaction has
committed, so an AA always means the alarm is stored; the record's
``RecordChanged`` reaches the rules engine after the commit too.

Nothing here logs message content: reasons name fields and codes only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from carewire.adapters.hl7 import ack
from carewire.adapters.hl7.ack import AckCode, ErrorCode
from carewire.adapters.pcd.beds import BedCache
from carewire.adapters.pcd.limits import RecentIds, TokenBucket
from carewire.adapters.pcd.report import AlarmReport, Location, Refusal, read_report
from carewire.adapters.pcd.settings import PcdSettings
from carewire.clock import Clock
from carewire.datasets.model import Origin, Record
from carewire.datasets.service import Batch, DatasetService
from carewire.errors import CarewireError

log = logging.getLogger(__name__)

#: Audits a rejected message: (reason, details without patient data).
RejectSink = Callable[[str, Mapping[str, str]], Awaitable[None]]


@dataclass(slots=True, kw_only=True)
class IntakeCounters:
    """What the intake did, beyond the listener's MLLP counters."""

    alarms_created: int = 0
    alarms_updated: int = 0
    duplicates: int = 0
    rate_limited: int = 0
    rejected: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as JSON-ready values."""
        return {
            "alarms_created": self.alarms_created,
            "alarms_updated": self.alarms_updated,
            "duplicates": self.duplicates,
            "rate_limited": self.rate_limited,
            "rejected": self.rejected,
        }


class AlarmIntake:
    """Turns PCD-04 messages into alarm records; its :meth:`handle` answers each with an ACK."""

    def __init__(
        self,
        *,
        settings: PcdSettings,
        datasets: DatasetService,
        clock: Clock,
        counters: IntakeCounters,
        on_reject: RejectSink | None = None,
        beds: BedCache | None = None,
    ) -> None:
        self._s = settings
        self._beds = beds or BedCache()
        self._datasets = datasets
        self._clock = clock
        self._counters = counters
        self._on_reject = on_reject
        self._bucket = TokenBucket(settings.rate_limit)
        self._recent = RecentIds()
        self._is_limiting = False

    async def handle(self, message: bytes) -> bytes:
        """The ACK for one message (AA after commit; AE or AR with a reason)."""
        now = self._clock.now()
        if not self._bucket.take(self._clock.monotonic()):
            return await self._limited(message)
        self._is_limiting = False
        try:
            report = read_report(message, now=now)
            key = (report.sender, report.header.control_id)
            if key in self._recent:
                self._counters.duplicates += 1
                return self._ack(report, AckCode.AA, "duplicate: already applied")
            is_applied = await self._apply(report)
        except Refusal as refusal:
            return await self._refuse(message, refusal)
        except CarewireError as exc:  # the data refused the alarm (a value out of its type …)
            log.warning("PCD alarm not stored: %s", type(exc).__name__)
            not_stored = Refusal(
                AckCode.AE, ErrorCode.APPLICATION_INTERNAL_ERROR, "alarm not stored"
            )
            return await self._refuse(message, not_stored)
        self._recent.add(key)
        if not is_applied:
            self._counters.duplicates += 1
            return self._ack(report, AckCode.AA, "duplicate: already applied")
        return self._ack(report, AckCode.AA)

    def _ack(self, report: AlarmReport, code: AckCode, text: str = "") -> bytes:
        return ack.build_ack(
            report.header, code, now=self._clock.now(), text=text, application=self._s.application
        )

    async def _limited(self, message: bytes) -> bytes:
        self._counters.rate_limited += 1
        if not self._is_limiting:  # audit the start of a flood, not each message of it
            self._is_limiting = True
            log.warning("PCD listener %s: rate limit exceeded", self._s.reference_name)
            await self._audit("rate limit exceeded", {"limit": f"{self._s.rate_limit}/s"})
        return ack.reject_unreadable(
            message,
            code=AckCode.AR,
            reason="rate limit exceeded; resend later",
            now=self._clock.now(),
        )

    async def _refuse(self, message: bytes, refusal: Refusal) -> bytes:
        self._counters.rejected += 1
        header = refusal.header
        log.warning("PCD message refused (%s): %s", refusal.code.value, refusal.reason)
        details = {"code": refusal.code.value, "error": str(int(refusal.error))}
        if header is not None:
            details["sender"] = header.sending_application[:60]
            details["control_id"] = header.control_id[:60]
        await self._audit(refusal.reason, details)
        if header is None:
            return ack.reject_unreadable(
                message,
                code=refusal.code,
                reason=refusal.reason,
                now=self._clock.now(),
                error=refusal.error,
            )
        return ack.build_ack(
            header,
            refusal.code,
            now=self._clock.now(),
            text=refusal.reason,
            error=refusal.error,
            application=self._s.application,
        )

    async def _audit(self, reason: str, details: Mapping[str, str]) -> None:
        if self._on_reject is not None:
            await self._on_reject(reason, details)

    async def _apply(self, report: AlarmReport) -> bool:
        """Write the alarm in one transaction; False when this message was applied before."""
        origin = Origin(adapter=self._s.reference_name, actor=f"pcd:{report.sender[:40]}")
        name = self._s.alarms
        async with self._datasets.batch(origin, "pcd_alarm") as b:
            found = await b.find_many(
                name, [{"alarm_id": report.alarm_id, "sender": report.sender}]
            )
            existing = found[0] if found else None
            if existing is not None and existing.get("control_id") == report.header.control_id:
                return False
            values = await self._values(b, report, existing)
            if existing is None:
                await b.create(name, {**values, "status": "Open"})
                self._counters.alarms_created += 1
            else:
                await b.update(name, existing.id, values)
                self._counters.alarms_updated += 1
        return True

    async def _values(
        self, b: Batch, report: AlarmReport, existing: Record | None
    ) -> dict[str, object]:
        values: dict[str, object] = {
            "alarm_id": report.alarm_id,
            "sender": report.sender,
            "source": report.source,
            "code": report.code,
            "code_name": report.code_name,
            "text": report.text,
            "measurement": report.measurement,
            "priority": report.priority,
            "alert_priority": self._s.alert_priority(report.priority),
            "kind": report.kind,
            "phase": report.phase,
            "state": report.state,
            "device_state": report.device_state,
            "mrn": report.mrn,
            "location": report.location.label,
            "location_code": report.location.code,
            "control_id": report.header.control_id,
            "interface_name": self._s.reference_name,
        }
        if existing is None:
            values["alarm_time"] = report.alarm_time
        if report.state != "active" and (existing is None or existing.get("ended_at") is None):
            values["ended_at"] = report.alarm_time
        ds = self._datasets.registry.get(self._s.alarms)
        patient = await self._patient(b, report.mrn) if ds.link("patient") else None
        if patient is not None:
            values["patient"] = patient.id
        if ds.link("bed"):
            bed = await self._bed(b, report.location)
            if bed is None and patient is not None and isinstance(patient.get("bed"), int):
                bed = int(str(patient.get("bed")))
            if bed is not None:
                values["bed"] = bed
        return values

    async def _patient(self, b: Batch, mrn: str) -> Record | None:
        if not mrn:
            return None
        found = await b.find_many("PATIENTS", [{"mrn": mrn}])
        return found[0] if found else None

    async def _bed(self, b: Batch, location: Location) -> int | None:
        facility = location.facility or self._s.default_facility
        if not (location.room and location.bed and facility):
            return None
        is_known, bed = self._beds.lookup((facility, location.room, location.bed))
        if is_known:
            return bed
        generation = self._beds.generation
        key = {
            "bed_number": location.bed,
            "room": {"room_number": location.room, "facility": {"name": facility}},
        }
        try:
            found = await b.find_many("BEDS", [key])
        except CarewireError:  # no such room or facility: the alarm keeps its text location
            found = []
        bed = int(found[0].id) if found else None
        self._beds.keep((facility, location.room, location.bed), bed, generation=generation)
        return bed
