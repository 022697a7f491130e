"""The ``/organisations`` resource: hospitals and practices, settings, administrators, members.

A token of every organisation (a system administrator's) sees and creates
hospitals; an organisation's token sees only its own organisation (another
one is a 404) and, for a hospital, creates its practices. A practice is
affiliated with its hospital at once; its administrator and initial users
are invited by e-mail. ``/organisation-names`` is the Invite Organization
type-ahead: names of every organisation, the caller's own left out. Every
change is recorded in the audit trail by the directory service
(``directory.organisation.*``, as ``api:<token name>`` from the caller's address).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from carewire.directory.model import (
    DEFAULT_EXPIRATION,
    DEFAULT_PIN_LENGTH,
    DEFAULT_SOUND_SECONDS,
    DEFAULT_TIME_ZONE,
    MAX_PAGE_SIZE,
    MAX_RETENTION_DAYS,
    MEMBERS_PAGE_SIZE,
    PRACTICE_CREATED,
    AdminInvitee,
    MemberStatus,
    MessageExpiration,
    NewHospital,
    NewPractice,
    Organisation,
    OrganisationId,
    OrganisationSettings,
    OrganisationUpdate,
    OrgKind,
    PageRequest,
    RetentionUnit,
)
from carewire.web.api.deps import Directory, DirectoryCaller, authorize
from carewire.web.api.directory_schemas import (
    Id,
    InvitationOut,
    InviteOut,
    OrganisationRefOut,
    UserSummary,
    invitation_out,
    invite_out,
    ref_out,
    user_summary,
)

router = APIRouter(tags=["organisations"], dependencies=[Depends(authorize)])


class SettingsBody(BaseModel):
    """Default time zone and Secure Message Options (on a change, only the fields given)."""

    model_config = ConfigDict(extra="forbid")

    default_time_zone: str = Field(
        default=DEFAULT_TIME_ZONE, max_length=64, examples=["America/Chicago"]
    )
    whole_org_messaging: bool = Field(
        default=False, description="Members can send messages to whole organization."
    )
    non_user_messaging: bool = Field(
        default=False, description="Allow messages to non-users via email and SMS."
    )
    high_priority_sound_seconds: int = Field(
        default=DEFAULT_SOUND_SECONDS, ge=1, le=3600, description="One of 5, 10, 15, 30, 60."
    )
    message_expiration: MessageExpiration = DEFAULT_EXPIRATION
    retention_value: int | None = Field(
        default=None,
        ge=1,
        le=MAX_RETENTION_DAYS,
        description="Message retention period; null: never.",
    )
    retention_unit: RetentionUnit | None = None
    pin_length: int = Field(default=DEFAULT_PIN_LENGTH, ge=4, le=6, description="4 or 6 digits.")


class SettingsOut(BaseModel):
    """An organisation's time zone and Secure Message Options."""

    default_time_zone: str
    whole_org_messaging: bool
    non_user_messaging: bool
    high_priority_sound_seconds: int
    message_expiration: MessageExpiration
    message_expiration_label: str = Field(description='As the dropdown shows it ("7 Days").')
    retention_value: int | None
    retention_unit: RetentionUnit | None
    pin_length: int


class OrganisationOut(BaseModel):
    """A hospital or practice."""

    id: int = Field(description="Group ID.")
    kind: OrgKind
    name: str
    office_number: str
    voice_number: str = Field(description="Empty when no telephony provider is configured.")
    settings: SettingsOut
    created_at: datetime
    updated_at: datetime


class OrganisationList(BaseModel):
    """The organisations the token may see, by name."""

    organisations: list[OrganisationOut]


class NameList(BaseModel):
    """Organisations whose name matched, by name."""

    organisations: list[OrganisationRefOut]


class AdminBody(BaseModel):
    """A new organisation's administrator, invited by e-mail (a new, unregistered user)."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320, examples=["jdoe@example.org"])
    first_name: str = Field(max_length=200, examples=["Jane"])
    last_name: str = Field(max_length=200, examples=["Doe"])

    def invitee(self) -> AdminInvitee:
        """The service's form."""
        return AdminInvitee(email=self.email, first_name=self.first_name, last_name=self.last_name)


class HospitalBody(BaseModel):
    """Create Hospital (system administrators only)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=400, examples=["Abelard Medical Center"])
    office_number: str = Field(max_length=100, examples=["(408) 882-5830"])
    settings: SettingsBody = SettingsBody()
    admin: AdminBody


class PracticeBody(BaseModel):
    """Create Practice: details, its administrator and the initial standard users."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=400, examples=["St. Dominic's Urgent Care"])
    office_number: str = Field(max_length=100, examples=["(408) 555-0100"])
    admin: AdminBody
    emails: list[str] = Field(
        default=[],
        max_length=1000,
        description="Initial standard users; one bad address refuses all.",
    )
    csv: str | None = Field(
        default=None,
        description="Initial standard users as CSV text (bad rows are reported by line).",
    )


class PracticeOut(BaseModel):
    """The practice created and what its invitations did."""

    detail: str
    practice: OrganisationOut
    admin_invitation: InvitationOut
    users: InviteOut


