"""Affiliation pages: Invite Organization, Association Permissions, Delete, the Invitation page.

Invite Organization finds organisations by name as one types (the script
asks ``organisation-search``; without it the Search button does the same),
then mails every administrator of the chosen one. The mailed link opens the
Invitation page (after sign-in): "All your users", or "Only some of your
users" with an existing or new group; or Decline.
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from carewire.directory.model import (
    AFFILIATION_INVITED,
    PERMISSIONS_UPDATED,
    AcceptChoice,
    AffiliationStatus,
    AffiliationView,
    Caller,
    GroupId,
    LinkGoneError,
    OrganisationId,
    Permission,
    PermissionMode,
)
from carewire.errors import ConflictError, NotFoundError, ValidationError
from carewire.web.console.auth import ANY_ROLE, SignedIn, current_session, require_role
from carewire.web.console.directory.common import (
    OrgPage,
    caller_of,
    crumb,
    directory,
    guarded,
    guarded_plain,
    ids,
    next_path,
    org_page,
    page,
    text,
)
from carewire.web.console.render import render

INVITE_INTRO = (
    "Enter the name of the organization to invite. The organization must already be signed up "
    "for Carewire. Matches will appear below as you type. Click on the one you want to invite, "
    "then click the Invite button."
)
REPLACED_NOTE = (
    "If there is already a pending invitation for the same organization, it will be replaced."
)


def _other_id(request: Request) -> int:
    value = request.path_params["other"]
    assert isinstance(value, int)
    return value


async def _active_view(request: Request, where: OrgPage) -> AffiliationView:
    """The active affiliation with the path's other organisation (else 404)."""
    other = _other_id(request)
    for view in await directory(request).affiliations.list_for(where.caller, where.org.id):
        if view.other.id == other and view.affiliation.status is AffiliationStatus.ACTIVE:
            return view
    raise NotFoundError(f"no active affiliation with {other}")


# -- Invite Organization -----------------------------------------------------------------------


async def _show_invite(
    request: Request, where: OrgPage, *, error: str = "", sent: str = "", status_code: int = 200
) -> Response:
    q = request.query_params.get("q", "").strip()[:100]
    matches = await directory(request).organisations.search(where.caller, q) if q else []
    return page(
        request,
        where,
        "dir_invite_org.html",
        title="Invite Organization",
        status_code=status_code,
        crumbs=crumb(where.caller, where.org, "Invite Organization"),
        intro=INVITE_INTRO,
        replaced_note=REPLACED_NOTE,
        q=q,
        matches=matches,
        error=error,
        sent=sent,
    )


async def invite_page(request: Request) -> Response:
    """GET /orgs/{org}/invite-organization: the search and Invite button (or the success text)."""
    where = await org_page(request, write=True)
    sent = ""
    invited = request.query_params.get("sent", "")
    if invited.isdigit() and len(invited) < 12:
        ref = await directory(request).organisations.ref(OrganisationId(int(invited)))
        sent = AFFILIATION_INVITED.format(org=ref.name)
    return await _show_invite(request, where, sent=sent)


async def search(request: Request) -> Response:
    """GET /orgs/{org}/organization-search?q=: names for the type-ahead (JSON)."""
    where = await org_page(request, write=True)
    q = request.query_params.get("q", "").strip()[:100]
    found = await directory(request).organisations.search(where.caller, q) if q else []
    return JSONResponse(
        {"organizations": [{"id": o.id, "name": o.name, "kind": o.kind.value} for o in found]}
    )


async def invite(request: Request) -> Response:
    """POST /orgs/{org}/invite-organization: invite the chosen organisation."""
    where, form = await guarded(request)
    chosen = text(form, "invitee")
    try:
        if not chosen.isdigit():
            raise ValidationError("Choose the organization to invite from the matches.")
        await directory(request).affiliations.invite(where.caller, where.org.id, int(chosen))
    except (ValidationError, ConflictError) as exc:
        return await _show_invite(request, where, error=exc.message, status_code=400)
    return RedirectResponse(f"{where.base}/invite-organization?sent={chosen}", 303)


# -- Association Permissions -------------------------------------------------------------------


async def _show_permissions(
    request: Request,
    where: OrgPage,
    view: AffiliationView,
    *,
    notice: str = "",
    error: str = "",
) -> Response:
    groups = await directory(request).groups.list_for(where.caller, where.org.id)
    return page(
        request,
        where,
        "dir_permissions.html",
        title=f"Association Permissions · {view.other.name}",
        status_code=400 if error else 200,
        crumbs=crumb(where.caller, where.org, "Association Permissions"),
        view=view,
        groups=groups,
        notice=notice,
        error=error,
    )


async def permissions_page(request: Request) -> Response:
    """GET /orgs/{org}/affiliations/{other}/permissions: who of ours may talk to them."""
    where = await org_page(request)
    view = await _active_view(request, where)
    notice = PERMISSIONS_UPDATED if request.query_params.get("m") == "saved" else ""
    return await _show_permissions(request, where, view, notice=notice)


