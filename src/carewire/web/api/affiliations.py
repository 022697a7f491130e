"""The ``/affiliations`` resource: invite an existing organisation, answer, permissions, delete.

An administrator invites an existing organisation; every administrator of the
invited one is mailed a link whose token (22 URL-safe characters) accepting
or declining needs: a replaced, answered or expired link is a 410. Accepting
is for all of the invited organisation's users or for a group (existing, or
created by the answer). Each side then sets its own permission: ``none``
(communication temporarily ended), ``organisation`` (everyone) or ``groups``.
Delete ends the affiliation on both sides. An organisation's token acts for
its own side only; an affiliation its organisation is not in is a 404. Every
change is recorded in the audit trail by the directory service
(``directory.affiliation.*``).
"""

from __future__ import annotations

import enum
from dataclasses import replace
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from carewire.directory.model import (
    AFFILIATION_INVITED,
    PERMISSIONS_UPDATED,
    AcceptChoice,
    Affiliation,
    AffiliationId,
    AffiliationStatus,
    AffiliationView,
    GroupId,
    Permission,
    PermissionMode,
    UnknownAffiliationError,
)
from carewire.errors import ValidationError
from carewire.web.api.deps import Directory, DirectoryCaller, authorize
from carewire.web.api.directory_schemas import (
    MAX_ID,
    GroupOut,
    Id,
    OrganisationParam,
    OrganisationRefOut,
    group_out,
    organisation_of,
    ref_out,
)

router = APIRouter(prefix="/affiliations", tags=["affiliations"], dependencies=[Depends(authorize)])

#: A mailed link's token, as the link carries it.
Token = Annotated[str, Field(min_length=1, max_length=128, examples=["LFEjVeV7qAdTgB318TevYw"])]


class Direction(enum.StrEnum):
    """Which affiliations a list shows."""

    ALL = "all"  # active and pending, both ways
    ACTIVE = "active"
    INCOMING = "incoming"  # pending invitations others sent us
    OUTGOING = "outgoing"  # pending invitations we sent


class PermissionOut(BaseModel):
    """One side's permission toward the other."""

    mode: PermissionMode
    groups: list[int] = Field(description="With `groups`: the groups whose members may.")


class SidePermission(PermissionOut):
    """A side's permission, with the side."""

    organisation_id: int


class AffiliationOut(BaseModel):
    """An affiliation, or an invitation to one."""

    id: int
    inviter_id: int
    invitee_id: int
    status: AffiliationStatus
    expires_at: datetime = Field(description="When a pending invitation's link stops working.")
    invited_by: str
    created_at: datetime
    accepted_at: datetime | None
    permissions: list[SidePermission] = Field(description="Each side's permission, by side.")


class AffiliationRow(BaseModel):
    """One row of "Organizations with whom we can communicate", seen from one side."""

    affiliation: AffiliationOut
    other: OrganisationRefOut
    direction: Direction = Field(description="active, incoming or outgoing.")
    permission: PermissionOut = Field(description="Our permission toward them.")
    label: str = Field(description="The name; (pending), or a new practice's invited e-mail.")


class AffiliationList(BaseModel):
    """An organisation's affiliations, by the other side's name."""

    affiliations: list[AffiliationRow]


class InviteBody(BaseModel):
    """Invite an existing organisation (a pending invitation between the two is replaced)."""

    model_config = ConfigDict(extra="forbid")

    organisation: OrganisationParam = None
    invitee: int = Field(ge=1, le=MAX_ID, description="The organisation invited.", examples=[2])


class Invited(BaseModel):
    """The invitation sent."""

    detail: str
    affiliation: AffiliationOut


class AnswerBody(BaseModel):
    """The token of the mailed link."""

    model_config = ConfigDict(extra="forbid")

    token: Token


class AcceptBody(AnswerBody):
    """Accept: all your users (neither group given), or only some (a group, or a new one)."""

    group: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="An existing group of ours."
    )
    new_group: str | None = Field(default=None, max_length=200, description="A group to create.")


class Accepted(BaseModel):
    """The active affiliation and the group its permission uses (null: everyone)."""

    affiliation: AffiliationOut
    group: GroupOut | None


class PermissionBody(BaseModel):
    """Association Permissions of one side."""

    model_config = ConfigDict(extra="forbid")

    organisation: OrganisationParam = None
    mode: PermissionMode
    groups: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(default=[], max_length=1000)


class PermissionSaved(BaseModel):
    """The side's permission, saved."""

    detail: str
    row: AffiliationRow


def _permission(p: Permission) -> PermissionOut:
    return PermissionOut(mode=p.mode, groups=sorted(p.groups))


def affiliation_out(a: Affiliation) -> AffiliationOut:
    """The answer for an affiliation."""
    sides = sorted({a.inviter_id, a.invitee_id})
    return AffiliationOut(
        id=a.id,
        inviter_id=a.inviter_id,
        invitee_id=a.invitee_id,
        status=a.status,
        expires_at=a.expires_at,
        invited_by=a.invited_by,
        created_at=a.created_at,
        accepted_at=a.accepted_at,
        permissions=[
            SidePermission(organisation_id=o, **_permission(a.permission_of(o)).model_dump())
            for o in sides
        ],
    )


