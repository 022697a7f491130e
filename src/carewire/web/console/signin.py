"""Signing in and out, and the forgotten-password flow (pages without a session).

Sign-in failures all read "Invalid username or password", whatever the
reason (the audit trail keeps it), but one: a user whose password their
organisation's directory checks (LDAP sign-in) is told when that directory
cannot be reached (503), since trying again later is all they can do.
The forgotten-password form always answers "If the account exists, a
message has been sent"; the mail itself is sent after the response (a
background task), so the answer takes as long whether or not an account
exists.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.background import BackgroundTask
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from carewire.errors import ValidationError
from carewire.mail import Mailer, MailError
from carewire.security.console_auth import DirectoryUnavailableError, ResetLinkError, SignInError
from carewire.web.console.auth import (
    SignInRequired,
    anonymous_csrf_token,
    check_anonymous_csrf,
    check_csrf,
    clear_session_cookie,
    current_session,
    read_form,
    remote_ip,
    set_anonymous_csrf,
    set_session_cookie,
)
from carewire.web.console.render import describe_duration, render

log = logging.getLogger(__name__)

FORGOT_ANSWER = "If the account exists, a message has been sent."
_CHANGED = "Your password has been changed. Sign in with your new password."


def _field(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _anonymous_page(
    request: Request, template: str, *, title: str, status_code: int = 200, **context: Any
) -> Response:
    token = anonymous_csrf_token(request)
    response = render(
        request, template, title=title, status_code=status_code, csrf_token=token, **context
    )
    set_anonymous_csrf(response, token)
    return response


def safe_next(value: str) -> str:
    """A path on this console to go to after signing in ("" when not one of ours).

    Only absolute paths of this site are followed (``/associations/…``);
    ``//host``, ``/\\host`` and anything with a scheme are dropped, so the
    parameter cannot send a browser elsewhere.
    """
    if not value.startswith("/") or value.startswith(("//", "/\\")) or len(value) > 2048:
        return ""
    if any(c in value for c in "\r\n\\") or any(ord(c) < 32 for c in value):
        return ""
    return value


def _inactivity_text(request: Request) -> str:
    timeout = request.app.state.services.config.session_timeout
    return f"You were signed out after {describe_duration(timeout)} without activity."


async def show_signin(request: Request) -> Response:
    """GET /signin: the form (with a notice after a timeout or a password change)."""
    notices = {"inactive": _inactivity_text(request), "changed": _CHANGED}
    notice = notices.get(request.query_params.get("m", ""), "")
    after = safe_next(request.query_params.get("next", ""))
    try:
        if await current_session(request) is not None and not notice:
            return RedirectResponse(after or "/", 303)
    except SignInRequired:  # the session timed out just now
        notice = notices["inactive"]
    return _anonymous_page(
        request, "signin.html", title="Sign in", notice=notice, error="", next_path=after
    )


async def do_signin(request: Request) -> Response:
    """POST /signin: check the credentials, open a session, go to the dashboard."""
    form = await read_form(request)
    check_anonymous_csrf(request, form)
    login = _field(form, "username")
    after = safe_next(_field(form, "next"))
    accounts = request.app.state.services.accounts
    try:
        session, token = await accounts.sign_in(
            login, _field(form, "password"), remote_ip=remote_ip(request)
        )
    except SignInError as exc:
        return _anonymous_page(
            request,
            "signin.html",
            title="Sign in",
            status_code=503 if isinstance(exc, DirectoryUnavailableError) else 401,
            notice="",
            error=exc.message,
            username=login[:320],
            next_path=after,
        )
    target = "/account/password" if session.user.must_change_password else (after or "/")
    response = RedirectResponse(target, 303)
    set_session_cookie(response, token)
    return response


async def show_signout(request: Request) -> Response:
    """GET /signout: "signed out" (the inactivity timer comes here), or a sign-out button."""
    inactive = request.query_params.get("reason") == "inactivity"
    try:
        signed_in = await current_session(request)
    except SignInRequired:  # the session timed out just now
        signed_in, inactive = None, True
    if signed_in is not None:
        return render(
            request, "signout.html", title="Sign out", signed_in=signed_in, confirm=True, notice=""
        )
    notice = _inactivity_text(request) if inactive else "You are signed out."
    response = render(request, "signout.html", title="Signed out", confirm=False, notice=notice)
    clear_session_cookie(response)
    return response


async def do_signout(request: Request) -> Response:
    """POST /signout: end the session."""
    signed_in = await current_session(request)
    form = await read_form(request)
    if signed_in is None:
        check_anonymous_csrf(request, form)
        response = RedirectResponse("/signout", 303)
    else:
        check_csrf(request, form, signed_in)
        await request.app.state.services.accounts.sign_out(
            signed_in.session, remote_ip=remote_ip(request)
        )
        response = RedirectResponse("/signout", 303)
    clear_session_cookie(response)
    return response


async def show_forgot(request: Request) -> Response:
    """GET /forgot: the form asking for the username or e-mail address."""
    return _anonymous_page(request, "forgot.html", title="Reset your password", sent=False)


async def do_forgot(request: Request) -> Response:
    """POST /forgot: mail a reset link if the account exists; the same answer either way."""
    form = await read_form(request)
    check_anonymous_csrf(request, form)
    services = request.app.state.services
    reset = await services.accounts.request_reset(
        _field(form, "login"), config=services.config, remote_ip=remote_ip(request)
    )
    response = _anonymous_page(request, "forgot.html", title="Reset your password", sent=True)
    if reset is not None:
        ttl = describe_duration(services.config.reset_link_ttl)
        body = (
            f"Someone (we hope you) asked to reset the password of the Carewire console "
            f'account "{reset.user.username}".\n\n'
            f"To choose a new password, open this link within {ttl}:\n\n"
            f"{reset.url}\n\n"
            "The link works once. If you did not ask for this, ignore this message: "
            "your password stays as it is.\n"
        )
        subject = "Reset your Carewire console password"
        response.background = BackgroundTask(_send, services.mailer, reset.email, subject, body)
    return response


async def _send(mailer: Mailer, to: str, subject: str, body: str) -> None:
    try:
        await mailer.send(to, subject, body)
    except MailError as exc:
        log.warning("console mail not sent: %s", exc.message)


async def show_reset(request: Request) -> Response:
    """GET /reset/{token}: the new-password form, or "this link is not valid any more"."""
    token = request.path_params["token"]
    try:
        await request.app.state.services.accounts.check_reset(token)
    except ResetLinkError:
        return _invalid_link(request)
    return _anonymous_page(request, "reset.html", title="Choose a new password", error="")


def _invalid_link(request: Request) -> Response:
    return _anonymous_page(
        request,
        "error.html",
        title="Link not valid",
        status_code=410,
        heading="This link is not valid any more",
        text="Password-reset links work once and only for a short time. Ask for a new one.",
        link=("/forgot", "Ask for a new link"),
    )


async def do_reset(request: Request) -> Response:
    """POST /reset/{token}: set the new password, end every session, mail a confirmation."""
    token = request.path_params["token"]
    form = await read_form(request)
    check_anonymous_csrf(request, form)
    new, confirm = _field(form, "password"), _field(form, "confirm")
    services = request.app.state.services
    try:
        if new != confirm:
            raise ValidationError("The two passwords are not the same.")
        user = await services.accounts.complete_reset(token, new, remote_ip=remote_ip(request))
    except ValidationError as exc:
        return _anonymous_page(
            request, "reset.html", title="Choose a new password", status_code=400, error=exc.message
        )
    except ResetLinkError:
        return _invalid_link(request)
    response = RedirectResponse("/signin?m=changed", 303)
    clear_session_cookie(response)
    if user.email:
        body = (
            f'The password of the Carewire console account "{user.username}" was changed '
            "through a password-reset link, and every session of the account was signed out.\n\n"
            "If you did not do this, tell your Carewire administrator at once.\n"
        )
        subject = "Your Carewire console password was changed"
        response.background = BackgroundTask(_send, services.mailer, user.email, subject, body)
    return response
