"""The ``/push`` resource: every push attempt, tracked like a delivery, and registrations.

Read-only: the push app server (:mod:`carewire.push`) writes attempts. An
attempt shows its state (queued, sent, failed, rejected, skipped), the
provider's status, reason and message id (APNs ``apns-id``, the FCM message
name) and how many tries it took. Registrations show their device, service
and state, never the device token or the secret. See docs/push.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from carewire.errors import UnavailableError
from carewire.push.appserver import PushAppServer
from carewire.push.model import AttemptState
from carewire.web.api.deps import Services, authorize

router = APIRouter(prefix="/push", tags=["push"], dependencies=[Depends(authorize)])

MAX_LIMIT = 1000


class AttemptOut(BaseModel):
    """One push attempt."""

    id: int
    login: str
    device: str
    service: str
    state: AttemptState
    priority: str
    opaque_id: str
    provider_id: str
    status: int | None
    reason: str
    tries: int
    created_at: datetime
    updated_at: datetime


class RegistrationOut(BaseModel):
    """A device registered with the app server (no token, no secret)."""

    id: int
    device: str
    service: str
    state: str
    reason: str
    created_at: datetime


def _app(services: Services) -> PushAppServer:
    if services.push is None:
        raise UnavailableError("push notifications are not enabled ([push] enabled = false)")
    return services.push


@router.get("/attempts", summary="List push attempts")
async def list_attempts(
    *,
    services: Services,
    login: Annotated[str | None, Query(description="The account pushed to.")] = None,
    state: AttemptState | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> list[AttemptOut]:
    """Attempts matching the filters, newest first."""
    found = await _app(services).attempts(login=login, state=state, limit=limit)
    return [
        AttemptOut(
            id=a.id,
            login=a.login,
            device=a.device,
            service=a.service,
            state=a.state,
            priority=a.priority.value,
            opaque_id=a.opaque_id,
            provider_id=a.provider_id,
            status=a.status,
            reason=a.reason,
            tries=a.tries,
            created_at=a.created_at,
            updated_at=a.updated_at,
        )
        for a in found
    ]


@router.get("/registrations/{login}", summary="List a user's push registrations")
async def list_registrations(login: str, services: Services) -> list[RegistrationOut]:
    """The devices of ``login`` registered for push, oldest first."""
    found = await _app(services).registrations_of(login)
    return [
        RegistrationOut(
            id=r.id,
            device=r.device,
            service=r.service.value,
            state=r.state.value,
            reason=r.reason,
            created_at=r.created_at,
        )
        for r in found
    ]
