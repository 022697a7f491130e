"""Errors as problem details (RFC 9457): the web edge's translation of :class:`CarewireError`.

Every error response of the API is ``application/problem+json`` with the
members ``type`` (``urn:carewire:problem:<code>``), ``title``, ``status``,
``detail`` and the extension member ``code``; validation problems (invalid
definitions, rules and settings) add ``errors`` (one line each) and, when one
field is at fault, ``field``. A used, withdrawn or expired mailed link is a
410; a mail server that refused a message the request needed, a 502. Errors
that are our own bugs become a 500 whose body says nothing about the internals.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from carewire.datasets.definitions import DefinitionError
from carewire.datasets.values import RecordError
from carewire.directory.model import InvalidFieldError, InvalidTransitionError
from carewire.errors import (
    CarewireError,
    ConflictError,
    GoneError,
    NotFoundError,
    UnavailableError,
    ValidationError,
)
from carewire.mail import MailError
from carewire.rules.service import RuleError
from carewire.rules.settings import SettingsError
from carewire.security.throttle import ThrottledError
from carewire.security.tokens import AuthError, ForbiddenError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:carewire:problem:"

#: Error classes to statuses, most specific first.
_STATUSES: tuple[tuple[type[CarewireError], int], ...] = (
    (AuthError, 401),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (InvalidTransitionError, 409),
    (GoneError, 410),
    (ValidationError, 422),
    (ThrottledError, 429),
    (MailError, 502),
    (UnavailableError, 503),
)
_HTTP_CODES = {404: "not-found", 405: "method-not-allowed"}


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    extra: dict[str, object] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response.

    Args:
        status: The HTTP status.
        code: The machine-readable code (also the last part of ``type``).
        detail: What went wrong, for people.
        extra: Extension members (``errors``, ``field``).
        headers: Response headers (``WWW-Authenticate``).
    """
    body: dict[str, object] = {
        "type": TYPE_PREFIX + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        **(extra or {}),
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def status_of(exc: CarewireError) -> int:
    """The HTTP status for a domain error (500 for anything not listed)."""
    for cls, status in _STATUSES:
        if isinstance(exc, cls):
            return status
    return 500


async def carewire_error(request: Request, exc: Exception) -> JSONResponse:
    """Translate a :class:`CarewireError` raised by a handler or dependency."""
    assert isinstance(exc, CarewireError)
    status = status_of(exc)
    if status == 500:
        # The message may quote record values: log the kind of error, not its text.
        log.error(
            "unmapped %s (%s) on %s %s",
            type(exc).__name__,
            exc.code,
            request.method,
            request.url.path,
        )
        return problem(500, "internal-error", "the server could not complete the request")
    extra: dict[str, object] = {}
    if isinstance(exc, DefinitionError | RuleError | SettingsError):
        extra["errors"] = list(exc.problems)
    if isinstance(exc, RecordError | InvalidFieldError) and exc.field is not None:
        extra["field"] = exc.field
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 429:
        headers = {"Retry-After": "60"}
    return problem(status, exc.code, exc.message or str(exc), extra=extra, headers=headers)


async def request_invalid(_request: Request, exc: Exception) -> JSONResponse:
    """Translate FastAPI's request validation (bad JSON, wrong parameter types)."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}"
        for err in exc.errors()
    ]
    detail = "; ".join(errors) or "the request is not valid"
    return problem(422, "invalid-request", detail, extra={"errors": errors})


async def http_error(_request: Request, exc: Exception) -> JSONResponse:
    """Translate routing errors (unknown path, method not allowed)."""
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http-error")
    return problem(exc.status_code, code, str(exc.detail), headers=exc.headers)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug: a 500 problem without internals (the server logs the traceback)."""
    log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return problem(500, "internal-error", "the server could not complete the request")


def install(app: FastAPI) -> None:
    """Register the translations on ``app``."""
    app.add_exception_handler(CarewireError, carewire_error)
    app.add_exception_handler(RequestValidationError, request_invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
