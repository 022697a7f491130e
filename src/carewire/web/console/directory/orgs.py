"""Organisation pages: the directory's home, Organizations, Create Hospital, Update Organization.

After sign-in an organisation administrator's directory home is the Update
Organization page of their organisation; a system administrator picks one
from Organizations (and creates hospitals there). Update Organization holds
the Organization Details and Secure Message Options (Save), the
administrators, Members (N) ten a page, the organisations we can
communicate with, and the Sub groups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from carewire.directory.model import (
    MEMBERS_PAGE_SIZE,
    Caller,
    InvalidEmailError,
    NewHospital,
    OrganisationSettings,
    OrganisationUpdate,
    PageRequest,
)
from carewire.errors import ConflictError, ValidationError
from carewire.web.console.auth import ANY_ROLE, Forbidden, SignedIn, require_role
from carewire.web.console.directory import orgforms
from carewire.web.console.directory.common import (
    OrgPage,
    caller_of,
    can_write,
    directory,
    guarded,
    guarded_plain,
    is_system_admin,
    may_create_practice,
    org_page,
    page,
    page_number,
    problem_of,
    text,
)
from carewire.web.console.render import render

_NOTICES = {
    "saved": "The organization was saved.",
    "created": "The hospital was created. Its administrator has been sent an invitation.",
    "deleted": "The organization was removed from your list of affiliates.",
    "accepted": "The invitation was accepted: your organizations can now communicate.",
    "declined": "The invitation was declined.",
    "group-deleted": "The group was deleted.",
    "user-deleted": "The user was deleted.",
}


async def home(request: Request) -> Response:
    """GET /directory: the caller's organisation, or Organizations for a system administrator."""
    signed_in = await require_role(request, *ANY_ROLE)
    directory(request)
    org = signed_in.user.organisation_id
    return RedirectResponse("/orgs" if org is None else f"/orgs/{org}", 303)


async def users_home(request: Request) -> Response:
    """GET /directory/users: Find Users of the caller's organisation (or Organizations)."""
    signed_in = await require_role(request, *ANY_ROLE)
    directory(request)
    org = signed_in.user.organisation_id
    return RedirectResponse("/orgs" if org is None else f"/orgs/{org}/users", 303)


async def organisations(request: Request) -> Response:
    """GET /orgs: every organisation the caller may see (system administrators: all)."""
    signed_in = await require_role(request, *ANY_ROLE)
    caller = caller_of(request, signed_in)
    if caller.organisation_id is not None:
        return RedirectResponse(f"/orgs/{caller.organisation_id}", 303)
    found = await directory(request).organisations.list_visible(caller)
    return render(
        request,
        "dir_orgs.html",
        title="Organizations",
        signed_in=signed_in,
        orgs=found,
        can_create=is_system_admin(caller),
    )


def _show_new_hospital(
    request: Request,
    signed_in: SignedIn,
    values: Mapping[str, str],
    *,
    error: str = "",
    error_field: str = "",
) -> Response:
    return render(
        request,
        "dir_hospital_new.html",
        title="Create Hospital",
        signed_in=signed_in,
        status_code=400 if error else 200,
        values=values,
        error=error,
        error_field=error_field,
        choices=_choices(),
    )


def _choices() -> dict[str, object]:
    return {
        "zones": orgforms.time_zones(),
        "expirations": orgforms.EXPIRATIONS,
        "units": orgforms.RETENTION_UNITS,
        "sounds": orgforms.SOUNDS,
        "pins": orgforms.PIN_CHOICES,
    }


async def new_hospital(request: Request) -> Response:
    """GET /orgs/new: Create Hospital (system administrators)."""
    signed_in = await require_role(request, *ANY_ROLE)
    caller = caller_of(request, signed_in)
    directory(request)
    if not is_system_admin(caller):
        raise Forbidden("only a system administrator may create hospitals")
    values = orgforms.settings_values(OrganisationSettings())
    return _show_new_hospital(request, signed_in, values)


async def create_hospital(request: Request) -> Response:
    """POST /orgs/new: create the hospital and invite its first administrator."""
    signed_in, caller, form = await guarded_plain(request)
    if not is_system_admin(caller):
        raise Forbidden("only a system administrator may create hospitals")
    values = orgforms.sent_values(form, orgforms.ORG_FIELDS + orgforms.ADMIN_FIELDS)
    try:
        new = NewHospital(
            name=text(form, "name"),
            office_number=text(form, "office_number"),
            settings=orgforms.settings_of(form),
            admin=orgforms.admin_of(form),
        )
        org = await directory(request).organisations.create_hospital(caller, new)
    except InvalidEmailError as exc:
        message = f"Email Address: {exc.address!r} is not a valid e-mail address."
        return _show_new_hospital(
            request, signed_in, values, error=message, error_field="admin_email"
        )
    except (ValidationError, ConflictError) as exc:
        message, field = problem_of(exc)
        return _show_new_hospital(request, signed_in, values, error=message, error_field=field)
    return RedirectResponse(f"/orgs/{org.id}?m=created", 303)


