"""The ``/users`` resource: directory users — find, create, profile, type, Can Login, PIN, delete.

A directory user is a chat account with a profile in one organisation. Find
Users filters by first name, last name, e-mail and user type
(case-insensitive substrings, combined), sorts and pages. Creating a user
without a password mails them an invitation to register. PINs follow the
organisation's policy (a weak PIN is a 422 ``weak-pin``); unlocking a locked
user needs a new PIN. A user of another organisation is a 404 for an
organisation's token. Every change is recorded in the audit trail by the
directory service (``directory.user.*``, ``directory.pin.*``); PINs and
passwords never are.
"""

from __future__ import annotations

import enum
from dataclasses import replace
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from carewire.directory.model import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    PIN_RESET_SENT,
    DirectoryUser,
    GroupId,
    NewUser,
    PageRequest,
    Profile,
    StaffType,
    UserFilter,
    UserSortKey,
    UserUpdate,
)
from carewire.web.api.deps import Directory, DirectoryCaller, authorize
from carewire.web.api.directory_schemas import (
    MAX_ID,
    GroupOut,
    Login,
    OrganisationParam,
    UserSummary,
    group_out,
    organisation_of,
    user_summary,
)

router = APIRouter(prefix="/users", tags=["users"], dependencies=[Depends(authorize)])

_TEXT = 4000
Pin = Annotated[str, Field(min_length=1, max_length=32, examples=["2580"])]
Password = Annotated[str, Field(min_length=1, max_length=1024)]


class SortKey(enum.StrEnum):
    """Find Users' sort columns."""

    NAME = "name"
    USER_TYPE = "user_type"
    EMAIL = "email"
    STAFF_ID = "staff_id"


_SORTS = {
    SortKey.NAME: UserSortKey.NAME,
    SortKey.USER_TYPE: UserSortKey.STAFF_TYPE,
    SortKey.EMAIL: UserSortKey.EMAIL,
    SortKey.STAFF_ID: UserSortKey.STAFF_ID,
}


class Order(enum.StrEnum):
    """Sort direction."""

    ASC = "asc"
    DESC = "desc"


class ProfileFields(BaseModel):
    """The profile's optional fields (Create/Update User Profile)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(default="", max_length=_TEXT, examples=["Dr"])
    middle_name: str = Field(default="", max_length=_TEXT)
    credentials: str = Field(default="", max_length=_TEXT, examples=["MD"])
    job_title: str = Field(default="", max_length=_TEXT)
    cell_number: str = Field(
        default="", max_length=_TEXT, description="Cell (Private): never shown."
    )
    address1: str = Field(default="", max_length=_TEXT)
    address2: str = Field(default="", max_length=_TEXT)
    city: str = Field(default="", max_length=_TEXT)
    state: str = Field(default="", max_length=_TEXT)
    zip: str = Field(default="", max_length=_TEXT)
    office_phone: str = Field(default="", max_length=_TEXT)
    office_fax: str = Field(default="", max_length=_TEXT)
    user_type: StaffType = StaffType.PHYSICIAN
    specialty: str = Field(default="", max_length=_TEXT)
    medical_school: str = Field(default="", max_length=_TEXT)
    residency: str = Field(default="", max_length=_TEXT)
    fellowship: str = Field(default="", max_length=_TEXT)
    practice_description: str = Field(default="", max_length=_TEXT)
    home_page_url: str = Field(default="", max_length=_TEXT)
    photo: str = Field(default="", max_length=400_000, description="Base64 PNG, JPEG, GIF or WebP.")
    photo_type: str = Field(default="", max_length=100, examples=["image/png"])


class CreateBody(ProfileFields):
    """Create User Profile."""

    organisation: OrganisationParam = None
    first_name: str = Field(max_length=_TEXT, examples=["Jane"])
    last_name: str = Field(max_length=_TEXT, examples=["Doe"])
    email: str = Field(max_length=_TEXT, examples=["jdoe@example.org"])
    time_zone: str | None = Field(
        default=None, max_length=64, description="Default: the organisation's."
    )
    login: str | None = Field(
        default=None, max_length=1023, description="Default: from the e-mail."
    )
    pin: Pin
    pin_is_temporary: bool = False
    password: Password | None = Field(
        default=None, description="None: the user sets one by registering."
    )
    is_org_admin: bool = False
    groups: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(default=[], max_length=1000)
    send_invitation: bool = Field(
        default=True, description="Without a password: mail an invitation."
    )


class UpdateBody(BaseModel):
    """Update User Profile: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=_TEXT)
    first_name: str | None = Field(default=None, max_length=_TEXT)
    last_name: str | None = Field(default=None, max_length=_TEXT)
    middle_name: str | None = Field(default=None, max_length=_TEXT)
    credentials: str | None = Field(default=None, max_length=_TEXT)
    job_title: str | None = Field(default=None, max_length=_TEXT)
    email: str | None = Field(default=None, max_length=_TEXT)
    cell_number: str | None = Field(default=None, max_length=_TEXT)
    address1: str | None = Field(default=None, max_length=_TEXT)
    address2: str | None = Field(default=None, max_length=_TEXT)
    city: str | None = Field(default=None, max_length=_TEXT)
    state: str | None = Field(default=None, max_length=_TEXT)
    zip: str | None = Field(default=None, max_length=_TEXT)
    office_phone: str | None = Field(default=None, max_length=_TEXT)
    office_fax: str | None = Field(default=None, max_length=_TEXT)
    time_zone: str | None = Field(default=None, max_length=64)
    specialty: str | None = Field(default=None, max_length=_TEXT)
    medical_school: str | None = Field(default=None, max_length=_TEXT)
    residency: str | None = Field(default=None, max_length=_TEXT)
    fellowship: str | None = Field(default=None, max_length=_TEXT)
    practice_description: str | None = Field(default=None, max_length=_TEXT)
    home_page_url: str | None = Field(default=None, max_length=_TEXT)
    photo: str | None = Field(default=None, max_length=400_000)
    photo_type: str | None = Field(default=None, max_length=100)
    is_org_admin: bool | None = Field(default=None, description="Grant or revoke Carewire Admin.")
    password: Password | None = None


