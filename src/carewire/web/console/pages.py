"""Signed-in console pages: the dashboard, changing one's password, the console users.

Each handler starts with :func:`require_role`; the sections the dashboard
links to (adapters, rules, …) get their pages later and answer 404 today.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from carewire.directory.model import OrganisationId
from carewire.errors import NotFoundError, ValidationError
from carewire.security.console_auth import DIRECTORY_PASSWORD_TEXT
from carewire.web.console.auth import (
    ANY_ROLE,
    USER_ADMINS,
    check_csrf,
    read_form,
    remote_ip,
    require_role,
)
from carewire.web.console.render import ROLE_NAMES, render
from carewire.web.console.system import view as system_view

_NOTICES = {"password-changed": "Your password has been changed."}


async def dashboard(request: Request) -> Response:
    """GET /: who is signed in, the system's live figures (for system roles), the sections."""
    signed_in = await require_role(request, *ANY_ROLE)
    notice = _NOTICES.get(request.query_params.get("m", ""), "")
    org_name = await _organisation_name(request, signed_in.user.organisation_id)
    return render(
        request,
        "dashboard.html",
        title="Dashboard",
        signed_in=signed_in,
        notice=notice,
        org_label=org_name,
        organisation=(signed_in.user.organisation_id, org_name) if org_name else None,
        system=await system_view(request, signed_in.user),
    )


async def _organisation_name(request: Request, organisation_id: int | None) -> str:
    """The name of the organisation an organisation administrator administers ("" if none)."""
    directory = request.app.state.services.directory
    if directory is None or organisation_id is None:
        return ""
    try:
        ref = await directory.organisations.ref(OrganisationId(organisation_id))
    except NotFoundError:
        return ""
    return str(ref.name)


async def show_password(request: Request) -> Response:
    """GET /account/password: the form to change one's own password."""
    signed_in = await require_role(request, *ANY_ROLE, allow_password_change=True)
    accounts = request.app.state.services.accounts
    return render(
        request,
        "password.html",
        title="Change your password",
        signed_in=signed_in,
        error="",
        directory_text=DIRECTORY_PASSWORD_TEXT
        if await accounts.is_external(signed_in.user)
        else "",
    )


async def change_password(request: Request) -> Response:
    """POST /account/password: check the current password, set the new one."""
    signed_in = await require_role(request, *ANY_ROLE, allow_password_change=True)
    form = await read_form(request)
    check_csrf(request, form, signed_in)
    current, new, confirm = (form.get(k, "") for k in ("current", "password", "confirm"))
    try:
        if not all(isinstance(v, str) for v in (current, new, confirm)) or new != confirm:
            raise ValidationError("The two new passwords are not the same.")
        assert isinstance(current, str) and isinstance(new, str)
        await request.app.state.services.accounts.change_password(
            signed_in.session, current, new, remote_ip=remote_ip(request)
        )
    except ValidationError as exc:
        return render(
            request,
            "password.html",
            title="Change your password",
            signed_in=signed_in,
            status_code=400,
            error=exc.message,
            directory_text="",
        )
    return RedirectResponse("/?m=password-changed", 303)


async def users(request: Request) -> Response:
    """GET /users: the console users (system administrators only)."""
    signed_in = await require_role(request, *USER_ADMINS)
    everyone = await request.app.state.services.accounts.list_users()
    return render(
        request,
        "users.html",
        title="Console users",
        signed_in=signed_in,
        users=everyone,
        role_names=ROLE_NAMES,
    )
