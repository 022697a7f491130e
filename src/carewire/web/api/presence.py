"""The ``/presence`` resource: administrators set a user's presence.

What the rule action Update Presence does, on demand: Available or Unavailable
(with a status text) gives a user without a client a virtual session, and
Offline ends every session of the user. The change is recorded in
PRESENCE_HISTORY with the token as ``changed_by`` and in the audit trail.
"""

from __future__ import annotations

from enum import StrEnum

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from carewire.errors import NotFoundError, UnavailableError
from carewire.web.api.deps import Audit, CurrentToken, Services, authorize

router = APIRouter(prefix="/presence", tags=["presence"], dependencies=[Depends(authorize)])


class PresenceType(StrEnum):
    """The presence an administrator may set."""

    AVAILABLE = "Available"
    UNAVAILABLE = "Unavailable"
    OFFLINE = "Offline"


class PresenceBody(BaseModel):
    """The presence to set."""

    presence_type: PresenceType
    status: str = Field("", max_length=256, description="Shown with Available or Unavailable.")


class PresenceOut(BaseModel):
    """What was done."""

    login: str
    presence_type: PresenceType
    status: str
    result: str


@router.put("/{login}", summary="Set a user's presence")
async def set_presence(
    login: str, body: PresenceBody, services: Services, token: CurrentToken, audit: Audit
) -> PresenceOut:
    """Set the presence of the user ``login`` (an account of the chat domain)."""
    gateway = services.chat.gateway if services.chat is not None else None
    if gateway is None:
        raise UnavailableError("the XMPP server is not running in this process")
    done = await gateway.update_presence(
        [f"{login}@{gateway.domain}"],
        body.presence_type.value,
        body.status,
        changed_by=f"api:{token.name}",
    )
    if done.unknown:
        raise NotFoundError(f"no user {login!r} on {gateway.domain}")
    await audit("presence.set", login, details={"presence_type": body.presence_type.value})
    return PresenceOut(
        login=login, presence_type=body.presence_type, status=body.status, result=done.text
    )
