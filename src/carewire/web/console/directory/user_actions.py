"""The actions beside a user's profile: Reset PIN, Convert to, groups, devices, Delete User.

Release now (the Coverage panel, :mod:`.coverage`) delivers the messages held
for a busy user at once.

Reset PIN mails the user a single-use link ("Success. A PIN Reset email has
been sent to the user."). User's Devices offers what each device's state
allows: Disable/Enable Notification, Wipe Device (after a confirmation; it
ends that device's sessions at once), Delete Device Info (after a wipe).
Delete User asks first and removes the user from the organisation, its
groups and the directory.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from carewire.directory.model import StaffType, UnknownDeviceError, UnknownGroupError
from carewire.errors import ConflictError
from carewire.mail import MailError
from carewire.web.console.directory import coverage
from carewire.web.console.directory.common import (
    crumb,
    directory,
    guarded,
    org_page,
    page,
    text,
)
from carewire.web.console.directory.users import show_profile, user_of

DELETE_TEXT = (
    "Delete {name}? The user will be removed from the organization, all groups and the "
    "directory. Messages already sent are kept until purged by retention."
)
WIPE_TEXT = (
    "Wipe {device}? Carewire data is removed from the device and the user is logged out of it. "
    "The device's information can be deleted afterwards."
)


async def reset_pin(request: Request) -> Response:
    """POST /orgs/{org}/user/{login}/reset-pin: mail the user a PIN-reset link."""
    where, _form = await guarded(request)
    user = await user_of(request, where)
    try:
        await directory(request).pins.request_reset(where.caller, user.login)
    except MailError:
        return await show_profile(
            request,
            where,
            user,
            error="The PIN Reset email could not be sent. Check the mail settings and try again.",
            status_code=502,
        )
    return RedirectResponse(f"{where.base}/user/{user.login}?m=pin-reset", 303)


async def convert(request: Request) -> Response:
    """POST /orgs/{org}/user/{login}/convert: Convert to Physician or Non-Physician Staff."""
    where, form = await guarded(request)
    user = await user_of(request, where)
    wanted = text(form, "staff_type")
    if wanted not in {s.value for s in StaffType}:
        return await show_profile(
            request, where, user, error="Choose Physician or Non-Physician Staff.", status_code=400
        )
    await directory(request).users.convert(where.caller, user.login, StaffType(wanted))
    return RedirectResponse(f"{where.base}/user/{user.login}?m=converted", 303)


async def remove_from_group(request: Request) -> Response:
    """POST /orgs/{org}/user/{login}/groups/{group}/remove: out of the group, not the org."""
    where, _form = await guarded(request)
    user = await user_of(request, where)
    svc = directory(request)
    group = await svc.groups.get(where.caller, request.path_params["group"])
    if group.organisation_id != where.org.id:
        raise UnknownGroupError(f"no group {group.id} here")
    await svc.groups.remove_members(where.caller, group.id, [user.login])
    return RedirectResponse(f"{where.base}/user/{user.login}?m=group-removed", 303)


async def confirm_delete(request: Request) -> Response:
    """GET /orgs/{org}/user/{login}/delete: ask before deleting the user."""
    where = await org_page(request, write=True)
    user = await user_of(request, where)
    return page(
        request,
        where,
        "dir_confirm.html",
        title="Delete User",
        crumbs=crumb(where.caller, where.org, user.profile.sort_name, "Delete User"),
        heading="Delete User",
        question=DELETE_TEXT.format(name=user.profile.reference_name),
        action=f"{where.base}/user/{user.login}/delete",
        cancel=f"{where.base}/user/{user.login}",
        button="Delete User",
        fields={},
    )


async def delete(request: Request) -> Response:
    """POST /orgs/{org}/user/{login}/delete: delete the user."""
    where, _form = await guarded(request)
    user = await user_of(request, where)
    try:
        await directory(request).users.delete(where.caller, user.login)
    except ConflictError as exc:
        return await show_profile(request, where, user, error=exc.message, status_code=409)
    return RedirectResponse(f"{where.base}?m=user-deleted#members", 303)


# -- User's Devices ----------------------------------------------------------------------------


async def set_push(request: Request) -> Response:
    """POST /orgs/{org}/user/{login}/devices/push: Enable or Disable Notification."""
    where, form = await guarded(request)
    user = await user_of(request, where)
    enabled = text(form, "enabled") == "yes"
    await directory(request).devices.set_push(
        where.caller, user.login, text(form, "device"), enabled
    )
    return RedirectResponse(f"{where.base}/user/{user.login}?m=push#devices", 303)


async def confirm_wipe(request: Request) -> Response:
    """GET /orgs/{org}/user/{login}/devices/wipe?device=: ask before wiping."""
    where = await org_page(request, write=True)
    user = await user_of(request, where)
    device = request.query_params.get("device", "")
    names = {d.name for d in await directory(request).devices.list_for(where.caller, user.login)}
    if device not in names:
        raise UnknownDeviceError(f"no device {device!r}")
    return page(
        request,
        where,
        "dir_confirm.html",
        title="Wipe Device",
        crumbs=crumb(where.caller, where.org, user.profile.sort_name, "Wipe Device"),
        heading="Wipe Device",
        question=WIPE_TEXT.format(device=device),
        action=f"{where.base}/user/{user.login}/devices/wipe",
        cancel=f"{where.base}/user/{user.login}#devices",
        button="Wipe Device",
        fields={"device": device},
    )


async def wipe(request: Request) -> Response:
    """POST /orgs/{org}/user/{login}/devices/wipe: request the remote wipe."""
    where, form = await guarded(request)
    user = await user_of(request, where)
    await directory(request).devices.wipe(where.caller, user.login, text(form, "device"))
    return RedirectResponse(f"{where.base}/user/{user.login}?m=wiped#devices", 303)


async def delete_device(request: Request) -> Response:
    """POST /orgs/{org}/user/{login}/devices/delete: Delete Device Info (after a wipe)."""
    where, form = await guarded(request)
    user = await user_of(request, where)
    try:
        await directory(request).devices.delete(where.caller, user.login, text(form, "device"))
    except ConflictError as exc:
        return await show_profile(request, where, user, error=exc.message, status_code=409)
    return RedirectResponse(f"{where.base}/user/{user.login}?m=device-deleted#devices", 303)


# -- Coverage ----------------------------------------------------------------------------------


async def release_held(request: Request) -> Response:
    """POST /orgs/{org}/user/{login}/coverage/release: Release now (audited)."""
    where, _form = await guarded(request)
    user = await user_of(request, where)
    desk = coverage.desk(request)
    if desk is None:
        raise HTTPException(404)
    code = await coverage.release(where, desk, user.login)
    return RedirectResponse(f"{where.base}/user/{user.login}?m={code}#coverage", 303)
