"""The ``/groups`` resource: an organisation's groups, their members, and CSV import.

A group name has 1–64 characters and is unique in its organisation
(case-insensitive; a duplicate is a 409 ``name-taken``). Members are users of
the group's organisation; removing one leaves them in the organisation.
Deleting a group makes affiliations that used it as permission allow no one.
A CSV import (multipart) creates a group for each Department value (existing
names are reused) and, for rows whose Email is a user of the organisation,
puts that user in it; bad rows are reported by line. A group of another
organisation is a 404 for an organisation's token. Every change is recorded
in the audit trail by the directory service (``directory.group.*``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from carewire.web.api.deps import Directory, DirectoryCaller, authorize
from carewire.web.api.directory_schemas import (
    MAX_ID,
    GroupOut,
    Id,
    Login,
    OrganisationParam,
    ProblemLine,
    UserSummary,
    group_out,
    organisation_of,
    problem_lines,
    read_upload,
    user_summary,
)

router = APIRouter(prefix="/groups", tags=["groups"], dependencies=[Depends(authorize)])

Logins = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=1023)]],
    Field(min_length=1, max_length=5000, examples=[["jdoe", "rroe"]]),
]


class GroupList(BaseModel):
    """Groups, by name."""

    groups: list[GroupOut]


class CreateBody(BaseModel):
    """Create Group."""

    model_config = ConfigDict(extra="forbid")

    organisation: OrganisationParam = None
    name: str = Field(max_length=400, examples=["Physical Therapy"])
    whole_group_messaging: bool = Field(
        default=False, description="Members can send messages to whole group."
    )


class UpdateBody(BaseModel):
    """Update Group: rename, or change whole-group messaging (only the fields given)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=400)
    whole_group_messaging: bool | None = None


class MembersBody(BaseModel):
    """Users (logins) to add or remove."""

    model_config = ConfigDict(extra="forbid")

    logins: Logins


class MemberList(BaseModel):
    """A group's members, by last then first name."""

    members: list[UserSummary]


class ImportOut(BaseModel):
    """What a group CSV import did."""

    created: list[str] = Field(description="Groups created.")
    existing: list[str] = Field(description="Groups named that existed already.")
    members_added: int
    problems: list[ProblemLine] = Field(description="Rows left out, by line.")


@router.get("", summary="List groups")
async def list_groups(
    directory: Directory,
    caller: DirectoryCaller,
    organisation: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    name: Annotated[str, Query(max_length=200, description="Part of the name.")] = "",
) -> GroupList:
    """The organisation's groups whose name contains ``name``, by name."""
    found = await directory.groups.list_for(
        caller, organisation_of(caller, organisation), name_contains=name
    )
    return GroupList(groups=[group_out(g) for g in found])


@router.post("", status_code=201, summary="Create a group")
async def create_group(body: CreateBody, directory: Directory, caller: DirectoryCaller) -> GroupOut:
    """Create a group (its name unique in the organisation)."""
    group = await directory.groups.create(
        caller,
        organisation_of(caller, body.organisation),
        body.name,
        whole_group_messaging=body.whole_group_messaging,
    )
    return group_out(group)


@router.post("/import", summary="Create groups from a CSV file")
async def import_groups(
    *,
    directory: Directory,
    caller: DirectoryCaller,
    file: Annotated[UploadFile, File(description="Department (and Email) columns.")],
    organisation: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
) -> ImportOut:
    """A group per Department value; rows naming a user's Email add them to it."""
    text = await read_upload(file)
    result = await directory.groups.import_csv(caller, organisation_of(caller, organisation), text)
    return ImportOut(
        created=list(result.created),
        existing=list(result.existing),
        members_added=result.members_added,
        problems=problem_lines(result.problems),
    )


@router.get("/{group_id}", summary="Read a group")
async def get_group(group_id: Id, directory: Directory, caller: DirectoryCaller) -> GroupOut:
    """One group."""
    return group_out(await directory.groups.get(caller, group_id))


@router.patch("/{group_id}", summary="Update a group")
async def update_group(
    group_id: Id, body: UpdateBody, directory: Directory, caller: DirectoryCaller
) -> GroupOut:
    """Rename it, or change whole-group messaging."""
    group = await directory.groups.update(
        caller, group_id, name=body.name, whole_group_messaging=body.whole_group_messaging
    )
    return group_out(group)


@router.delete("/{group_id}", status_code=204, summary="Delete a group")
async def delete_group(group_id: Id, directory: Directory, caller: DirectoryCaller) -> Response:
    """Delete it; affiliations that used it as permission now allow no one."""
    await directory.groups.delete(caller, group_id)
    return Response(status_code=204)


@router.get("/{group_id}/members", summary="List a group's members")
async def list_members(group_id: Id, directory: Directory, caller: DirectoryCaller) -> MemberList:
    """Members (N), by last then first name."""
    found = await directory.groups.members(caller, group_id)
    return MemberList(members=[user_summary(u) for u in found])


@router.post("/{group_id}/members", summary="Add members")
async def add_members(
    group_id: Id, body: MembersBody, directory: Directory, caller: DirectoryCaller
) -> GroupOut:
    """Add users of the group's organisation (members already in it are left alone)."""
    return group_out(await directory.groups.add_members(caller, group_id, body.logins))


@router.post("/{group_id}/members/remove", summary="Remove members")
async def remove_members(
    group_id: Id, body: MembersBody, directory: Directory, caller: DirectoryCaller
) -> GroupOut:
    """Remove Selected: the users leave the group, not the organisation."""
    return group_out(await directory.groups.remove_members(caller, group_id, body.logins))


@router.delete("/{group_id}/members/{login}", status_code=204, summary="Remove a member")
async def remove_member(
    group_id: Id, login: Login, directory: Directory, caller: DirectoryCaller
) -> Response:
    """The user leaves the group (not the organisation)."""
    await directory.groups.remove_members(caller, group_id, [login])
    return Response(status_code=204)