async def show_org(
    request: Request,
    where: OrgPage,
    *,
    values: Mapping[str, str] | None = None,
    notice: str = "",
    details: Sequence[str] = (),
    error: str = "",
    error_field: str = "",
    status_code: int = 200,
) -> Response:
    """Render Update Organization (with a refused form's values, or a notice)."""
    svc = directory(request)
    params = request.query_params
    number = page_number(params, "members_page")
    members = await svc.organisations.members(
        where.caller,
        where.org.id,
        PageRequest(offset=(number - 1) * MEMBERS_PAGE_SIZE, limit=MEMBERS_PAGE_SIZE),
    )
    pages = max(1, -(-members.total // MEMBERS_PAGE_SIZE))
    search = params.get("group_search", "").strip()[:64]
    return page(
        request,
        where,
        "dir_org.html",
        title=f"Update Organization · {where.org.name}",
        status_code=status_code,
        values=values or orgforms.org_values(where.org),
        choices=_choices(),
        admins=await svc.organisations.admins(where.caller, where.org.id),
        members=members,
        members_page=number,
        members_pages=pages,
        affiliations=await svc.affiliations.list_for(where.caller, where.org.id),
        groups=await svc.groups.list_for(where.caller, where.org.id, name_contains=search),
        group_search=search,
        show_group_id=is_system_admin(where.caller),
        can_create_practice=may_create_practice(where.caller, where.org) and where.can_write,
        notice=notice or _NOTICES.get(params.get("m", ""), ""),
        details=details,
        error=error,
        error_field=error_field,
    )


async def update_page(request: Request) -> Response:
    """GET /orgs/{org}: Update Organization."""
    return await show_org(request, await org_page(request))


async def save_org(request: Request) -> Response:
    """POST /orgs/{org}: save Organization Details and Secure Message Options."""
    where, form = await guarded(request)
    values = orgforms.sent_values(form, orgforms.ORG_FIELDS)
    try:
        update = OrganisationUpdate(
            name=text(form, "name"),
            office_number=text(form, "office_number"),
            settings=orgforms.settings_of(form),
        )
        await directory(request).organisations.update(where.caller, where.org.id, update)
    except (ValidationError, ConflictError) as exc:
        message, field = problem_of(exc)
        return await show_org(
            request, where, values=values, error=message, error_field=field, status_code=400
        )
    return RedirectResponse(f"{where.base}?m=saved", 303)


async def communities(request: Request) -> Response:
    """GET /communities: every hospital's community (read-only, but for adding members)."""
    signed_in = await require_role(request, *ANY_ROLE)
    caller = caller_of(request, signed_in)
    return await _show_communities(request, signed_in, caller)


async def _show_communities(
    request: Request,
    signed_in: SignedIn,
    caller: Caller,
    *,
    error: str = "",
    notice: str = "",
) -> Response:
    svc = directory(request)
    found = await svc.affiliations.communities(caller)
    can_add = is_system_admin(caller) and can_write(signed_in)
    everyone = await svc.organisations.list_visible(caller) if can_add else []
    return render(
        request,
        "dir_communities.html",
        title="Communities",
        signed_in=signed_in,
        status_code=400 if error else 200,
        communities=found,
        orgs=everyone,
        can_add=can_add,
        error=error,
        notice=notice
        or (
            "The organization joined the community."
            if request.query_params.get("m") == "added"
            else ""
        ),
    )


async def add_community_member(request: Request) -> Response:
    """POST /communities/{hospital}/members: a system administrator adds an organisation."""
    signed_in, caller, form = await guarded_plain(request)
    hospital = request.path_params["hospital"]
    member = text(form, "organisation")
    try:
        if not member.isdigit():
            raise ValidationError("Choose an organization to add.")
        await directory(request).affiliations.add_community_member(caller, hospital, int(member))
    except (ValidationError, ConflictError) as exc:
        return await _show_communities(request, signed_in, caller, error=exc.message)
    return RedirectResponse("/communities?m=added", 303)
