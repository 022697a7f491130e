"""What the organisation directory's resources share: bodies, answers and the caller's scope.

The directory's resources (``/organisations``, ``/communities``,
``/affiliations``, ``/users``, ``/invitations``, ``/groups`` and a user's
``/devices``) all call :class:`~carewire.directory.service.DirectoryService`
as the token's :class:`~carewire.directory.model.Caller` (see
:func:`carewire.web.api.deps.caller_of`); the service scopes every call, so
anything of another organisation is a 404 for an organisation's token. The
models here are the shapes more than one of them answers with.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path, UploadFile
from pydantic import BaseModel, Field

from carewire.directory.model import (
    Caller,
    CsvProblem,
    DirectoryUser,
    Group,
    Invitation,
    InvitationStatus,
    InviteResult,
    LoginState,
    OrganisationId,
    OrganisationRef,
    OrgKind,
    StaffType,
)
from carewire.errors import ValidationError

#: The largest id a path may name (ids are 32-bit on every database).
MAX_ID = 2**31 - 1

#: An organisation, group, invitation or affiliation id in a path.
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
#: A user's login in a path (the JID's localpart).
Login = Annotated[str, Path(min_length=1, max_length=1023, examples=["jdoe"])]
#: An organisation id in a query or body: defaults to the token's organisation.
OrganisationParam = Annotated[
    int | None,
    Field(
        ge=1,
        le=MAX_ID,
        description="The organisation (default: the token's; required for a token of every "
        "organisation).",
    ),
]


class BadUploadError(ValidationError):
    """An uploaded file is not UTF-8 text."""

    code = "invalid-upload"


def organisation_of(caller: Caller, organisation: int | None) -> OrganisationId:
    """The organisation a request is about: the one named, else the token's.

    Naming another organisation than an organisation token's own is not
    refused here: the service answers "not found" for it.

    Raises:
        ValidationError: None named, and the token is for every organisation.
    """
    if organisation is not None:
        return OrganisationId(organisation)
    if caller.organisation_id is None:
        raise ValidationError(
            "name the organisation: this token acts for every organisation",
            code="organisation-required",
        )
    return caller.organisation_id


async def read_upload(file: UploadFile) -> str:
    """An uploaded CSV file as text (UTF-8, a byte order mark ignored).

    Raises:
        BadUploadError: It is not UTF-8.
    """
    data = await file.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadUploadError(f"{file.filename or 'the file'} is not UTF-8 text") from None


class OrganisationRefOut(BaseModel):
    """An organisation's id, kind and name."""

    id: int
    kind: OrgKind
    name: str


def ref_out(ref: OrganisationRef) -> OrganisationRefOut:
    """The answer for an organisation's name."""
    return OrganisationRefOut(id=ref.id, kind=ref.kind, name=ref.name)


class UserSummary(BaseModel):
    """A user in a list: Find Users' columns and the profile's state."""

    login: str = Field(description="The login (the chat address's local part).")
    organisation_id: int
    staff_id: int = Field(description="StaffID: system-wide, increasing, immutable.")
    name: str = Field(description='"Last, First".')
    first_name: str
    last_name: str
    email: str
    user_type: StaffType
    is_org_admin: bool
    can_login: bool
    login_state: LoginState = Field(description="What Can Login shows.")
    is_registered: bool = Field(description="False until the user registered (created users).")


def user_summary(user: DirectoryUser) -> UserSummary:
    """The list form of a user."""
    p = user.profile
    return UserSummary(
        login=user.login,
        organisation_id=user.organisation_id,
        staff_id=user.staff_id,
        name=p.sort_name,
        first_name=p.first_name,
        last_name=p.last_name,
        email=p.email,
        user_type=p.staff_type,
        is_org_admin=user.is_org_admin,
        can_login=user.can_login,
        login_state=user.login_state,
        is_registered=user.is_registered,
    )


class GroupOut(BaseModel):
    """A group of an organisation's users."""

    id: int
    organisation_id: int
    name: str
    slug: str = Field(description="Its chat address is `<slug>@groups.<domain>`.")
    whole_group_messaging: bool = Field(description="Members can send messages to whole group.")
    member_count: int
    created_at: datetime
    updated_at: datetime


def group_out(group: Group) -> GroupOut:
    """The answer for a group."""
    return GroupOut(
        id=group.id,
        organisation_id=group.organisation_id,
        name=group.name,
        slug=group.slug,
        whole_group_messaging=group.whole_group_messaging,
        member_count=group.member_count,
        created_at=group.created_at,
        updated_at=group.updated_at,
    )


class InvitationOut(BaseModel):
    """An invitation to register in an organisation (its link is only mailed)."""

    id: int
    organisation_id: int
    email: str
    first_name: str
    last_name: str
    department: str = Field(description="The group the invitee joins on registration.")
    is_admin: bool
    status: InvitationStatus
    expires_at: datetime
    invited_by: str
    created_at: datetime
    updated_at: datetime = Field(description="Last Updated: the last status change.")
    login: str | None = Field(description="The login registered through it.")


def invitation_out(inv: Invitation) -> InvitationOut:
    """The answer for an invitation."""
    return InvitationOut(
        id=inv.id,
        organisation_id=inv.organisation_id,
        email=inv.email,
        first_name=inv.first_name,
        last_name=inv.last_name,
        department=inv.department,
        is_admin=inv.is_admin,
        status=inv.status,
        expires_at=inv.expires_at,
        invited_by=inv.invited_by,
        created_at=inv.created_at,
        updated_at=inv.updated_at,
        login=inv.login,
    )


class ProblemLine(BaseModel):
    """A CSV row left out, and why."""

    line: int = Field(description="The row's line in the file (the header is line 1).")
    message: str


def problem_lines(problems: tuple[CsvProblem, ...]) -> list[ProblemLine]:
    """The answer for the rows a CSV upload left out."""
    return [ProblemLine(line=p.line, message=p.message) for p in problems]


class InviteOut(BaseModel):
    """What an invite request did."""

    detail: str = Field(description="What the console's banner says.")
    invited: list[InvitationOut] = Field(description="New invitations (see each status).")
    resent: list[InvitationOut] = Field(description="Pending or failed ones sent again.")
    existing_users: list[str] = Field(description="Addresses of users, skipped.")
    duplicates: list[str] = Field(description="Addresses given more than once, sent once.")
    problems: list[ProblemLine] = Field(description="CSV rows left out.")
    groups_created: list[str] = Field(description="Groups the Department column created.")


def invite_out(result: InviteResult, detail: str) -> InviteOut:
    """The answer for an invite request."""
    return InviteOut(
        detail=detail,
        invited=[invitation_out(i) for i in result.invited],
        resent=[invitation_out(i) for i in result.resent],
        existing_users=list(result.existing_users),
        duplicates=list(result.duplicates),
        problems=problem_lines(result.problems),
        groups_created=list(result.groups_created),
    )