class ProfileOut(ProfileFields):
    """Every field of the profile."""

    model_config = ConfigDict(extra="ignore")

    first_name: str
    last_name: str
    email: str
    time_zone: str


class UserOut(UserSummary):
    """A user: the profile and the account's state."""

    profile: ProfileOut
    has_pin: bool
    pin_is_temporary: bool
    is_locked: bool
    created_at: datetime
    updated_at: datetime


class UserPage(BaseModel):
    """One page of Find Users."""

    total: int
    offset: int
    limit: int
    users: list[UserSummary]


class ConvertBody(BaseModel):
    """Convert to Physician or Non-Physician Staff (physician fields are kept)."""

    model_config = ConfigDict(extra="forbid")

    user_type: StaffType


class CanLoginBody(BaseModel):
    """Can Login: enable, or disable (ending the user's sessions at once)."""

    model_config = ConfigDict(extra="forbid")

    can_login: bool


class PinBody(BaseModel):
    """A new PIN set by an administrator (the user is not told it)."""

    model_config = ConfigDict(extra="forbid")

    pin: Pin
    is_temporary: bool = Field(default=False, description="Must be changed at its next use.")


class Sent(BaseModel):
    """What was done."""

    detail: str


class GroupList(BaseModel):
    """Groups, by name."""

    groups: list[GroupOut]


def profile_of(body: ProfileFields, **required: str) -> Profile:
    """The service's profile from a body's fields (``user_type`` is the staff type)."""
    values = body.model_dump(include=set(ProfileFields.model_fields))
    staff_type = values.pop("user_type")
    return Profile(staff_type=staff_type, **values, **required)