def _direction(v: AffiliationView) -> Direction:
    if v.affiliation.status is AffiliationStatus.ACTIVE:
        return Direction.ACTIVE
    return Direction.INCOMING if v.is_incoming else Direction.OUTGOING


def row_out(v: AffiliationView) -> AffiliationRow:
    """The answer for a row of the list."""
    return AffiliationRow(
        affiliation=affiliation_out(v.affiliation),
        other=ref_out(v.other),
        direction=_direction(v),
        permission=_permission(v.permission),
        label=v.label,
    )


@router.get("", summary="List an organisation's affiliations")
async def list_affiliations(
    directory: Directory,
    caller: DirectoryCaller,
    organisation: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    direction: Direction = Direction.ALL,
) -> AffiliationList:
    """Active affiliations and pending invitations (``incoming``, ``outgoing``), by name."""
    org = organisation_of(caller, organisation)
    rows = [row_out(v) for v in await directory.affiliations.list_for(caller, org)]
    if direction is not Direction.ALL:
        rows = [r for r in rows if r.direction is direction]
    return AffiliationList(affiliations=rows)


@router.post("", status_code=201, summary="Invite an organisation")
async def invite(body: InviteBody, directory: Directory, caller: DirectoryCaller) -> Invited:
    """Invite an existing organisation; its administrators are mailed the link."""
    org = organisation_of(caller, body.organisation)
    aff = await directory.affiliations.invite(caller, org, body.invitee)
    invitee = await directory.organisations.ref(aff.invitee_id)
    return Invited(
        detail=AFFILIATION_INVITED.format(org=invitee.name), affiliation=affiliation_out(aff)
    )


@router.get("/{affiliation_id}", summary="Read an affiliation")
async def get_affiliation(
    affiliation_id: Id, directory: Directory, caller: DirectoryCaller
) -> AffiliationOut:
    """One affiliation the token's organisation is in."""
    return affiliation_out(await directory.affiliations.get(caller, AffiliationId(affiliation_id)))


@router.post("/{affiliation_id}/accept", summary="Accept an invitation")
async def accept(
    affiliation_id: Id, body: AcceptBody, directory: Directory, caller: DirectoryCaller
) -> Accepted:
    """Accept for all your users, or only a group's members (410: the link is not valid)."""
    if body.group is not None and body.new_group is not None:
        raise ValidationError(
            "give a group or a new group's name, not both", code="invalid-request"
        )
    aff, group = await directory.affiliations.accept(
        caller,
        affiliation_id,
        body.token,
        AcceptChoice(
            group_id=None if body.group is None else GroupId(body.group),
            new_group_name=body.new_group,
        ),
    )
    return Accepted(
        affiliation=affiliation_out(aff), group=None if group is None else group_out(group)
    )


@router.post("/{affiliation_id}/decline", summary="Decline an invitation")
async def decline(
    affiliation_id: Id, body: AnswerBody, directory: Directory, caller: DirectoryCaller
) -> AffiliationOut:
    """Decline: the link stops working (410: it already did)."""
    return affiliation_out(await directory.affiliations.decline(caller, affiliation_id, body.token))


async def _side(
    directory: Directory, caller: DirectoryCaller, affiliation_id: int, organisation: int | None
) -> tuple[Affiliation, int]:
    """The affiliation and the side the request acts for (the token's organisation's)."""
    aff = await directory.affiliations.get(caller, AffiliationId(affiliation_id))
    if organisation is None and caller.organisation_id is None:
        return aff, aff.inviter_id
    side = organisation_of(caller, organisation)
    if side not in (aff.inviter_id, aff.invitee_id):
        raise UnknownAffiliationError(f"no affiliation {affiliation_id} of organisation {side}")
    return aff, side


@router.put("/{affiliation_id}/permission", summary="Set a side's permission")
async def set_permission(
    affiliation_id: Id, body: PermissionBody, directory: Directory, caller: DirectoryCaller
) -> PermissionSaved:
    """Who of the side's organisation may communicate with the other: none, all, or groups."""
    aff = await directory.affiliations.get(caller, AffiliationId(affiliation_id))
    side = organisation_of(caller, body.organisation)
    if side not in (aff.inviter_id, aff.invitee_id):
        raise UnknownAffiliationError(f"no affiliation {affiliation_id} of organisation {side}")
    view = await directory.affiliations.set_permission(
        caller,
        side,
        aff.other(side),
        Permission(mode=body.mode, groups=frozenset(GroupId(g) for g in body.groups)),
    )
    saved = await directory.affiliations.get(caller, aff.id)
    return PermissionSaved(
        detail=PERMISSIONS_UPDATED, row=row_out(replace(view, affiliation=saved))
    )


@router.delete("/{affiliation_id}", status_code=204, summary="End an affiliation")
async def delete_affiliation(
    affiliation_id: Id,
    directory: Directory,
    caller: DirectoryCaller,
    organisation: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    """End it permanently, on both sides (they must be invited again)."""
    aff, side = await _side(directory, caller, affiliation_id, organisation)
    await directory.affiliations.delete(caller, side, aff.other(side))
    return Response(status_code=204)
