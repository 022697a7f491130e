"""Access to PHI: the audit of every read, the care-team rule and "break the glass".

Theory of operation:

- Every read of records that hold PHI (a dataset with an attribute marked
  PHI, or the message archive) through the REST API or the console writes
  **one** ``phi.read`` audit entry per request: who, the dataset, the record
  ids (never values), when and from which address (:meth:`PatientAccess.record_read`).
- A clinician (an XMPP user) sees a patient's details only while on the
  patient's **care team**: an active assignment for the patient, or for a
  location of the patient's bed, or membership of a conversation about the
  patient (:meth:`PatientAccess.team_reason`). The paths are walked with the
  dataset service's :class:`~carewire.datasets.paths.PathResolver`.
- Anyone else is refused (``not-on-care-team``) and may **break the glass**:
  give a reason, and the access is granted for :attr:`PatientAccess.grant_for`
  (an hour by default). The grant is stored with the reason sealed, audited
  (``phi.break-glass``), and listed by ``carewire audit break-glass``.
- Every check writes its entry: ``phi.read`` with the basis (``care-team:
  assignment``, ``break-glass:<grant id>``), or a failed ``phi.read`` when refused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from carewire.clock import Clock
from carewire.datasets.model import Dataset, Record
from carewire.datasets.paths import PathResolver, parse_path
from carewire.datasets.registry import Registry
from carewire.errors import CarewireError, ValidationError
from carewire.security.audit import AuditEvent, AuditTrail, Channel, Outcome

log = logging.getLogger(__name__)

#: Datasets whose records are PHI whatever their flags: the message archive.
MESSAGE_ARCHIVE = frozenset({"MESSAGES"})
#: The longest reason a clinician may give.
MAX_REASON = 500
#: The shortest (a word or two is not a reason).
MIN_REASON = 10
#: Record ids listed in one ``phi.read`` entry (a page is at most 1000).
MAX_IDS = 1000

#: Paths from a PATIENTS record to the logins of its care team, with the basis each gives.
TEAM_PATHS: tuple[tuple[str, str], ...] = (
    ("assignments[state=active].usr.login", "assignment"),
    ("bed.locs.assignments[state=active].usr.login", "bed-assignment"),
    ("conversations.members.login", "conversation"),
)


def holds_phi(ds: Dataset) -> bool:
    """Whether reading records of ``ds`` is a read of PHI (to be audited)."""
    return ds.has_phi or ds.name in MESSAGE_ARCHIVE


def read_details(ds: Dataset, ids: Sequence[int], basis: str = "") -> dict[str, object]:
    """The details of a ``phi.read`` entry: the dataset and record ids, never values."""
    details: dict[str, object] = {"dataset": ds.name, "ids": list(ids[:MAX_IDS])}
    if len(ids) > MAX_IDS:
        details["more"] = len(ids) - MAX_IDS
    if basis:
        details["basis"] = basis
    return details


def read_target(ds: Dataset, ids: Sequence[int]) -> str:
    """The target of a ``phi.read`` entry: ``DATASET/id`` for one record, else ``DATASET``."""
    return f"{ds.name}/{ids[0]}" if len(ids) == 1 else ds.name


class AccessDeniedError(CarewireError):
    """The reader is not on the patient's care team and holds no break-the-glass grant."""

    code = "not-on-care-team"


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """A break-the-glass grant.

    Attributes:
        id: Its id (the audit entries name it).
        login: The clinician.
        dataset: The patients' dataset.
        record_id: The patient's record.
        reason: Why, in the clinician's words.
        remote_ip: Where the request came from.
        granted_at: When.
        expires_at: Until when the patient's details can be read.
    """

    id: int
    login: str
    dataset: str
    record_id: int
    reason: str
    remote_ip: str
    granted_at: datetime
    expires_at: datetime


class BreakGlassStore(Protocol):
    """Where grants are kept (:mod:`carewire.storage.break_glass`)."""

    async def add(self, grant: Grant) -> Grant:
        """Store ``grant`` (its ``id`` is ignored); returns it with its id."""

    async def active(self, login: str, dataset: str, record_id: int, now: datetime) -> Grant | None:
        """The latest unexpired grant of ``login`` for one record."""

    async def since(self, start: datetime, limit: int) -> list[Grant]:
        """Grants made at or after ``start``, newest first."""