def user_out(user: DirectoryUser) -> UserOut:
    """The answer for one user."""
    profile = {k: v for k, v in vars_of(user.profile).items() if k != "staff_type"}
    return UserOut(
        **user_summary(user).model_dump(),
        profile=ProfileOut.model_validate({**profile, "user_type": user.profile.staff_type}),
        has_pin=user.has_pin,
        pin_is_temporary=user.pin_is_temporary,
        is_locked=user.is_locked,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


def vars_of(profile: Profile) -> dict[str, object]:
    """A profile's fields by name."""
    return {name: getattr(profile, name) for name in Profile.__dataclass_fields__}


@router.get("", summary="Find users")
async def find_users(
    *,
    directory: Directory,
    caller: DirectoryCaller,
    organisation: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    first_name: Annotated[str, Query(max_length=200)] = "",
    last_name: Annotated[str, Query(max_length=200)] = "",
    email: Annotated[str, Query(max_length=320)] = "",
    user_type: StaffType | None = None,
    sort: SortKey = SortKey.NAME,
    order: Order = Order.ASC,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> UserPage:
    """An organisation's users matching every filter given, sorted, one page."""
    page = await directory.users.find(
        caller,
        organisation_of(caller, organisation),
        UserFilter(first_name=first_name, last_name=last_name, email=email, staff_type=user_type),
        sort=_SORTS[sort],
        is_descending=order is Order.DESC,
        page=PageRequest(offset=offset, limit=limit),
    )
    return UserPage(
        total=page.total,
        offset=page.offset,
        limit=page.limit,
        users=[user_summary(u) for u in page.items],
    )


@router.post("", status_code=201, summary="Create a user")
async def create_user(body: CreateBody, directory: Directory, caller: DirectoryCaller) -> UserOut:
    """Create a user (account, profile, PIN); without a password, mail them an invitation."""
    org = await directory.organisations.get(caller, organisation_of(caller, body.organisation))
    profile = profile_of(
        body,
        first_name=body.first_name,
        last_name=body.last_name,
        email=body.email,
        time_zone=body.time_zone or org.settings.default_time_zone,
    )
    user = await directory.users.create(
        caller,
        org.id,
        NewUser(
            profile=profile,
            login=body.login,
            pin=body.pin,
            pin_is_temporary=body.pin_is_temporary,
            password=body.password,
            is_org_admin=body.is_org_admin,
            groups=tuple(GroupId(g) for g in body.groups),
            send_invitation=body.send_invitation,
        ),
    )
    return user_out(user)


@router.get("/{login}", summary="Read a user")
async def get_user(login: Login, directory: Directory, caller: DirectoryCaller) -> UserOut:
    """One user's profile and state."""
    return user_out(await directory.users.get(caller, login))


@router.patch("/{login}", summary="Update a user")
async def update_user(
    login: Login, body: UpdateBody, directory: Directory, caller: DirectoryCaller
) -> UserOut:
    """Change the profile fields given, the administrator role, or the password."""
    before = await directory.users.get(caller, login)
    fields = body.model_dump(exclude_unset=True, exclude={"is_org_admin", "password"})
    changed = {k: v for k, v in fields.items() if v is not None}
    profile = replace(before.profile, **changed) if changed else None
    user = await directory.users.update(
        caller,
        login,
        UserUpdate(profile=profile, is_org_admin=body.is_org_admin, password=body.password),
    )
    return user_out(user)


@router.post("/{login}/convert", summary="Convert a user's type")
async def convert_user(
    login: Login, body: ConvertBody, directory: Directory, caller: DirectoryCaller
) -> UserOut:
    """Convert to Physician or Non-Physician (physician fields are kept, hidden)."""
    return user_out(await directory.users.convert(caller, login, body.user_type))


@router.put("/{login}/can-login", summary="Enable or disable login")
async def set_can_login(
    login: Login, body: CanLoginBody, directory: Directory, caller: DirectoryCaller
) -> UserOut:
    """Can Login: disabling ends the user's sessions at once."""
    return user_out(await directory.users.set_can_login(caller, login, body.can_login))


@router.post("/{login}/unlock", summary="Unlock a user")
async def unlock_user(
    login: Login, body: PinBody, directory: Directory, caller: DirectoryCaller
) -> UserOut:
    """Unlock after repeated failed logins, with a new PIN (login is enabled too)."""
    user = await directory.users.unlock(caller, login, body.pin, pin_is_temporary=body.is_temporary)
    return user_out(user)


@router.put("/{login}/pin", status_code=204, summary="Set a user's PIN")
async def set_pin(
    login: Login, body: PinBody, directory: Directory, caller: DirectoryCaller
) -> Response:
    """Change PIN: the administrator sets it (the user is not told it)."""
    await directory.pins.set(caller, login, body.pin, is_temporary=body.is_temporary)
    return Response(status_code=204)


@router.post("/{login}/pin-reset", status_code=202, summary="Mail a PIN reset link")
async def request_pin_reset(login: Login, directory: Directory, caller: DirectoryCaller) -> Sent:
    """Reset PIN: mail the user a single-use link to choose a new PIN (502: mail refused)."""
    await directory.pins.request_reset(caller, login)
    return Sent(detail=PIN_RESET_SENT)


@router.get("/{login}/groups", summary="List a user's groups")
async def list_user_groups(
    login: Login, directory: Directory, caller: DirectoryCaller
) -> GroupList:
    """The groups the user belongs to, by name."""
    return GroupList(groups=[group_out(g) for g in await directory.users.groups_of(caller, login)])


@router.delete("/{login}", status_code=204, summary="Delete a user")
async def delete_user(login: Login, directory: Directory, caller: DirectoryCaller) -> Response:
    """Delete the user: account (sessions end), profile, memberships, open invitations."""
    await directory.users.delete(caller, login)
    return Response(status_code=204)
