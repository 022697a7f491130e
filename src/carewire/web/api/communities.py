"""The ``/communities`` resource: each hospital's community, one level deep.

A hospital's community is the hospital and the organisations actively
affiliated with it; practices have none. An organisation's token sees the
communities its organisation is in. A system administrator may put an
organisation in a hospital's community (an active affiliation without an
invitation); a community holds organisations, never other communities, so a
body naming a ``community``, a practice as the community, or the hospital as
its own member is refused (422).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from carewire.directory.model import NOT_A_COMMUNITY, Community, CommunityError
from carewire.errors import NotFoundError, ValidationError
from carewire.web.api.deps import Directory, DirectoryCaller, authorize
from carewire.web.api.directory_schemas import MAX_ID, Id, OrganisationRefOut, ref_out

router = APIRouter(prefix="/communities", tags=["communities"], dependencies=[Depends(authorize)])


class CommunityOut(BaseModel):
    """A hospital and the organisations actively affiliated with it."""

    hospital: OrganisationRefOut
    members: list[OrganisationRefOut] = Field(description="The hospital first, then by name.")


class CommunityList(BaseModel):
    """The communities the token may see, by hospital name."""

    communities: list[CommunityOut]


class MemberBody(BaseModel):
    """The organisation to put in the community (never a community)."""

    model_config = ConfigDict(extra="forbid")

    organisation: int | None = Field(default=None, ge=1, le=MAX_ID, examples=[2])
    community: JsonValue = Field(
        default=None,
        description="Refused: a community holds organisations, never other communities.",
    )


def community_out(c: Community) -> CommunityOut:
    """The answer for a community."""
    return CommunityOut(hospital=ref_out(c.hospital), members=[ref_out(m) for m in c.members])


@router.get("", summary="List communities")
async def list_communities(directory: Directory, caller: DirectoryCaller) -> CommunityList:
    """Every hospital's community the token may see."""
    found = await directory.affiliations.communities(caller)
    return CommunityList(communities=[community_out(c) for c in found])


@router.get("/{hospital_id}", summary="Read a hospital's community")
async def get_community(
    hospital_id: Id, directory: Directory, caller: DirectoryCaller
) -> CommunityOut:
    """The hospital's community (a practice, or a community the token cannot see, is a 404)."""
    for c in await directory.affiliations.communities(caller):
        if c.hospital.id == hospital_id:
            return community_out(c)
    raise NotFoundError(f"no community of organisation {hospital_id}", code="unknown-community")


@router.post("/{hospital_id}/members", status_code=201, summary="Add a community member")
async def add_member(
    hospital_id: Id, body: MemberBody, directory: Directory, caller: DirectoryCaller
) -> CommunityOut:
    """Put an organisation in the hospital's community (system administrators only)."""
    if "community" in body.model_fields_set:
        raise CommunityError(NOT_A_COMMUNITY)
    if body.organisation is None:
        raise ValidationError("name the organisation to add", code="invalid-request")
    community = await directory.affiliations.add_community_member(
        caller, hospital_id, body.organisation
    )
    return community_out(community)