async def save_permissions(request: Request) -> Response:
    """POST /orgs/{org}/affiliations/{other}/permissions: save (None, everyone, or groups)."""
    where, form = await guarded(request)
    view = await _active_view(request, where)
    mode = text(form, "mode")
    try:
        if mode not in {m.value for m in PermissionMode}:
            raise ValidationError("Choose None, your organization, or groups.")
        chosen = frozenset(GroupId(i) for i in ids(form, "group"))
        permission = Permission(
            mode=PermissionMode(mode),
            groups=chosen if mode == PermissionMode.GROUPS else frozenset(),
        )
        await directory(request).affiliations.set_permission(
            where.caller, where.org.id, view.other.id, permission
        )
    except ValidationError as exc:
        return await _show_permissions(request, where, view, error=exc.message)
    return RedirectResponse(f"{where.base}/affiliations/{view.other.id}/permissions?m=saved", 303)


# -- Delete (end communication permanently) ----------------------------------------------------


async def _any_view(request: Request, where: OrgPage) -> AffiliationView:
    other = _other_id(request)
    for view in await directory(request).affiliations.list_for(where.caller, where.org.id):
        if view.other.id == other:
            return view
    raise NotFoundError(f"no affiliation with {other}")


async def confirm_delete(request: Request) -> Response:
    """GET /orgs/{org}/affiliations/{other}/delete: the Delete Permission dialog."""
    where = await org_page(request, write=True)
    view = await _any_view(request, where)
    return page(
        request,
        where,
        "dir_affiliation_delete.html",
        title="Delete Permission",
        view=view,
    )


async def delete(request: Request) -> Response:
    """POST /orgs/{org}/affiliations/{other}/delete: end it on both sides."""
    where, _form = await guarded(request)
    view = await _any_view(request, where)
    await directory(request).affiliations.delete(where.caller, where.org.id, view.other.id)
    return RedirectResponse(f"{where.base}?m=deleted#affiliations", 303)


# -- the Invitation page (the mailed link) -----------------------------------------------------


def _link_gone(request: Request, signed_in: SignedIn) -> Response:
    return render(
        request,
        "error.html",
        title="Invitation not valid",
        signed_in=signed_in,
        status_code=410,
        heading="This invitation link is not valid any more",
        text=(
            "It has expired, was replaced by a newer invitation, or was already answered. "
            "Ask the organization that invited you to send a new invitation."
        ),
    )


async def invitation_page(request: Request) -> Response:
    """GET /associations/{id}/invite?token=: sign in first, then Accept or Decline."""
    signed_in = await current_session(request)
    if signed_in is None:
        target = request.url.path + ("?" + request.url.query if request.url.query else "")
        return RedirectResponse(f"/signin?next={next_path(target)}", 303)
    await require_role(request, *ANY_ROLE)
    caller = caller_of(request, signed_in)
    token = request.query_params.get("token", "")[:128]
    try:
        link = await directory(request).affiliations.link(
            caller, request.path_params["affiliation"], token
        )
    except LinkGoneError:
        return _link_gone(request, signed_in)
    return render(
        request,
        "dir_affiliation_invite.html",
        title="Invitation",
        signed_in=signed_in,
        link=link,
        token=token,
        action=request.url.path,
        error="",
        can_write=caller.can_write,
    )


async def answer_invitation(request: Request) -> Response:
    """POST /associations/{id}/invite: Accept (all users, or a group) or Decline."""
    signed_in, caller, form = await guarded_plain(request)
    affiliation = request.path_params["affiliation"]
    token = text(form, "token")[:128]
    svc = directory(request).affiliations
    try:
        if text(form, "decision") == "decline":
            declined = await svc.decline(caller, affiliation, token)
            return RedirectResponse(f"/orgs/{declined.invitee_id}?m=declined", 303)
        choice = await _choice(request, caller, form, affiliation, token)
        accepted, group = await svc.accept(caller, affiliation, token, choice)
    except LinkGoneError:
        return _link_gone(request, signed_in)
    except (ValidationError, ConflictError) as exc:
        link = await svc.link(caller, affiliation, token)
        return render(
            request,
            "dir_affiliation_invite.html",
            title="Invitation",
            signed_in=signed_in,
            status_code=400,
            link=link,
            token=token,
            action=request.url.path,
            error=exc.message,
            can_write=True,
        )
    if group is None:
        return RedirectResponse(f"/orgs/{accepted.invitee_id}?m=accepted#affiliations", 303)
    return RedirectResponse(f"/orgs/{accepted.invitee_id}/groups/{group.id}?m=accepted", 303)


async def _choice(
    request: Request, caller: Caller, form: FormData, affiliation: int, token: str
) -> AcceptChoice:
    if text(form, "users") != "some":
        return AcceptChoice()
    name = text(form, "subgroup").strip()
    if not name:
        raise ValidationError("Choose a group or type a new group name for some of your users.")
    link = await directory(request).affiliations.link(caller, affiliation, token)
    for group in link.groups:
        if group.name.lower() == name.lower():
            return AcceptChoice(group_id=group.id)
    return AcceptChoice(new_group_name=name)
