"""Manage Users: Find Users, Create User Profile and Update User Profile.

Find Users searches by First Name, Last Name, User ID (Email) and User Type
(case-insensitive substrings, combined), 10 results a page by default
(10/25/50/100), sorted by Name (click again: descending) or by User Type.
The profile pages hold every field of the seed; the actions beside the
profile (Reset PIN, devices, Convert to, Delete) are in :mod:`.user_actions`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from carewire.directory.model import (
    PAGE_SIZES,
    DirectoryUser,
    GroupId,
    InvalidFieldError,
    NewUser,
    PageRequest,
    StaffType,
    SyncedFieldError,
    UnknownUserError,
    UserFilter,
    UserSortKey,
    UserUpdate,
)
from carewire.errors import ConflictError, ValidationError
from carewire.web.console.directory import coverage, orgforms, profileform
from carewire.web.console.directory.common import (
    OrgPage,
    activity,
    crumb,
    directory,
    guarded,
    ids,
    org_page,
    page,
    problem_of,
    query,
    text,
    uploaded,
)

_SORTS = {
    "name": (UserSortKey.NAME, False),
    "-name": (UserSortKey.NAME, True),
    "type": (UserSortKey.STAFF_TYPE, False),
    "-type": (UserSortKey.STAFF_TYPE, True),
}
_SEARCH = ("first_name", "last_name", "email", "staff_type")
#: User Type choices of Find Users ("" is All).
USER_TYPES: tuple[tuple[str, str], ...] = (("", "All"), *profileform.STAFF_TYPES)


async def user_of(request: Request, where: OrgPage) -> DirectoryUser:
    """The path's user, if of the path's organisation (else "not found")."""
    login = str(request.path_params["login"])
    user = await directory(request).users.get(where.caller, login)
    if user.organisation_id != where.org.id:
        raise UnknownUserError(f"no user {login!r} in this organisation")
    return user


# -- Find Users --------------------------------------------------------------------------------


def _limit(params: Mapping[str, str]) -> int:
    value = params.get("limit", "")
    return int(value) if value.isdigit() and int(value) in PAGE_SIZES else PAGE_SIZES[0]


async def find(request: Request) -> Response:
    """GET /orgs/{org}/users: Find Users."""
    where = await org_page(request)
    params = request.query_params
    staff = params.get("staff_type", "")
    search = UserFilter(
        first_name=params.get("first_name", "").strip()[:64],
        last_name=params.get("last_name", "").strip()[:64],
        email=params.get("email", "").strip()[:254],
        staff_type=StaffType(staff) if staff in set(StaffType) else None,
    )
    sort = params.get("sort", "name")
    key, descending = _SORTS.get(sort, _SORTS["name"])
    limit = _limit(params)
    number = params.get("page", "1")
    current = int(number) if number.isdigit() and 0 < len(number) < 7 and int(number) > 0 else 1
    found = await directory(request).users.find(
        where.caller,
        where.org.id,
        search,
        sort=key,
        is_descending=descending,
        page=PageRequest(offset=(current - 1) * limit, limit=limit),
    )
    kept = {k: params[k] for k in _SEARCH if params.get(k)}
    return page(
        request,
        where,
        "dir_users.html",
        title="Find Users",
        crumbs=crumb(where.caller, where.org, "Find Users"),
        found=found,
        search=kept,
        user_types=USER_TYPES,
        sort=sort if sort in _SORTS else "name",
        limit=limit,
        page_sizes=PAGE_SIZES,
        number=current,
        page_count=max(1, -(-found.total // limit)),
        sort_link=lambda s: "?" + query(kept, sort=s, limit=limit),
        paging_prefix="?" + query(kept, sort=sort, limit=limit) + "&page=",
    )


# -- Create User Profile -----------------------------------------------------------------------


async def _create_page(
    request: Request,
    where: OrgPage,
    values: Mapping[str, str],
    *,
    chosen: Sequence[int] = (),
    flags: Mapping[str, bool] | None = None,
    error: str = "",
    error_field: str = "",
) -> Response:
    groups = await directory(request).groups.list_for(where.caller, where.org.id)
    return page(
        request,
        where,
        "dir_user_new.html",
        title="Create User Profile",
        status_code=400 if error else 200,
        crumbs=crumb(where.caller, where.org, "Create User"),
        values=values,
        groups=groups,
        chosen=set(chosen),
        flags=flags or {"send_invitation": True, "is_org_admin": False},
        staff_types=profileform.STAFF_TYPES,
        zones=orgforms.time_zones(),
        pin_length=where.org.settings.pin_length,
        error=error,
        error_field=error_field,
    )


async def new_user(request: Request) -> Response:
    """GET /orgs/{org}/users/new: an empty Create User Profile form."""
    where = await org_page(request, write=True)
    values = {
        "time_zone": where.org.settings.default_time_zone,
        "staff_type": StaffType.PHYSICIAN.value,
        "pin_is_temporary": "no",
    }
    return await _create_page(request, where, values)


async def create_user(request: Request) -> Response:
    """POST /orgs/{org}/users/new: create the user (and mail the invitation if asked)."""
    where, form = await guarded(request)
    values = profileform.sent_values(form)
    chosen = ids(form, "group")
    flags = {
        "send_invitation": text(form, "send_invitation") == "on",
        "is_org_admin": text(form, "is_org_admin") == "on",
    }
    try:
        new = NewUser(
            profile=profileform.profile_of(form),
            login=text(form, "login").strip() or None,
            pin=text(form, "pin"),
            pin_is_temporary=orgforms.yes(form, "pin_is_temporary"),
            password=profileform.check_password_pair(form),
            is_org_admin=flags["is_org_admin"],
            groups=tuple(GroupId(i) for i in chosen),
            send_invitation=flags["send_invitation"],
        )
        if not new.pin:
            raise InvalidFieldError("pin", "PIN is required.")
        user = await directory(request).users.create(where.caller, where.org.id, new)
    except (ValidationError, ConflictError) as exc:
        message, field = problem_of(exc)
        return await _create_page(
            request, where, values, chosen=chosen, flags=flags, error=message, error_field=field
        )
    return RedirectResponse(f"{where.base}/user/{user.login}?m=created", 303)


# -- Update User Profile -----------------------------------------------------------------------

_NOTICES = {
    "created": "The user was created.",
    "saved": "The user profile was updated.",
    "pin-reset": "Success. A PIN Reset email has been sent to the user.",
    "converted": "The user account is converted to the new type.",
    "group-removed": "The user was removed from the group (not from the organization).",
    "push": "The device's push notifications were changed.",
    "wiped": "A remote wipe was requested: the device's sessions were ended.",
    "device-deleted": "The device information was deleted.",
    **coverage.NOTICES,
}


async def show_profile(
    request: Request,
    where: OrgPage,
    user: DirectoryUser,
    *,
    values: Mapping[str, str] | None = None,
    notice: str = "",
    error: str = "",
    error_field: str = "",
    status_code: int = 200,
) -> Response:
    """Render Update User Profile (with a refused form's values, or a notice)."""
    svc = directory(request)
    return page(
        request,
        where,
        "dir_user.html",
        title=f"Update User Profile · {user.profile.reference_name}",
        status_code=status_code,
        crumbs=crumb(where.caller, where.org, user.profile.sort_name, "Edit User"),
        u=user,
        values=values or profileform.profile_values(user),
        groups=await svc.users.groups_of(where.caller, user.login),
        synced=await svc.users.synced_fields(where.caller, user.login),
        devices=await svc.devices.list_for(where.caller, user.login),
        coverage=await coverage.panel(request, user.login),
        staff_types=profileform.STAFF_TYPES,
        zones=orgforms.time_zones(),
        pin_length=where.org.settings.pin_length,
        activity=activity,
        notice=notice or _NOTICES.get(request.query_params.get("m", ""), ""),
        error=error,
        error_field=error_field,
    )


async def profile(request: Request) -> Response:
    """GET /orgs/{org}/user/{login}: Update User Profile."""
    where = await org_page(request)
    return await show_profile(request, where, await user_of(request, where))


async def save_profile(request: Request) -> Response:
    """POST /orgs/{org}/user/{login}: Update (fields, roles, Can Login, PIN, password)."""
    where, form = await guarded(request, max_files=1)
    user = await user_of(request, where)
    values = profileform.sent_values(form)
    values["login"] = user.login
    svc = directory(request).users
    try:
        photo, photo_type = profileform.photo_of(form, uploaded(request, "photo"), user.profile)
        new_profile = profileform.profile_of(form, photo=photo, photo_type=photo_type)
        pin = text(form, "pin") or None
        temporary = orgforms.yes(form, "pin_is_temporary")
        can_login = text(form, "can_login")
        if user.is_locked and can_login == "yes":
            if pin is None:
                raise InvalidFieldError("pin", "Give a new PIN to unlock the user.")
            await svc.unlock(where.caller, user.login, pin, pin_is_temporary=temporary)
            pin = None
        update = UserUpdate(
            profile=new_profile,
            is_org_admin=text(form, "is_org_admin") == "on",
            can_login={"yes": True, "no": False}.get(can_login),
            pin=pin,
            pin_is_temporary=temporary if pin is not None else None,
            password=profileform.check_password_pair(form),
        )
        await svc.update(where.caller, user.login, update)
    except (ValidationError, ConflictError, SyncedFieldError) as exc:
        message, field = problem_of(exc)
        fresh = await svc.get(where.caller, user.login)
        return await show_profile(
            request,
            where,
            fresh,
            values=values,
            error=message,
            error_field=field,
            status_code=400,
        )
    return RedirectResponse(f"{where.base}/user/{user.login}?m=saved", 303)


async def photo(request: Request) -> Response:
    """GET /orgs/{org}/user/{login}/photo: the profile image."""
    where = await org_page(request)
    user = await user_of(request, where)
    data = profileform.photo_bytes(user.profile)
    if data is None:
        raise UnknownUserError("no photo")
    return Response(data, media_type=user.profile.photo_type or "application/octet-stream")