class UpdateBody(BaseModel):
    """Update Organization: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=400)
    office_number: str | None = Field(default=None, max_length=100)
    settings: SettingsBody | None = None


class MemberOut(BaseModel):
    """One row of Members (N)."""

    login: str
    name: str = Field(description='"Last, First".')
    status: MemberStatus


class MemberPage(BaseModel):
    """One page of an organisation's members, by name."""

    total: int
    offset: int
    limit: int
    members: list[MemberOut]


class AdminList(BaseModel):
    """An organisation's administrators, by name."""

    administrators: list[UserSummary]


def organisation_out(org: Organisation) -> OrganisationOut:
    """The answer for an organisation."""
    s = org.settings
    return OrganisationOut(
        id=org.id,
        kind=org.kind,
        name=org.name,
        office_number=org.office_number,
        voice_number=org.voice_number,
        settings=SettingsOut(
            default_time_zone=s.default_time_zone,
            whole_org_messaging=s.whole_org_messaging,
            non_user_messaging=s.non_user_messaging,
            high_priority_sound_seconds=s.high_priority_sound_seconds,
            message_expiration=s.message_expiration,
            message_expiration_label=s.message_expiration.label,
            retention_value=s.retention_value,
            retention_unit=s.retention_unit,
            pin_length=s.pin_length,
        ),
        created_at=org.created_at,
        updated_at=org.updated_at,
    )


@router.get("/organisations", summary="List organisations")
async def list_organisations(directory: Directory, caller: DirectoryCaller) -> OrganisationList:
    """Every organisation the token may see (its own only, for an organisation's token)."""
    found = await directory.organisations.list_visible(caller)
    return OrganisationList(organisations=[organisation_out(o) for o in found])


@router.get("/organisation-names", summary="Find organisations by name")
async def find_names(
    directory: Directory,
    caller: DirectoryCaller,
    q: Annotated[str, Query(max_length=200, description="Part of the name.")] = "",
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> NameList:
    """Names of organisations containing ``q`` (the caller's own left out), to invite one."""
    found = await directory.organisations.search(caller, q, limit=limit)
    return NameList(organisations=[ref_out(r) for r in found])


@router.post("/organisations", status_code=201, summary="Create a hospital")
async def create_hospital(
    body: HospitalBody, directory: Directory, caller: DirectoryCaller
) -> OrganisationOut:
    """Create a hospital and invite its first administrator (system administrators only)."""
    org = await directory.organisations.create_hospital(
        caller,
        NewHospital(
            name=body.name,
            office_number=body.office_number,
            settings=OrganisationSettings(**body.settings.model_dump()),
            admin=body.admin.invitee(),
        ),
    )
    return organisation_out(org)


@router.get("/organisations/{organisation_id}", summary="Read an organisation")
async def get_organisation(
    organisation_id: Id, directory: Directory, caller: DirectoryCaller
) -> OrganisationOut:
    """One organisation's details and settings."""
    return organisation_out(await directory.organisations.get(caller, organisation_id))


@router.patch("/organisations/{organisation_id}", summary="Update an organisation")
async def update_organisation(
    organisation_id: Id, body: UpdateBody, directory: Directory, caller: DirectoryCaller
) -> OrganisationOut:
    """Change the details and settings given; the others keep their values."""
    settings = None
    if body.settings is not None:
        current = await directory.organisations.get(caller, organisation_id)
        settings = replace(current.settings, **body.settings.model_dump(exclude_unset=True))
    org = await directory.organisations.update(
        caller,
        organisation_id,
        OrganisationUpdate(name=body.name, office_number=body.office_number, settings=settings),
    )
    return organisation_out(org)


@router.post(
    "/organisations/{organisation_id}/practices", status_code=201, summary="Create a practice"
)
async def create_practice(
    organisation_id: Id, body: PracticeBody, directory: Directory, caller: DirectoryCaller
) -> PracticeOut:
    """Create a practice of the hospital, affiliated with it at once; invite its people."""
    created = await directory.organisations.create_practice(
        caller,
        NewPractice(
            hospital_id=OrganisationId(organisation_id),
            name=body.name,
            office_number=body.office_number,
            admin=body.admin.invitee(),
            emails="\n".join(body.emails),
            csv_text=body.csv,
        ),
    )
    return PracticeOut(
        detail=PRACTICE_CREATED.format(name=created.practice.name),
        practice=organisation_out(created.practice),
        admin_invitation=invitation_out(created.admin_invitation),
        users=invite_out(created.users, ""),
    )


@router.get("/organisations/{organisation_id}/administrators", summary="List administrators")
async def list_administrators(
    organisation_id: Id, directory: Directory, caller: DirectoryCaller
) -> AdminList:
    """The organisation's administrators, by last then first name."""
    found = await directory.organisations.admins(caller, organisation_id)
    return AdminList(administrators=[user_summary(u) for u in found])


@router.get("/organisations/{organisation_id}/members", summary="List members")
async def list_members(
    organisation_id: Id,
    directory: Directory,
    caller: DirectoryCaller,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = MEMBERS_PAGE_SIZE,
) -> MemberPage:
    """Members (N): users by last then first name with their status, one page."""
    page = await directory.organisations.members(
        caller, organisation_id, PageRequest(offset=offset, limit=limit)
    )
    return MemberPage(
        total=page.total,
        offset=page.offset,
        limit=page.limit,
        members=[
            MemberOut(login=m.user.login, name=m.user.profile.sort_name, status=m.status)
            for m in page.items
        ],
    )
