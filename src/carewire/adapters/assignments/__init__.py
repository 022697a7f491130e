"""The assignment manager adapter (seed 003): assignments move through their states by themselves.

An enabled instance keeps ASSIGNMENTS true to the clock and to the patients:
new assignments become ``next``, once a minute ``next`` ones start and
finished ones end, patient-based ones follow the patient's bed or end when
the patient leaves, all through a rate-limited queue. See docs/assignments.md.
"""

from __future__ import annotations

from carewire.adapters.assignments.runtime import AssignmentManager, TickGate
from carewire.adapters.assignments.settings import SETTINGS
from carewire.adapters.base import AdapterConfig, AdapterKind
from carewire.clock import Clock
from carewire.datasets.service import DatasetService
from carewire.security.audit import AuditTrail

COMPONENT = "AssignmentManager"

__all__ = ["COMPONENT", "AssignmentManager", "TickGate", "make_kind"]


def make_kind(
    *, datasets: DatasetService, audit: AuditTrail, clock: Clock, ticks: TickGate | None = None
) -> AdapterKind:
    """The kind; each enabled instance runs an :class:`AssignmentManager` on these services."""

    def factory(config: AdapterConfig) -> AssignmentManager:
        return AssignmentManager(config, datasets=datasets, audit=audit, clock=clock, ticks=ticks)

    return AdapterKind(
        component=COMPONENT,
        description="Moves assignments through next, active, expired and deleted; "
        "patient-based assignments follow the patient's bed.",
        settings=SETTINGS,
        required_datasets=("ASSIGNMENTS", "PATIENTS", "LOCATIONS"),
        is_singleton=True,
        factory=factory,
    )
