"""The ``/scim-tokens`` resource: an organisation's SCIM bearer tokens (docs/scim.md).

An administrator (an admin API token: of the organisation, or of every
organisation naming it) creates a token for an identity provider — the token is
in the answer to the creation only; only its SHA-256 is kept —, lists the
organisation's tokens (never the tokens themselves) and revokes one, which
stops it at once. Creating and revoking are recorded in the audit trail
(``scim.token.create``, ``scim.token.revoke``). A SCIM token reaches nothing
but ``/scim/v2`` and its organisation's users and groups.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from carewire.errors import UnavailableError
from carewire.identity.scim.model import MAX_TOKEN_NAME, ScimToken
from carewire.identity.scim.tokens import ScimTokens
from carewire.web.api.deps import DirectoryCaller, Services, authorize
from carewire.web.api.directory_schemas import MAX_ID, OrganisationParam, organisation_of

router = APIRouter(prefix="/scim-tokens", tags=["scim"], dependencies=[Depends(authorize)])


def get_scim_tokens(services: Services) -> ScimTokens:
    """The SCIM tokens.

    Raises:
        UnavailableError: The API is served without SCIM provisioning.
    """
    if services.scim is None:
        raise UnavailableError("SCIM provisioning is not served here")
    return services.scim


Tokens = Annotated[ScimTokens, Depends(get_scim_tokens)]


class TokenOut(BaseModel):
    """A SCIM token, without the token."""

    organisation: int
    name: str
    invite_users: bool = Field(
        description="Users it creates without a password are mailed an invitation."
    )
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class CreatedToken(TokenOut):
    """A new token: ``token`` is shown this once."""

    token: str = Field(description="The bearer token; it cannot be read again.")


class TokenList(BaseModel):
    """The organisation's tokens, by name."""

    tokens: list[TokenOut]


class CreateBody(BaseModel):
    """Create a SCIM token."""

    model_config = ConfigDict(extra="forbid")

    organisation: OrganisationParam = None
    name: str = Field(min_length=1, max_length=MAX_TOKEN_NAME, examples=["entra-id"])
    invite_users: bool = True


def _out(token: ScimToken) -> TokenOut:
    return TokenOut(
        organisation=token.organisation_id,
        name=token.name,
        invite_users=token.invite_users,
        created_by=token.created_by,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
    )


@router.get("", summary="List SCIM tokens")
async def list_tokens(
    tokens: Tokens,
    caller: DirectoryCaller,
    organisation: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> TokenList:
    """The organisation's SCIM tokens, revoked ones included (never the tokens)."""
    found = await tokens.list(caller, organisation_of(caller, organisation))
    return TokenList(tokens=[_out(t) for t in found])


@router.post("", status_code=201, summary="Create a SCIM token")
async def create_token(body: CreateBody, tokens: Tokens, caller: DirectoryCaller) -> CreatedToken:
    """A new token for an identity provider (shown in this answer only)."""
    token, plaintext = await tokens.create(
        caller,
        organisation_of(caller, body.organisation),
        body.name,
        invite_users=body.invite_users,
    )
    return CreatedToken(**_out(token).model_dump(), token=plaintext)


@router.delete("/{name}", summary="Revoke a SCIM token")
async def revoke_token(
    name: Annotated[str, Path(min_length=1, max_length=MAX_TOKEN_NAME)],
    tokens: Tokens,
    caller: DirectoryCaller,
    organisation: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> TokenOut:
    """Revoke the token: the identity provider using it is refused from now on."""
    token = await tokens.revoke(caller, organisation_of(caller, organisation), name)
    return _out(token)
