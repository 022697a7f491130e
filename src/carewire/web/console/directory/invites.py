"""Invite Users and the Invitations page (filters, Resend and Delete of the selected rows).

Invite Users takes a CSV upload, a typed list of addresses, or both (merged).
One malformed typed address refuses the whole request ("Invalid email
address: <addr>. No invitations were sent."); bad CSV rows are listed by line
while the good ones go in. The Invitations page filters by Email Address,
Last Name and First Name (the script filters as one types; without it the
Filter button does) and by Status; Resend and Delete ask for confirmation
with the seed's texts.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from carewire.directory.model import (
    INVITATIONS_PAGE_SIZE,
    INVITATIONS_SENT,
    SAMPLE_CSV,
    CsvError,
    InvitationFilter,
    InvitationStatus,
    InviteRequest,
    InviteResult,
    PageRequest,
)
from carewire.errors import ValidationError
from carewire.web.console.auth import ANY_ROLE, require_role
from carewire.web.console.directory.common import (
    OrgPage,
    crumb,
    directory,
    guarded,
    ids,
    org_page,
    page,
    page_number,
    problem_of,
    query,
    text,
    upload_text,
    when,
)

INTRO = (
    "This page lets you invite users into your Carewire organization.",
    "Use the CSV option to pre-populate fields such as name and department. Any departments "
    "listed will be automatically created as groups within your organization if they don't "
    "already exist.",
    "Use the Email Addresses option to specify a simple list of email addresses.",
    "Each recipient will receive an invitation via email. The message will contain a link which "
    "will let them register for a Carewire profile. When they sign up, they will be "
    "automatically added to your organization.",
)
RESEND_CONFIRM = "Are you sure you want to resend the selected invitations?"
RESEND_NOTE = "Note: invitations already in the 'Registered' state will not be resent."
DELETE_CONFIRM = "Are you sure you want to delete the selected invitations?"
_FILTERS = ("email", "last_name", "first_name", "status")


def result_lines(result: InviteResult) -> list[str]:
    """What an invite request did, one line each (for the page under the banner)."""
    lines = []
    sent = result.invited + result.resent
    failed = [i.email for i in sent if i.status is InvitationStatus.FAILURE]
    if result.invited:
        lines.append(f"New invitations: {len(result.invited)}.")
    if result.resent:
        lines.append(
            "Sent again (an invitation was pending or had failed): "
            + ", ".join(i.email for i in result.resent)
        )
    if failed:
        lines.append("The mail could not be sent to: " + ", ".join(failed))
    if result.existing_users:
        lines.append("Already users, not invited: " + ", ".join(result.existing_users))
    if result.duplicates:
        lines.append("Given more than once (invited once): " + ", ".join(result.duplicates))
    if result.groups_created:
        lines.append("Groups created: " + ", ".join(result.groups_created))
    lines.extend(f"Line {p.line}: {p.message}" for p in result.problems)
    return lines


def _show_invite(
    request: Request,
    where: OrgPage,
    *,
    emails: str = "",
    is_admin: bool = False,
    notice: str = "",
    details: list[str] | None = None,
    error: str = "",
    error_field: str = "",
) -> Response:
    return page(
        request,
        where,
        "dir_invite_users.html",
        title="Invite Users",
        status_code=400 if error else 200,
        crumbs=crumb(where.caller, where.org, "Invite Users"),
        intro=INTRO,
        emails=emails,
        is_admin=is_admin,
        notice=notice,
        details=details or [],
        error=error,
        error_field=error_field,
    )


async def invite_page(request: Request) -> Response:
    """GET /orgs/{org}/invite: Invite Users."""
    where = await org_page(request, write=True)
    return _show_invite(request, where)


async def invite(request: Request) -> Response:
    """POST /orgs/{org}/invite: send the invitations (CSV and typed addresses merged)."""
    where, form = await guarded(request, max_files=1)
    emails = text(form, "emails")
    is_admin = text(form, "is_admin") == "on"
    try:
        csv_text = upload_text(request, "csv")
        if not emails.strip() and csv_text is None:
            raise ValidationError("Choose a CSV file or type some e-mail addresses.")
        result = await directory(request).invitations.invite(
            where.caller,
            where.org.id,
            InviteRequest(emails=emails, csv_text=csv_text, is_admin=is_admin),
        )
    except (ValidationError, CsvError) as exc:
        message, field = problem_of(exc)
        return _show_invite(
            request,
            where,
            emails=emails,
            is_admin=is_admin,
            error=message,
            error_field="emails" if field == "email" else field,
        )
    lines = result_lines(result)
    if not (result.invited or result.resent):
        return _show_invite(
            request, where, error="No invitations were sent.", details=lines, is_admin=is_admin
        )
    return _show_invite(request, where, notice=INVITATIONS_SENT, details=lines)


async def sample_csv(request: Request) -> Response:
    """GET /directory/sample.csv: "Download sample CSV file"."""
    await require_role(request, *ANY_ROLE)
    return Response(
        SAMPLE_CSV,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="invitations-sample.csv"'},
    )


# -- the Invitations page ----------------------------------------------------------------------


def _filter(params: Mapping[str, str]) -> InvitationFilter:
    status = params.get("status", "")
    return InvitationFilter(
        email=params.get("email", "").strip()[:254],
        last_name=params.get("last_name", "").strip()[:64],
        first_name=params.get("first_name", "").strip()[:64],
        status=InvitationStatus(status) if status in set(InvitationStatus) else None,
    )


_DONE = {
    "resent": "The selected invitations were sent again ({n}). Registered ones were not resent.",
    "deleted": "The selected invitations were deleted ({n}).",
}


async def invitations(request: Request) -> Response:
    """GET /orgs/{org}/invitations: the invitations, filtered, newest first, 50 a page."""
    where = await org_page(request)
    params = request.query_params
    number = page_number(params)
    found = await directory(request).invitations.find(
        where.caller,
        where.org.id,
        _filter(params),
        PageRequest(offset=(number - 1) * INVITATIONS_PAGE_SIZE, limit=INVITATIONS_PAGE_SIZE),
    )
    kept = {k: params[k] for k in _FILTERS if params.get(k)}
    done = params.get("m", "")
    count = params.get("n", "0")
    notice = _DONE[done].format(n=count if count.isdigit() else 0) if done in _DONE else ""
    return page(
        request,
        where,
        "dir_invitations.html",
        title="Invitations",
        crumbs=crumb(where.caller, where.org, "Invitations"),
        found=found,
        filters=kept,
        statuses=[s.value for s in InvitationStatus],
        number=number,
        page_count=max(1, -(-found.total // INVITATIONS_PAGE_SIZE)),
        paging_prefix="?" + query(kept, page="") + ("&" if kept else "") + "page=",
        when=when,
        notice=notice,
        error="Select at least one invitation first." if params.get("m") == "none" else "",
    )


async def bulk(request: Request) -> Response:
    """POST /orgs/{org}/invitations: Selected: Resend | Delete ➔ (asks first)."""
    where, form = await guarded(request)
    chosen = ids(form, "id")
    action = text(form, "action")
    if not chosen or action not in ("resend", "delete"):
        return RedirectResponse(f"{where.base}/invitations?m=none", 303)
    return page(
        request,
        where,
        "dir_invitations_confirm.html",
        title="Confirm",
        action=action,
        chosen=chosen,
        question=RESEND_CONFIRM if action == "resend" else DELETE_CONFIRM,
        note=RESEND_NOTE if action == "resend" else "",
    )


async def resend(request: Request) -> Response:
    """POST /orgs/{org}/invitations/resend: resend the selected (not Registered) invitations."""
    where, form = await guarded(request)
    done = await directory(request).invitations.resend(where.caller, where.org.id, ids(form, "id"))
    return RedirectResponse(f"{where.base}/invitations?m=resent&n={len(done.done)}", 303)


async def delete(request: Request) -> Response:
    """POST /orgs/{org}/invitations/delete: delete the selected invitations."""
    where, form = await guarded(request)
    done = await directory(request).invitations.delete(where.caller, where.org.id, ids(form, "id"))
    return RedirectResponse(f"{where.base}/invitations?m=deleted&n={len(done.done)}", 303)
