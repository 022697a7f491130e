"""Create Practice: a hospital's administrator (or a system administrator) creates a practice.

The practice is affiliated with the hospital at once; its administrator and
the initial standard users (typed addresses and/or a CSV file) are invited by
e-mail. On success the hospital's Update Organization page says "Practice
<name> was created." with what the invitations did.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from carewire.directory.model import PRACTICE_CREATED, CsvError, InvalidEmailError, NewPractice
from carewire.errors import ConflictError, ValidationError
from carewire.web.console.auth import Forbidden
from carewire.web.console.directory import orgforms
from carewire.web.console.directory.common import (
    OrgPage,
    crumb,
    directory,
    guarded,
    may_create_practice,
    org_page,
    page,
    problem_of,
    text,
    upload_text,
)
from carewire.web.console.directory.invites import result_lines
from carewire.web.console.directory.orgs import show_org

_FIELDS = ("name", "office_number", "emails", *orgforms.ADMIN_FIELDS)


def _check_may(where: OrgPage) -> None:
    if not may_create_practice(where.caller, where.org):
        raise Forbidden("a practice may not create practices")


def _show(
    request: Request,
    where: OrgPage,
    values: Mapping[str, str],
    *,
    error: str = "",
    error_field: str = "",
) -> Response:
    return page(
        request,
        where,
        "dir_practice_new.html",
        title="Create Practice",
        status_code=400 if error else 200,
        crumbs=crumb(where.caller, where.org, "Create Practice"),
        values=values,
        error=error,
        error_field=error_field,
    )


async def new_practice(request: Request) -> Response:
    """GET /orgs/{org}/practices/new: the Create Practice form."""
    where = await org_page(request, write=True)
    _check_may(where)
    return _show(request, where, {})


async def create_practice(request: Request) -> Response:
    """POST /orgs/{org}/practices/new: create it, invite its administrator and users."""
    where, form = await guarded(request, max_files=1)
    _check_may(where)
    values = {n: text(form, n) for n in _FIELDS}
    try:
        admin = orgforms.admin_of(form)
        new = NewPractice(
            hospital_id=where.org.id,
            name=values["name"],
            office_number=values["office_number"],
            admin=admin,
            emails=values["emails"],
            csv_text=upload_text(request, "csv"),
        )
        created = await directory(request).organisations.create_practice(where.caller, new)
    except InvalidEmailError as exc:
        if exc.address.lower() == values["admin_email"].strip().lower():
            message = f"Email Address: {exc.address!r} is not a valid e-mail address."
            return _show(request, where, values, error=message, error_field="admin_email")
        return _show(request, where, values, error=exc.message, error_field="emails")
    except (ValidationError, ConflictError, CsvError) as exc:
        message, field = problem_of(exc)
        return _show(request, where, values, error=message, error_field=field)
    notice = PRACTICE_CREATED.format(name=created.practice.name)
    details = [
        f"{created.admin_invitation.email} was invited to administer {created.practice.name}.",
        *result_lines(created.users),
    ]
    return await show_org(request, where, notice=notice, details=details)
