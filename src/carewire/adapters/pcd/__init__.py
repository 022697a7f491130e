"""The PCD Alarms adapter: IHE PCD alarms (PCD-04 in, PCD-05 back) over HL7 v2 MLLP.

An enabled instance listens (port 7000 by default) for PCD-04 Report Alarm
messages (ORU^R40), writes each alarm as a record of its alarms dataset
(DEVICE_ALARMS) and acknowledges it after the commit; rules turn the record
into alerts. The alert's delivery and the clinicians' responses go back to
the reporter's endpoint as PCD-05 (ORA^R41). See docs/alarms.md.
"""

from __future__ import annotations

from carewire.adapters.base import AdapterConfig, AdapterKind
from carewire.adapters.pcd.relay import StatusHub
from carewire.adapters.pcd.runtime import PcdRuntime, PcdServices, TlsProvider
from carewire.adapters.pcd.settings import COMPONENT, REQUIRED_DATASETS, SETTINGS
from carewire.clock import Clock
from carewire.datasets.service import DatasetService
from carewire.security.audit import AuditTrail

__all__ = ["COMPONENT", "RETRY_DELAY", "PcdRuntime", "make_kind"]

#: First back-off between PCD-05 attempts, in seconds, unless :func:`make_kind` is given one.
RETRY_DELAY = 1.0


def make_kind(
    *,
    datasets: DatasetService,
    clock: Clock,
    audit: AuditTrail | None = None,
    server_tls: TlsProvider | None = None,
    client_tls: TlsProvider | None = None,
    retry_delay: float | None = None,
) -> AdapterKind:
    """The PCD Alarms kind; its runtimes write through ``datasets`` and audit to ``audit``.

    Args:
        datasets: The dataset service (its events feed the PCD-05 relay).
        clock: The clock.
        audit: The audit trail.
        server_tls: The listener's TLS context, for instances with TLS on.
        client_tls: The PCD-05 client's TLS context (default: the system's trust store).
        retry_delay: First back-off between PCD-05 attempts, in seconds
            (:data:`RETRY_DELAY` when None).
    """
    hub = StatusHub()
    datasets.subscribe(hub)
    services = PcdServices(
        datasets=datasets,
        clock=clock,
        hub=hub,
        audit=audit,
        server_tls=server_tls,
        client_tls=client_tls,
        retry_delay=RETRY_DELAY if retry_delay is None else retry_delay,
    )

    def factory(config: AdapterConfig) -> PcdRuntime:
        return PcdRuntime(config, services)

    return AdapterKind(
        component=COMPONENT,
        description="IHE PCD alarms over HL7 v2 MLLP: PCD-04 in as records, PCD-05 status back.",
        settings=SETTINGS,
        required_datasets=REQUIRED_DATASETS,
        factory=factory,
    )
