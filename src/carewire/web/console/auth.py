"""Console sessions in the browser: the cookie, CSRF tokens and role checks.

The session cookie ``cw_session`` carries a random token (HttpOnly, Secure,
SameSite=Strict, Path=/); the server keeps only its digest. Every POST must
carry a CSRF token, in the ``csrf_token`` form field or the ``X-CSRF-Token``
header: the session's own token once signed in; before that (sign-in,
forgotten and reset password forms) a double-submit token, a random value
set as the ``cw_csrf`` cookie that the form must echo.

Every page starts with :func:`require_role`, which answers anonymous and
timed-out browsers with a redirect to the sign-in page, forces a pending
password change, and refuses roles the page does not allow.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from carewire.errors import CarewireError
from carewire.security.console_auth import (
    ConsoleAccounts,
    ConsoleConfig,
    ConsoleSession,
    ConsoleUser,
    Role,
    SessionExpired,
)

SESSION_COOKIE = "cw_session"
CSRF_COOKIE = "cw_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
#: Every role: pages anyone signed in may see.
ANY_ROLE: tuple[Role, ...] = tuple(Role)
#: Roles that may change settings (auditors only look).
WRITERS: tuple[Role, ...] = (Role.SYSTEM_ADMIN, Role.ORG_ADMIN)
#: Roles that may manage console users.
USER_ADMINS: tuple[Role, ...] = (Role.SYSTEM_ADMIN,)
#: The most fields a console form has (more is not one of ours).
MAX_FORM_FIELDS = 20


class SignInRequired(CarewireError):
    """No live session: send the browser to the sign-in page.

    Attributes:
        timed_out: The session just ended for inactivity (the page says so).
    """

    code = "sign-in-required"

    def __init__(self, *, timed_out: bool = False) -> None:
        super().__init__("sign in first")
        self.timed_out = timed_out


class PasswordChangeRequired(CarewireError):
    """The user must choose a new password before anything else."""

    code = "password-change-required"


class Forbidden(CarewireError):
    """The user's role does not allow this page."""

    code = "forbidden"


class CsrfRejected(CarewireError):
    """A POST without the right CSRF token."""

    code = "csrf"


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedIn:
    """The signed-in user of a request.

    Attributes:
        session: The live session (its user and CSRF token).
    """

    session: ConsoleSession

    @property
    def user(self) -> ConsoleUser:
        """Who is signed in."""
        return self.session.user

    @property
    def csrf_token(self) -> str:
        """The token the session's forms carry."""
        return self.session.csrf_token


def remote_ip(request: Request) -> str:
    """The peer's address (the console is not run behind a proxy)."""
    return request.client.host if request.client else ""


def _services(request: Request) -> tuple[ConsoleAccounts, ConsoleConfig]:
    services = request.app.state.services
    return services.accounts, services.config


async def current_session(request: Request, *, is_activity: bool = True) -> SignedIn | None:
    """The request's live session, if any.

    ``is_activity`` False (a page refreshing part of itself in the
    background) does not keep the session alive.

    Raises:
        SignInRequired: The session timed out just now (it has been ended).
    """
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        return None
    accounts, config = _services(request)
    try:
        session = await accounts.session(
            token,
            timeout=config.session_timeout,
            remote_ip=remote_ip(request),
            is_activity=is_activity,
        )
    except SessionExpired:
        raise SignInRequired(timed_out=True) from None
    return None if session is None else SignedIn(session=session)


async def require_role(
    request: Request, *roles: Role, allow_password_change: bool = False, is_activity: bool = True
) -> SignedIn:
    """The signed-in user, if their role is one of ``roles`` (default: any role).

    ``is_activity`` False: a background refresh, which does not keep the session alive.

    Raises:
        SignInRequired: Nobody is signed in (or the session timed out).
        PasswordChangeRequired: The user must first change the password
            (unless ``allow_password_change``: the page that does it).
        Forbidden: The role is not allowed here.
    """
    signed_in = await current_session(request, is_activity=is_activity)
    if signed_in is None:
        raise SignInRequired()
    if signed_in.user.must_change_password and not allow_password_change:
        raise PasswordChangeRequired("choose a new password first")
    if signed_in.user.role not in (roles or ANY_ROLE):
        raise Forbidden("your role does not allow this page")
    return signed_in


def _same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


async def read_form(request: Request) -> FormData:
    """The POSTed form (URL-encoded or multipart, no files, a few fields)."""
    return await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)


def _sent_token(request: Request, form: Mapping[str, object]) -> str:
    value = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
    return value if isinstance(value, str) else ""


def check_csrf(request: Request, form: Mapping[str, object], signed_in: SignedIn) -> None:
    """Check a signed-in POST carries the session's CSRF token.

    Raises:
        CsrfRejected: It does not.
    """
    if not _same(_sent_token(request, form), signed_in.csrf_token):
        raise CsrfRejected("the form's security token is missing or wrong")


def check_anonymous_csrf(request: Request, form: Mapping[str, object]) -> None:
    """Check a POST without a session echoes the ``cw_csrf`` cookie (double submit).

    Raises:
        CsrfRejected: The cookie or the field is missing, or they differ.
    """
    if not _same(_sent_token(request, form), request.cookies.get(CSRF_COOKIE, "")):
        raise CsrfRejected("the form's security token is missing or wrong")


def anonymous_csrf_token(request: Request) -> str:
    """The double-submit token for a form: the browser's cookie, or a new one."""
    token = request.cookies.get(CSRF_COOKIE, "")
    return token if 20 <= len(token) <= 128 else secrets.token_urlsafe(32)


def _set_cookie(response: Response, name: str, value: str) -> None:
    response.set_cookie(name, value, path="/", secure=True, httponly=True, samesite="strict")


def set_anonymous_csrf(response: Response, token: str) -> None:
    """Send the double-submit token as the ``cw_csrf`` cookie."""
    _set_cookie(response, CSRF_COOKIE, token)


def set_session_cookie(response: Response, token: str) -> None:
    """Send the session token (a browser-session cookie: gone when the browser closes)."""
    _set_cookie(response, SESSION_COOKIE, token)


def clear_session_cookie(response: Response) -> None:
    """Make the browser forget the session token."""
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
