"""The HL7 ADT adapter: admissions, transfers and discharges over MLLP into the datasets.

Theory of operation: the runtime listens for MLLP (:mod:`.mllp`; one task per
connection, messages of a connection in order). For each message
:meth:`AdtRuntime.handle`

1. parses it (:mod:`.message`) and reads the ADT content
   (:mod:`.adt_message`), then plans the writes (:mod:`.adt_plan`) — a
   message we do not understand is answered AR, one we cannot apply AE;
2. in **one** dataset transaction (``hl7_adt``, origin: this adapter, actor
   ``hl7:<MSH-3>``) checks that the sender's MSH-10 was not applied before,
   writes the plan (:mod:`.adt_apply`) and remembers the MSH-10;
3. only once that transaction committed answers AA; a resent message is
   answered AA again without being applied.

An AE also writes an Error delivery (:mod:`.failures`) and every AR and AE an
audit entry, both without patient data. Rules see the changes through the
dataset service's ``RecordChanged`` events, after commit, like any write.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from carewire.adapters.base import AdapterConfig, AdapterKind
from carewire.adapters.hl7 import ack, message
from carewire.adapters.hl7.adt_apply import (
    LOCATION_DATASETS,
    LocationCache,
    apply_many,
    apply_plan,
)
from carewire.adapters.hl7.adt_group import GroupWriter, Pending, is_groupable
from carewire.adapters.hl7.adt_message import read_adt
from carewire.adapters.hl7.adt_plan import Plan, plan
from carewire.adapters.hl7.adt_settings import COMPONENT, SETTINGS, AdtSettings
from carewire.adapters.hl7.errors import RemoteProtocolError
from carewire.adapters.hl7.failures import record_failure
from carewire.adapters.hl7.message import Message, MessageHeader
from carewire.adapters.hl7.mllp import ConnectionSet, MllpCounters, close_mllp, serve_mllp
from carewire.adapters.hl7.store import ControlIdStore
from carewire.clock import Clock
from carewire.datasets.model import Origin
from carewire.datasets.service import DatasetService
from carewire.errors import CarewireError, ConfigError, ConflictError
from carewire.security.audit import AuditEvent, AuditTrail, Channel, Outcome

log = logging.getLogger(__name__)

#: How long applied control ids are remembered (a resend comes within minutes).
DUPLICATE_WINDOW = timedelta(days=7)
PURGE_INTERVAL = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AdtServices:
    """What the ADT runtime needs of the platform (bound by the composition root).

    Attributes:
        datasets: The dataset service (every write goes through it).
        audit: The audit trail.
        clock: The clock.
        control_ids: Applied MSH-10s.
        default_tz: The time zone of times without an offset, unless the instance sets one.
        tls: Builds the server certificate's TLS context (None: TLS is unavailable).
    """

    datasets: DatasetService
    audit: AuditTrail
    clock: Clock
    control_ids: ControlIdStore
    default_tz: tzinfo
    tls: Callable[[], ssl.SSLContext] | None = None


def make_kind(services: AdtServices) -> AdapterKind:
    """The HL7 ADT adapter kind; each enabled instance runs an :class:`AdtRuntime`."""
    cache = LocationCache()
    services.datasets.subscribe(cache.on_change, LOCATION_DATASETS)
    return AdapterKind(
        component=COMPONENT,
        description=(
            "Receives HL7 v2 ADT messages over MLLP and keeps PATIENTS and their beds up to date."
        ),
        settings=SETTINGS,
        factory=lambda config: AdtRuntime(config, services, cache),
    )


class AdtRuntime:
    """One instance's listener and message handling."""

    def __init__(
        self, config: AdapterConfig, services: AdtServices, cache: LocationCache | None = None
    ) -> None:
        self.config = config
        self._cache = cache if cache is not None else LocationCache()
        self.settings = AdtSettings.from_mapping(config.settings, default_tz=services.default_tz)
        self.counters = MllpCounters()
        self.address: tuple[str, int] | None = None
        self._svc = services
        self._options = self.settings.read_options()
        self._adapter_id = config.id if config.id is not None else 0
        self._writer = GroupWriter(apply_group=self._apply_group, apply_one=self._apply_planned)

    # --- running -------------------------------------------------------------------------

    async def run(self) -> None:
        """Listen until cancelled; the listener is closed and audited on the way out."""
        s = self.settings
        connections = ConnectionSet()
        server = await serve_mllp(
            self.handle,
            host=s.bind,
            port=s.port,
            ssl_context=self._ssl_context(),
            max_message=s.max_message_bytes,
            idle_timeout=float(s.idle_timeout_seconds),
            counters=self.counters,
            connections=connections,
            clock=self._svc.clock,
        )
        sockname = server.sockets[0].getsockname()
        self.address = (str(sockname[0]), int(sockname[1]))
        log.info("HL7 ADT adapter %s listening on %s:%d", self.name, *self.address)
        await self._audit_listener("hl7.listener.start")
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._writer.run(), name=f"adt-writer-{self.name}")
                while True:
                    await self._purge()
                    await asyncio.sleep(PURGE_INTERVAL)
        finally:
            await close_mllp(server, connections)
            log.info("HL7 ADT adapter %s stopped listening", self.name)
            await self._audit_listener("hl7.listener.stop")
            self.address = None

    @property
    def name(self) -> str:
        """The instance's reference name."""
        return self.config.reference_name

    def health(self) -> str:
        """``listening on 127.0.0.1:6661, 12 messages, 1 rejected``."""
        if self.address is None:
            return "not listening"
        c = self.counters
        tls = " (TLS)" if self.settings.use_tls else ""
        return (
            f"listening on {self.address[0]}:{self.address[1]}{tls}, "
            f"{c.messages} messages, {c.acked_ae + c.acked_ar} rejected"
        )

    def counters_view(self) -> Mapping[str, int | str | None]:
        """The listener's counters (for the REST API and the console)."""
        return self.counters.as_dict()

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.settings.use_tls:
            return None
        if self._svc.tls is None:
            raise ConfigError("Use TLS: this process has no server certificate to listen with")
        return self._svc.tls()

    async def _purge(self) -> None:
        before = self._svc.clock.now() - DUPLICATE_WINDOW
        forgotten = await self._svc.control_ids.purge(before)
        if forgotten:
            log.info("forgot %d HL7 control ids older than %s", forgotten, before.date())

    # --- one message ---------------------------------------------------------------------

    async def handle(self, raw: bytes) -> bytes:
        """Apply one message and return its acknowledgement (never raises for bad input)."""
        received = self._svc.clock.now()
        try:
            parsed = message.parse(raw)
            header = message.header_of(parsed)
        except RemoteProtocolError as exc:
            await self._audit_rejected(message.UNREADABLE, ack.AckCode.AR, exc.message)
            return ack.reject_unreadable(
                raw,
                code=ack.AckCode.AR,
                reason=exc.message,
                now=received,
                error=ack.ErrorCode.SEGMENT_SEQUENCE_ERROR,
            )
        try:
            is_applied = await self._apply(parsed, header)
        except ack.Rejected as rej:
            return await self._rejected(header, rej, received)
        if not is_applied:
            log.info("HL7 message %s from %s is a duplicate", header.control_id, _sender(header))
        return self._ack(header, ack.AckCode.AA, "" if is_applied else "duplicate")

    async def _apply(self, parsed: Message, header: MessageHeader) -> bool:
        """Read, plan and write; False for a duplicate.

        Raises:
            Rejected: AR or AE.
        """
        planned = plan(read_adt(parsed, header, self._options))
        groupable = is_groupable(planned) and not self.settings.create_locations
        if groupable and self._writer.is_running:
            return await self._writer.submit(header, planned)
        return await self._apply_planned(header, planned)

    async def _apply_planned(self, header: MessageHeader, planned: Plan) -> bool:
        """One message in its own transaction; False for a duplicate."""
        try:
            async with self._svc.datasets.batch(_origin(self.name, header), "hl7_adt") as b:
                # First, so that a resend fails on the unique key before anything is written.
                await self._remember(header, planned)
                await apply_plan(
                    b,
                    planned,
                    datasets=self._svc.datasets,
                    create_locations=self.settings.create_locations,
                    cache=self._cache,
                    now=self._svc.clock.monotonic(),
                )
        except ConflictError as exc:
            if await self._is_seen(header):  # a resend (the transaction rolled back)
                return False
            raise _platform_refused(exc) from None
        except ack.Rejected:
            raise
        except CarewireError as exc:
            raise _platform_refused(exc) from None
        return True

    async def _apply_group(self, group: Sequence[Pending]) -> None:
        """Several single-patient messages of one sender in one transaction (see adt_group)."""
        async with self._svc.datasets.batch(_origin(self.name, group[0].header), "hl7_adt") as b:
            await self._svc.control_ids.remember_many(
                self._adapter_id,
                [(_sender(p.header), p.header.control_id, p.plan.event.value) for p in group],
                at=self._svc.clock.now(),
            )
            await apply_many(
                b,
                [p.plan.patients[0] for p in group],
                cache=self._cache,
                now=self._svc.clock.monotonic(),
            )

    async def _is_seen(self, header: MessageHeader) -> bool:
        return await self._svc.control_ids.is_seen(
            self._adapter_id, _sender(header), header.control_id
        )

    async def _remember(self, header: MessageHeader, planned: Plan) -> None:
        await self._svc.control_ids.remember(
            self._adapter_id,
            _sender(header),
            header.control_id,
            event=planned.event.value,
            at=self._svc.clock.now(),
        )

    async def _rejected(
        self, header: MessageHeader, rej: ack.Rejected, received: datetime
    ) -> bytes:
        log.warning(
            "HL7 message %s from %s answered %s: %s",
            header.control_id,
            _sender(header),
            rej.ack.value,
            rej.reason,
        )
        if rej.ack is ack.AckCode.AE:
            await record_failure(
                self._svc.datasets,
                origin=Origin(adapter=self.name, actor=f"hl7:{header.sending_application}"),
                source=f"HL7 {header.message_code}^{header.trigger_event} {header.control_id}",
                text=rej.detail,
                received_at=received,
                now=self._svc.clock.now(),
            )
        await self._audit_rejected(header, rej.ack, rej.reason)
        return self._ack(header, rej.ack, rej.detail, error=rej.error)

    def _ack(
        self,
        header: MessageHeader,
        code: ack.AckCode,
        text: str,
        *,
        error: ack.ErrorCode | None = None,
    ) -> bytes:
        return ack.build_ack(
            header,
            code,
            now=self._svc.clock.now(),
            text=text,
            error=error,
            application=header.receiving_application or self.settings.application,
        )

    # --- audit ---------------------------------------------------------------------------

    async def _audit_listener(self, action: str) -> None:
        host, port = self.address or (self.settings.bind, self.settings.port)
        await self._svc.audit.record(
            AuditEvent(
                actor=f"adapter:{self.name}",
                channel=Channel.SYSTEM,
                action=action,
                target=self.name,
                details={"address": f"{host}:{port}", "tls": self.settings.use_tls},
            )
        )

    async def _audit_rejected(self, header: MessageHeader, code: ack.AckCode, reason: str) -> None:
        await self._svc.audit.record(
            AuditEvent(
                actor=f"hl7:{header.sending_application or 'unknown'}",
                channel=Channel.SYSTEM,
                action="hl7.message.rejected",
                target=self.name,
                outcome=Outcome.FAILURE,
                details={
                    "ack": code.value,
                    "control_id": header.control_id,
                    "event": f"{header.message_code}^{header.trigger_event}",
                    "reason": reason,
                },
            )
        )


def _origin(adapter: str, header: MessageHeader) -> Origin:
    return Origin(adapter=adapter, actor=f"hl7:{header.sending_application or 'unknown'}")


def _sender(header: MessageHeader) -> str:
    return f"{header.sending_application}|{header.sending_facility}"


def _platform_refused(exc: CarewireError) -> ack.Rejected:
    """AE for a write the data platform refused; its message (which may quote values) goes
    only to the sender and the Error delivery, not to logs or the audit trail."""
    return ack.Rejected(
        ack=ack.AckCode.AE,
        error=ack.ErrorCode.APPLICATION_INTERNAL_ERROR,
        reason=f"the data platform refused the change ({exc.code})",
        detail=f"the data platform refused the change: {exc.message}",
    )
