"""Public pages reached from mailed links: registration and PIN reset (no console sign-in).

``/register/{token}`` shows the inviting organisation and the e-mail and asks
login (suggested), names, Cell (Private), password and PIN (each twice), time
zone and staff type; one transaction of the directory service creates the
whole user. ``/pin-reset/{token}`` asks the new PIN twice. A link that is
unknown, expired, deleted or already used gets a clear page with HTTP 410
and nothing is created. The forms carry a double-submit CSRF token (the
``cw_csrf`` cookie), like the sign-in page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from carewire.directory.model import LinkGoneError, RegistrationForm, StaffType
from carewire.errors import ConflictError, ValidationError
from carewire.security.console_auth import check_password
from carewire.web.console.auth import (
    anonymous_csrf_token,
    check_anonymous_csrf,
    read_form,
    remote_ip,
    set_anonymous_csrf,
)
from carewire.web.console.directory import orgforms, profileform
from carewire.web.console.directory.common import directory, problem_of, text
from carewire.web.console.render import render

GONE_TEXT = {
    "register": (
        "This registration link is not valid any more",
        "Invitation links work once and only until they expire; a newer invitation or a "
        "deleted one also ends them. Ask your organization's administrator to send you a "
        "new invitation.",
    ),
    "pin": (
        "This PIN reset link is not valid any more",
        "PIN reset links work once and only for 24 hours. Ask your administrator to send you a "
        "new one.",
    ),
}
_REGISTER_FIELDS = ("login", "first_name", "last_name", "cell_number", "time_zone", "staff_type")


def _public(
    request: Request, template: str, *, title: str, status_code: int = 200, **context: Any
) -> Response:
    token = anonymous_csrf_token(request)
    response = render(
        request, template, title=title, status_code=status_code, csrf_token=token, **context
    )
    set_anonymous_csrf(response, token)
    return response


def _gone(request: Request, which: str) -> Response:
    heading, explanation = GONE_TEXT[which]
    return _public(
        request,
        "error.html",
        title="Link not valid",
        status_code=410,
        heading=heading,
        text=explanation,
        link=("/signin", "Go to the sign-in page"),
    )


def _token(request: Request) -> str:
    return str(request.path_params["token"])[:256]


# -- registration ------------------------------------------------------------------------------


async def _show_register(
    request: Request,
    values: Mapping[str, str] | None = None,
    *,
    error: str = "",
    error_field: str = "",
) -> Response:
    info = await directory(request).registration.info(_token(request), remote_ip=remote_ip(request))
    shown = {
        "login": info.login,
        "first_name": info.first_name,
        "last_name": info.last_name,
        "cell_number": "",
        "time_zone": info.time_zone,
        "staff_type": StaffType.PHYSICIAN.value,
        **(values or {}),
    }
    if info.is_login_fixed:
        shown["login"] = info.login
    return _public(
        request,
        "dir_register.html",
        title="Register",
        status_code=400 if error else 200,
        info=info,
        values=shown,
        zones=orgforms.time_zones(),
        staff_types=profileform.STAFF_TYPES,
        error=error,
        error_field=error_field,
        done=None,
    )


async def show_register(request: Request) -> Response:
    """GET /register/{token}: the registration form (records the click)."""
    directory(request)
    try:
        return await _show_register(request)
    except LinkGoneError:
        return _gone(request, "register")


async def do_register(request: Request) -> Response:
    """POST /register/{token}: create the user in one transaction."""
    svc = directory(request)
    form = await read_form(request)
    check_anonymous_csrf(request, form)
    values = {name: text(form, name) for name in _REGISTER_FIELDS}
    staff = values["staff_type"] or StaffType.PHYSICIAN.value
    try:
        if staff not in {s.value for s in StaffType}:
            raise ValidationError("Choose Physician or Non-Physician.")
        user = await svc.registration.register(
            _token(request),
            RegistrationForm(
                login=values["login"],
                first_name=values["first_name"],
                last_name=values["last_name"],
                cell_number=values["cell_number"],
                password=text(form, "password"),
                password_confirm=text(form, "password_confirm"),
                pin=text(form, "pin"),
                pin_confirm=text(form, "pin_confirm"),
                time_zone=values["time_zone"],
                staff_type=StaffType(staff),
            ),
            remote_ip=remote_ip(request),
        )
    except LinkGoneError:
        return _gone(request, "register")
    except (ValidationError, ConflictError) as exc:
        message, field = problem_of(exc)
        field = field or _password_field(text(form, "password"))
        try:
            return await _show_register(request, values, error=message, error_field=field)
        except LinkGoneError:
            return _gone(request, "register")
    return _public(
        request,
        "dir_register.html",
        title="Registered",
        info=None,
        values={},
        zones=(),
        staff_types=(),
        error="",
        error_field="",
        done={
            "address": f"{user.login}@{svc.config.domain}",
            "login": user.login,
            "is_admin": user.is_org_admin,
            "email": user.profile.email,
        },
    )


def _password_field(password: str) -> str:
    """ "password" when the console's password rule refuses ``password`` (to mark the field)."""
    try:
        check_password(password)
    except ValidationError:
        return "password"
    return ""


# -- PIN reset ---------------------------------------------------------------------------------


async def _show_pin_reset(request: Request, *, error: str = "", error_field: str = "") -> Response:
    info = await directory(request).pins.reset_info(_token(request))
    return _public(
        request,
        "dir_pin_reset.html",
        title="Choose a new PIN",
        status_code=400 if error else 200,
        info=info,
        error=error,
        error_field=error_field,
        done=False,
    )


async def show_pin_reset(request: Request) -> Response:
    """GET /pin-reset/{token}: the new-PIN form."""
    try:
        return await _show_pin_reset(request)
    except LinkGoneError:
        return _gone(request, "pin")


async def do_pin_reset(request: Request) -> Response:
    """POST /pin-reset/{token}: set the new PIN (the link is then used up)."""
    svc = directory(request)
    form = await read_form(request)
    check_anonymous_csrf(request, form)
    try:
        await svc.pins.complete_reset(
            _token(request),
            text(form, "pin"),
            text(form, "pin_confirm"),
            remote_ip=remote_ip(request),
        )
    except LinkGoneError:
        return _gone(request, "pin")
    except ValidationError as exc:
        message, field = problem_of(exc)
        try:
            return await _show_pin_reset(request, error=message, error_field=field)
        except LinkGoneError:
            return _gone(request, "pin")
    return _public(
        request,
        "dir_pin_reset.html",
        title="PIN changed",
        info=None,
        error="",
        error_field="",
        done=True,
    )
