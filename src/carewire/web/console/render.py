"""Console pages: Jinja2 rendering, security headers and friendly error pages.

Templates are autoescaped. Every response carries the security headers
below; pages (not static files) also ``Cache-Control: no-store``, so a
shared computer's browser keeps no copy of what an administrator saw. Error
pages never show internals: a 500 says something went wrong, the traceback
goes to the log.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import jinja2
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carewire.errors import ForbiddenError, GoneError, NotFoundError
from carewire.security.console_auth import ConsoleUser, Role
from carewire.web.console.auth import (
    CsrfRejected,
    Forbidden,
    PasswordChangeRequired,
    SignedIn,
    SignInRequired,
    clear_session_cookie,
    current_session,
)

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Strict-Transport-Security", "max-age=31536000"),
    ("X-Frame-Options", "DENY"),
)

#: The console's sections: (label, path). Their pages come later; today they answer 404.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("Adapters", "/adapters"),
    ("XMPP settings", "/xmpp"),
    ("Certificates", "/certificates"),
    ("Federation", "/federation"),
    ("Datasets", "/datasets"),
    ("Rules", "/rules"),
    ("Assignments", "/assignments"),
    ("Deliveries", "/deliveries"),
    ("Audit", "/audit"),
)

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

ROLE_NAMES = {
    Role.SYSTEM_ADMIN: "System administrator",
    Role.ORG_ADMIN: "Organisation administrator",
    Role.AUDITOR: "Auditor (read-only)",
}


def describe_duration(value: timedelta) -> str:
    """``20 minutes``, ``3 seconds``, ``1 hour``: for messages people read."""
    seconds = int(value.total_seconds())
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


def render(
    request: Request,
    template: str,
    *,
    title: str,
    signed_in: SignedIn | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` in the console layout (header, nav when signed in, main)."""
    user: ConsoleUser | None = signed_in.user if signed_in else None
    timeout = request.app.state.services.config.session_timeout
    values: dict[str, Any] = {
        "title": title,
        "user": user,
        "role_name": ROLE_NAMES[user.role] if user else "",
        "csrf_token": signed_in.csrf_token if signed_in else "",
        "timeout_seconds": int(timeout.total_seconds()),
        "timeout_text": describe_duration(timeout),
        "sections": SECTIONS,
        "link": None,
        "org_label": "",
    }
    values.update(context)
    html = _ENV.get_template(template).render(values)
    return HTMLResponse(html, status_code=status_code)


def error_page(
    request: Request,
    status_code: int,
    title: str,
    text: str,
    *,
    signed_in: SignedIn | None = None,
) -> HTMLResponse:
    """A friendly error page, in the signed-in layout when ``signed_in`` is given."""
    response = render(
        request,
        "error.html",
        title=title,
        signed_in=signed_in,
        status_code=status_code,
        heading=title,
        text=text,
    )
    for name, value in SECURITY_HEADERS:
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response


_HTTP_ERRORS = {
    404: ("Page not found", "There is no page at this address (yet). Go back to the dashboard."),
    405: ("Not allowed", "This page cannot be used that way."),
}


async def _signed_in_or_none(request: Request) -> SignedIn | None:
    try:
        return await current_session(request)
    except SignInRequired:
        return None


async def on_http_error(request: Request, exc: Exception) -> Response:
    """404, 405 and other HTTP errors."""
    assert isinstance(exc, HTTPException)
    title, text = _HTTP_ERRORS.get(
        exc.status_code, ("Request not accepted", "The request could not be handled.")
    )
    signed_in = await _signed_in_or_none(request)
    return error_page(request, exc.status_code, title, text, signed_in=signed_in)


async def on_server_error(request: Request, exc: Exception) -> Response:
    """Any unexpected error: a 500 page without internals (the log has the traceback)."""
    log.error("console error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_page(
        request,
        500,
        "Something went wrong",
        "The console could not complete this request. Try again; if it keeps happening, "
        "tell your Carewire administrator the time it happened.",
    )


async def on_sign_in_required(request: Request, exc: Exception) -> Response:
    """Anonymous or timed out: to the sign-in page (saying why, for a timeout)."""
    assert isinstance(exc, SignInRequired)
    response = RedirectResponse("/signin?m=inactive" if exc.timed_out else "/signin", 303)
    clear_session_cookie(response)
    return response


async def on_password_change_required(_request: Request, _exc: Exception) -> Response:
    """A pending forced change: to the password page."""
    return RedirectResponse("/account/password", 303)


async def on_forbidden(request: Request, _exc: Exception) -> Response:
    """The role may not see this page."""
    return error_page(
        request,
        403,
        "Not allowed for your role",
        "Your role does not allow this page. Ask a system administrator if you need it.",
        signed_in=await _signed_in_or_none(request),
    )


async def on_not_found(request: Request, _exc: Exception) -> Response:
    """A service said "not found": the same 404 page as an unknown address.

    Another organisation's things are "not found" for an organisation
    administrator, so this page never says whether they exist.
    """
    title, text = _HTTP_ERRORS[404]
    return error_page(request, 404, title, text, signed_in=await _signed_in_or_none(request))


async def on_service_forbidden(request: Request, exc: Exception) -> Response:
    """A service refused the act for the caller's role (auditors, system-administrator acts)."""
    return await on_forbidden(request, exc)


async def on_gone(request: Request, _exc: Exception) -> Response:
    """A mailed link (invitation, reset) that is unknown, used, replaced or expired."""
    return error_page(
        request,
        410,
        "This link is not valid any more",
        "Links sent by e-mail work once and only for a limited time. Ask for a new one.",
        signed_in=await _signed_in_or_none(request),
    )


async def on_csrf(request: Request, _exc: Exception) -> Response:
    """A POST without the right CSRF token."""
    return error_page(
        request,
        403,
        "This form has expired",
        "The form was not sent from this console page, or it is too old. "
        "Go back, reload the page and try again.",
    )


EXCEPTION_HANDLERS = {
    HTTPException: on_http_error,
    SignInRequired: on_sign_in_required,
    PasswordChangeRequired: on_password_change_required,
    Forbidden: on_forbidden,
    CsrfRejected: on_csrf,
    NotFoundError: on_not_found,
    ForbiddenError: on_service_forbidden,
    GoneError: on_gone,
    500: on_server_error,
}


class SecurityHeaders:
    """ASGI middleware: the security headers on every response, no-store on pages."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = [*SECURITY_HEADERS]
                if not is_static:
                    extra.append(("Cache-Control", "no-store"))
                for name, value in extra:
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