class PatientAccess:
    """Audits reads of PHI and decides who may read a patient's details."""

    def __init__(
        self,
        *,
        registry: Registry,
        resolver: PathResolver,
        store: BreakGlassStore,
        audit: AuditTrail,
        clock: Clock,
        grant_for: timedelta = timedelta(hours=1),
    ) -> None:
        """Use these collaborators; a grant lasts ``grant_for``."""
        self.registry = registry
        self.resolver = resolver
        self.store = store
        self.audit = audit
        self.clock = clock
        self.grant_for = grant_for

    async def record_read(
        self,
        *,
        actor: str,
        channel: Channel,
        ds: Dataset,
        ids: Sequence[int],
        remote_ip: str = "",
        basis: str = "",
    ) -> None:
        """One ``phi.read`` entry for a request that read ``ids`` of ``ds`` (if it holds PHI)."""
        if not holds_phi(ds):
            return
        await self.audit.record(
            AuditEvent(
                actor=actor,
                channel=channel,
                action="phi.read",
                target=read_target(ds, ids),
                remote_ip=remote_ip,
                details=read_details(ds, ids, basis),
            )
        )

    async def team_reason(self, login: str, patient: Record) -> str | None:
        """Why ``login`` is on the care team of ``patient`` (None when not)."""
        ds = self.registry.get(patient.dataset)
        paths = {}
        for text, basis in TEAM_PATHS:
            try:
                paths[text] = (parse_path(self.registry, ds.name, text), basis)
            except ValidationError:
                continue  # a patients dataset without that link
        found = await self.resolver.resolve_all(patient, [p for p, _ in paths.values()])
        for path, basis in paths.values():
            value = found.get(path.text)
            logins = value if isinstance(value, list) else [value]
            if login in logins:
                return basis
        return None

    async def check_patient(
        self, login: str, patient: Record, *, channel: Channel, remote_ip: str = ""
    ) -> str:
        """Allow ``login`` to read ``patient``'s details, or refuse; audited either way.

        Returns:
            The basis (``care-team:assignment``, ``break-glass:12`` …).

        Raises:
            AccessDeniedError: Not on the care team, no unexpired grant.
        """
        basis = await self._basis(login, patient)
        ds = self.registry.get(patient.dataset)
        actor = f"xmpp:{login}" if channel is Channel.XMPP else login
        if basis is None:
            await self.audit.record(
                AuditEvent(
                    actor=actor,
                    channel=channel,
                    action="phi.read",
                    target=f"{ds.name}/{patient.id}",
                    outcome=Outcome.FAILURE,
                    remote_ip=remote_ip,
                    details={"dataset": ds.name, "ids": [patient.id], "reason": "not-on-care-team"},
                )
            )
            raise AccessDeniedError(
                "not on this patient's care team: break the glass with a reason to read"
            )
        await self.record_read(
            actor=actor, channel=channel, ds=ds, ids=[patient.id], remote_ip=remote_ip, basis=basis
        )
        return basis

    async def _basis(self, login: str, patient: Record) -> str | None:
        team = await self.team_reason(login, patient)
        if team is not None:
            return f"care-team:{team}"
        grant = await self.store.active(login, patient.dataset, patient.id, self.clock.now())
        return None if grant is None else f"break-glass:{grant.id}"

    async def break_glass(
        self, login: str, patient: Record, reason: str, *, channel: Channel, remote_ip: str = ""
    ) -> Grant:
        """Grant ``login`` the patient's details for :attr:`grant_for`, for ``reason``; audited.

        Raises:
            ValidationError: The reason is shorter than :data:`MIN_REASON` or
                longer than :data:`MAX_REASON` characters (``invalid-reason``).
        """
        text = " ".join(reason.split())
        if not MIN_REASON <= len(text) <= MAX_REASON:
            raise ValidationError(
                f"a reason of {MIN_REASON} to {MAX_REASON} characters is required",
                code="invalid-reason",
            )
        now = self.clock.now()
        grant = await self.store.add(
            Grant(
                id=0,
                login=login,
                dataset=patient.dataset,
                record_id=patient.id,
                reason=text,
                remote_ip=remote_ip,
                granted_at=now,
                expires_at=now + self.grant_for,
            )
        )
        await self.audit.record(
            AuditEvent(
                actor=f"xmpp:{login}" if channel is Channel.XMPP else login,
                channel=channel,
                action="phi.break-glass",
                target=f"{patient.dataset}/{patient.id}",
                remote_ip=remote_ip,
                # The reason stays in the grant (sealed): it may name the patient.
                details={"grant": grant.id, "expires_at": grant.expires_at.isoformat()},
            )
        )
        log.info("break-the-glass grant %d for %s", grant.id, login)
        return grant

    async def grants(self, start: datetime, limit: int = 1000) -> list[Grant]:
        """The break-the-glass report: grants made since ``start``, newest first."""
        return await self.store.since(start, limit)
