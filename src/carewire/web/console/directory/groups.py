"""Group pages: Create Group, Update Group (members, Remove Selected, Add...), Delete, CSV import.

Save on Create Group opens the new group's Update Group page. "Members can
send messages to whole group" stays disabled until the group has members
(the seed). Add... opens "Select user(s) to add to group", which adds the
chosen users at once. Deleting a group asks first: affiliations that used
it as permission then allow no one until changed.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from carewire.directory.model import (
    ADD_MEMBERS_HINT,
    MAX_PAGE_SIZE,
    CsvError,
    DirectoryUser,
    Group,
    PageRequest,
    UnknownGroupError,
    UserFilter,
)
from carewire.errors import ConflictError, ValidationError
from carewire.web.console.directory.common import (
    OrgPage,
    crumb,
    directory,
    guarded,
    logins,
    org_page,
    page,
    problem_of,
    text,
    upload_text,
)
from carewire.web.console.directory.orgforms import yes

DELETE_TEXT = (
    "Delete group {name}? Affiliations that use it for permissions will allow no one until changed."
)
_NOTICES = {
    "created": "The group was created.",
    "saved": "The group was saved.",
    "added": "The users were added to the group.",
    "removed": (
        "The selected members were removed from the group (they remain in your organization)."
    ),
    "accepted": ADD_MEMBERS_HINT,
}


async def group_of(request: Request, where: OrgPage) -> Group:
    """The path's group, if of the path's organisation (else "not found")."""
    group = await directory(request).groups.get(where.caller, request.path_params["group"])
    if group.organisation_id != where.org.id:
        raise UnknownGroupError(f"no group {group.id} in this organisation")
    return group


# -- Create Group ------------------------------------------------------------------------------


def _show_new(
    request: Request, where: OrgPage, *, name: str = "", wgm: bool = False, error: str = ""
) -> Response:
    return page(
        request,
        where,
        "dir_group_new.html",
        title="Create Group",
        status_code=400 if error else 200,
        crumbs=crumb(where.caller, where.org, "Create Group"),
        name=name,
        wgm=wgm,
        error=error,
        error_field="name" if error else "",
    )


async def new_group(request: Request) -> Response:
    """GET /orgs/{org}/groups/new: the Create Group form."""
    where = await org_page(request, write=True)
    return _show_new(request, where)


async def create_group(request: Request) -> Response:
    """POST /orgs/{org}/groups/new: create it and open its Update Group page."""
    where, form = await guarded(request)
    name, wgm = text(form, "name"), yes(form, "whole_group_messaging")
    try:
        group = await directory(request).groups.create(
            where.caller, where.org.id, name, whole_group_messaging=wgm
        )
    except (ValidationError, ConflictError) as exc:
        return _show_new(request, where, name=name, wgm=wgm, error=exc.message)
    return RedirectResponse(f"{where.base}/groups/{group.id}?m=created", 303)


# -- Update Group ------------------------------------------------------------------------------


async def _show_group(
    request: Request,
    where: OrgPage,
    group: Group,
    *,
    name: str | None = None,
    error: str = "",
    error_field: str = "",
) -> Response:
    svc = directory(request)
    members = await svc.groups.members(where.caller, group.id)
    return page(
        request,
        where,
        "dir_group.html",
        title=f"Update Group · {group.name}",
        status_code=400 if error else 200,
        crumbs=crumb(where.caller, where.org, group.name),
        group=group,
        address=f"{group.slug}@groups.{svc.config.domain}",
        name=group.name if name is None else name,
        members=members,
        notice=_NOTICES.get(request.query_params.get("m", ""), ""),
        error=error,
        error_field=error_field,
    )


async def group_page(request: Request) -> Response:
    """GET /orgs/{org}/groups/{group}: Update Group."""
    where = await org_page(request)
    return await _show_group(request, where, await group_of(request, where))


async def save_group(request: Request) -> Response:
    """POST /orgs/{org}/groups/{group}: rename, or change whole-group messaging."""
    where, form = await guarded(request)
    group = await group_of(request, where)
    name = text(form, "name")
    wgm = yes(form, "whole_group_messaging") if group.member_count else None
    try:
        await directory(request).groups.update(
            where.caller, group.id, name=name, whole_group_messaging=wgm
        )
    except (ValidationError, ConflictError) as exc:
        message, field = problem_of(exc)
        return await _show_group(
            request, where, group, name=name, error=message, error_field=field or "name"
        )
    return RedirectResponse(f"{where.base}/groups/{group.id}?m=saved", 303)


async def remove_selected(request: Request) -> Response:
    """POST /orgs/{org}/groups/{group}/remove: Remove Selected (they stay in the organisation)."""
    where, form = await guarded(request)
    group = await group_of(request, where)
    chosen = logins(form, "login")
    if not chosen:
        return await _show_group(request, where, group, error="Select the members to remove.")
    await directory(request).groups.remove_members(where.caller, group.id, chosen)
    return RedirectResponse(f"{where.base}/groups/{group.id}?m=removed", 303)


# -- Select user(s) to add to group ------------------------------------------------------------


async def _candidates(request: Request, where: OrgPage, q: str) -> list[DirectoryUser]:
    """Users of the organisation whose first or last name contains ``q`` (all when empty)."""
    svc = directory(request).users
    wanted = PageRequest(offset=0, limit=MAX_PAGE_SIZE)
    searches = [UserFilter(last_name=q), UserFilter(first_name=q)] if q else [UserFilter()]
    found: dict[str, DirectoryUser] = {}
    for search in searches:
        for user in (await svc.find(where.caller, where.org.id, search, page=wanted)).items:
            found[user.login] = user
    return sorted(found.values(), key=lambda u: (u.profile.sort_name.lower(), u.login))


async def add_page(request: Request) -> Response:
    """GET /orgs/{org}/groups/{group}/add: "Select user(s) to add to group"."""
    where = await org_page(request, write=True)
    group = await group_of(request, where)
    q = request.query_params.get("q", "").strip()[:64]
    current = {u.login for u in await directory(request).groups.members(where.caller, group.id)}
    candidates = [u for u in await _candidates(request, where, q) if u.login not in current]
    return page(
        request,
        where,
        "dir_group_add.html",
        title=f"Select user(s) to add to group: {group.name}",
        crumbs=crumb(where.caller, where.org, group.name, "Add Members"),
        group=group,
        q=q,
        candidates=candidates,
        limit=MAX_PAGE_SIZE,
    )


async def add_members(request: Request) -> Response:
    """POST /orgs/{org}/groups/{group}/add: add the chosen users at once."""
    where, form = await guarded(request)
    group = await group_of(request, where)
    chosen = logins(form, "login")
    if chosen:
        await directory(request).groups.add_members(where.caller, group.id, chosen)
    return RedirectResponse(f"{where.base}/groups/{group.id}?m={'added' if chosen else ''}", 303)


# -- Delete Group ------------------------------------------------------------------------------


async def confirm_delete(request: Request) -> Response:
    """GET /orgs/{org}/groups/{group}/delete: ask before deleting."""
    where = await org_page(request, write=True)
    group = await group_of(request, where)
    return page(
        request,
        where,
        "dir_confirm.html",
        title="Delete Group",
        crumbs=crumb(where.caller, where.org, group.name, "Delete"),
        heading="Delete Group",
        question=DELETE_TEXT.format(name=group.name),
        action=f"{where.base}/groups/{group.id}/delete",
        cancel=f"{where.base}/groups/{group.id}",
        button="Delete",
        fields={},
    )


async def delete_group(request: Request) -> Response:
    """POST /orgs/{org}/groups/{group}/delete: delete it."""
    where, _form = await guarded(request)
    group = await group_of(request, where)
    await directory(request).groups.delete(where.caller, group.id)
    return RedirectResponse(f"{where.base}?m=group-deleted#groups", 303)


# -- CSV import --------------------------------------------------------------------------------


def _show_import(
    request: Request,
    where: OrgPage,
    *,
    notice: str = "",
    details: list[str] | None = None,
    error: str = "",
) -> Response:
    return page(
        request,
        where,
        "dir_group_import.html",
        title="Import Groups",
        status_code=400 if error else 200,
        crumbs=crumb(where.caller, where.org, "Import Groups"),
        notice=notice,
        details=details or [],
        error=error,
    )


async def import_page(request: Request) -> Response:
    """GET /orgs/{org}/groups/import: the CSV upload form."""
    where = await org_page(request, write=True)
    return _show_import(request, where)


async def import_groups(request: Request) -> Response:
    """POST /orgs/{org}/groups/import: create groups (Department) and memberships (Email)."""
    where, _form = await guarded(request, max_files=1)
    try:
        csv_text = upload_text(request, "csv")
        if csv_text is None:
            raise ValidationError("Choose a CSV file with a Department column.")
        result = await directory(request).groups.import_csv(where.caller, where.org.id, csv_text)
    except (ValidationError, CsvError) as exc:
        return _show_import(request, where, error=exc.message)
    details = [
        f"Groups created: {', '.join(result.created) or 'none'}.",
        f"Groups already there: {', '.join(result.existing) or 'none'}.",
        f"Members added: {result.members_added}.",
        *(f"Line {p.line}: {p.message}" for p in result.problems),
    ]
    return _show_import(request, where, notice="The groups were imported.", details=details)
