"""The running part of a PCD Alarms instance: the MLLP listener and the PCD-05 relay.

The adapter manager supervises :meth:`PcdRuntime.run` (a crash restarts it
with back-off). It binds the listener, attaches its :class:`~.relay.StatusRelay`
to the kind's hub and runs the relay's worker in a task group it owns; when
cancelled it stops accepting, ends the open connections and detaches. Start,
stop and every refused message go to the audit trail; counters feed the
health note.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from carewire.adapters.base import AdapterConfig
from carewire.adapters.hl7.mllp import ConnectionSet, MllpCounters, close_mllp, serve_mllp
from carewire.adapters.pcd.intake import AlarmIntake, IntakeCounters
from carewire.adapters.pcd.relay import RelayCounters, StatusHub, StatusRelay
from carewire.adapters.pcd.settings import PcdSettings, settings_of
from carewire.clock import Clock
from carewire.datasets.service import DatasetService
from carewire.errors import ConfigError
from carewire.security.audit import AuditEvent, AuditTrail, Channel, Outcome

log = logging.getLogger(__name__)

#: Builds the listener's TLS context with the server's certificate (``Options.tls``).
TlsProvider = Callable[[], ssl.SSLContext]


@dataclass(frozen=True, slots=True, kw_only=True)
class PcdServices:
    """What every PCD runtime of a process shares.

    Attributes:
        datasets: Where alarms are written and statuses read.
        clock: The clock.
        hub: The kind's one dataset-service subscriber.
        audit: The audit trail (None: not recorded, in tests).
        server_tls: The listener's TLS context when an instance turns TLS on.
        client_tls: The context for a PCD-05 endpoint with TLS.
        retry_delay: First back-off of a PCD-05 retry, in seconds.
    """

    datasets: DatasetService
    clock: Clock
    hub: StatusHub
    audit: AuditTrail | None = None
    server_tls: TlsProvider | None = None
    client_tls: TlsProvider | None = None
    retry_delay: float = 1.0


class PcdRuntime:
    """One enabled instance's listener and relay."""

    def __init__(self, config: AdapterConfig, services: PcdServices) -> None:
        self.settings: PcdSettings = settings_of(config)
        self._services = services
        self.mllp = MllpCounters()
        self.intake = IntakeCounters()
        self.relay_counters = RelayCounters()
        self.relay = StatusRelay(
            settings=self.settings,
            datasets=services.datasets,
            clock=services.clock,
            counters=self.relay_counters,
            ssl_context=self._client_tls(),
            on_failure=self._status_failed,
            retry_delay=services.retry_delay,
        )
        self.port: int | None = None
        self.bound = asyncio.Event()

    def _client_tls(self) -> ssl.SSLContext | None:
        if not self.settings.status_tls:
            return None
        provider = self._services.client_tls
        return provider() if provider is not None else ssl.create_default_context()

    def _server_tls(self) -> ssl.SSLContext | None:
        if not self.settings.tls:
            return None
        if self._services.server_tls is None:
            raise ConfigError("TLS: this process has no server certificate to listen with")
        return self._services.server_tls()

    async def run(self) -> None:
        """Listen and relay until cancelled."""
        s = self.settings
        intake = AlarmIntake(
            settings=s,
            datasets=self._services.datasets,
            clock=self._services.clock,
            counters=self.intake,
            on_reject=self._rejected,
            beds=self._services.hub.beds,
        )
        connections = ConnectionSet()
        server = await serve_mllp(
            intake.handle,
            host=s.host,
            port=s.port,
            counters=self.mllp,
            ssl_context=self._server_tls(),
            max_message=s.max_message,
            connections=connections,
            clock=self._services.clock,
        )
        self.port = int(server.sockets[0].getsockname()[1])
        self._services.hub.attach(s.reference_name, self.relay)
        log.info("PCD listener %s on %s:%d", s.reference_name, s.host, self.port)
        await self._audit("pcd.listener.start", Outcome.SUCCESS, {"port": str(self.port)})
        self.bound.set()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.relay.run(), name=f"pcd-relay-{s.reference_name}")
                await asyncio.Event().wait()
        finally:
            self._services.hub.detach(s.reference_name, self.relay)
            await close_mllp(server, connections)
            log.info("PCD listener %s stopped", s.reference_name)
            await self._audit("pcd.listener.stop", Outcome.SUCCESS, {"port": str(self.port)})

    def stats(self) -> dict[str, int | str | None]:
        """Every counter, JSON-ready."""
        return {**self.mllp.as_dict(), **self.intake.as_dict(), **self.relay_counters.as_dict()}

    def health(self) -> str:
        """``listening on …; messages N (AA/AE/AR); alarms …; PCD-05 sent/failed``."""
        m, i, r = self.mllp, self.intake, self.relay_counters
        tls = " (TLS)" if self.settings.tls else ""
        where = (
            "starting"
            if self.port is None
            else f"listening on {self.settings.host}:{self.port}{tls}"
        )
        note = (
            f"{where}; messages {m.messages} (AA {m.acked_aa}, AE {m.acked_ae}, AR {m.acked_ar}); "
            f"framing errors {m.framing_errors}, oversize {m.oversize}, "
            f"rate-limited {i.rate_limited}, duplicates {i.duplicates}; "
            f"alarms new {i.alarms_created}, updated {i.alarms_updated}; "
            f"PCD-05 sent {r.status_sent}, failed {r.status_failed}"
        )
        return note + (f"; last error: {r.last_error}" if r.last_error else "")

    async def _rejected(self, reason: str, details: Mapping[str, str]) -> None:
        await self._audit("pcd.message.reject", Outcome.FAILURE, {"reason": reason, **details})

    async def _status_failed(self, reason: str, details: Mapping[str, str]) -> None:
        await self._audit("pcd.status.failed", Outcome.FAILURE, {"reason": reason, **details})

    async def _audit(self, action: str, outcome: Outcome, details: Mapping[str, str]) -> None:
        audit = self._services.audit
        if audit is None:
            return
        await audit.record(
            AuditEvent(
                actor=f"adapter:{self.settings.reference_name}",
                channel=Channel.SYSTEM,
                action=action,
                target=self.settings.reference_name,
                outcome=outcome,
                details=dict(details),
            )
        )
