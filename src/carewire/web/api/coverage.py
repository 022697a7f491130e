"""The ``/coverage`` resource: a user's interruption state, held messages, release now.

What is held for a busy clinician (docs/coverage.md) is listed by sender,
time and reason only; message bodies are clinical content and are never
returned. ``POST /coverage/{login}/release`` delivers the held messages now,
busy or not, and is recorded in the audit trail.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from carewire.errors import UnavailableError
from carewire.features.coverage.desk import BusyStatus, CoverageDesk
from carewire.security.audit import Channel
from carewire.web.api.deps import CurrentToken, Services, authorize

router = APIRouter(prefix="/coverage", tags=["coverage"], dependencies=[Depends(authorize)])


class HeldOut(BaseModel):
    """One held message, without its content."""

    sender: str
    held_at: datetime
    reason: str


class StatusOut(BaseModel):
    """A user's interruption state."""

    login: str
    busy: bool
    reason: str | None
    until: datetime | None
    note: str
    urgent_alerts: int
    held_count: int
    held: list[HeldOut]


class ReleaseOut(BaseModel):
    """What a release did."""

    login: str
    delivered: int
    waiting: bool
    result: str


def _desk(services: Services) -> CoverageDesk:
    if services.coverage is None:
        raise UnavailableError("coverage is not available in this process")
    return services.coverage


def _out(status: BusyStatus) -> StatusOut:
    return StatusOut(
        login=status.login,
        busy=status.is_busy,
        reason=status.reason or None,
        until=status.until,
        note=status.note,
        urgent_alerts=status.urgent_alerts,
        held_count=len(status.held),
        held=[HeldOut(sender=h.sender, held_at=h.held_at, reason=h.reason) for h in status.held],
    )


@router.get("/{login}", summary="A user's busy state and held messages")
async def get_status(login: str, services: Services) -> StatusOut:
    """Busy or not (an urgent alert, Do Not Disturb), until when, and what is held for them."""
    return _out(await _desk(services).status(login))


@router.post("/{login}/release", summary="Deliver a user's held messages now")
async def release(login: str, services: Services, token: CurrentToken) -> ReleaseOut:
    """Deliver what is held for ``login`` now, busy or not (audited as ``coverage.release``)."""
    done = await _desk(services).release(login, actor=f"api:{token.name}", channel=Channel.API)
    return ReleaseOut(
        login=login, delivered=done.delivered, waiting=done.is_waiting, result=done.text
    )
