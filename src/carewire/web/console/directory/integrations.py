"""Integrations: an organisation's directory sync from LDAP (docs/ldap.md, docs/console.md).

``/orgs/{org}/integrations`` holds, as the seed's Integrations page does:

- the **status** — Connected / Not Connected, the last error, when it was
  last checked (every ``[directory_sync] status_interval`` by the server),
  the synced users, the last run — refreshed in place by ``console.js`` from
  ``…/integrations/status``, a request that does not keep the session
  alive; **Sync Users Now**; a run **held** by the mass-disable guard, with
  its report and a confirmation (``…/integrations/confirm``);
- the **settings** form (the bind password write-only: the page says only
  whether one is saved; an empty field keeps it); saving checks the
  connection at once;
- **Import Results**, newest first (the seed's Deleted are our Disabled,
  its Errors our Failed), each with **View**: the per-user report
  (``…/integrations/runs/{run}``: Change Type, Staff ID, External ID, Name,
  Message).

Auditors see it all and change nothing; another organisation's page is a
404. Settings changes and runs are audited by the LDAP service, with the
console user as the actor.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from carewire.errors import ConflictError, ValidationError
from carewire.identity.ldap.model import (
    NoIntegrationError,
    RunInProgressError,
    RunState,
    SyncRun,
    Trigger,
)
from carewire.identity.ldap.service import LdapService
from carewire.web.console.auth import ANY_ROLE, require_role
from carewire.web.console.directory import ldapform
from carewire.web.console.directory.common import (
    OrgPage,
    crumb,
    guarded,
    org_page,
    page,
    page_number,
    problem_of,
    services,
    when,
)
from carewire.web.console.render import describe_duration

RUNS_PAGE_SIZE = 20
REPORT_PAGE_SIZE = 100
CONFIRM_TEXT = (
    "{message} Confirming runs a full sync now and applies it: the users who are no longer "
    "in the directory (or the filter) lose their login and their sessions end. They are "
    "not deleted, and get their login back if they return to the directory."
)
_NOTICES = {
    "saved": "The settings were saved. Status: Connected.",
    "saved-not-connected": "The settings were saved, but the directory cannot be reached "
    "with them: see the status.",
    RunState.DONE.value: "The sync finished: see Import Results.",
    RunState.FAILED.value: "The sync failed: nothing was changed. See the status for why.",
    RunState.HELD.value: "The sync was held: it would disable too many users. Nothing was "
    "changed; review its report, then confirm or fix the settings.",
    RunState.INTERRUPTED.value: "The sync was interrupted.",
}


def ldap(request: Request) -> LdapService:
    """The LDAP service (a console built without it answers 404)."""
    found = services(request).ldap
    if found is None:
        raise HTTPException(404)
    return found


async def home(request: Request) -> Response:
    """GET /directory/integrations: the caller's organisation's page (or Organizations)."""
    signed_in = await require_role(request, *ANY_ROLE)
    ldap(request)
    org = signed_in.user.organisation_id
    return RedirectResponse("/orgs" if org is None else f"/orgs/{org}/integrations", 303)


async def _status_context(request: Request, where: OrgPage) -> dict[str, Any]:
    svc = ldap(request)
    return {
        "status": await svc.status(where.caller, where.org.id),
        "refresh_seconds": max(1, round(svc.config.status_interval)),
        "sync_every": describe_duration(timedelta(seconds=round(svc.config.interval))),
        "when": when,
    }


async def show(
    request: Request,
    where: OrgPage,
    *,
    values: Mapping[str, str] | None = None,
    error: str = "",
    error_field: str = "",
    status_code: int = 200,
) -> Response:
    """Render the Integrations page (with a refused form's values, or a notice)."""
    svc = ldap(request)
    params = request.query_params
    settings = await svc.settings(where.caller, where.org.id)
    number = page_number(params)
    runs, total = await svc.runs(
        where.caller,
        where.org.id,
        offset=(number - 1) * RUNS_PAGE_SIZE,
        limit=RUNS_PAGE_SIZE,
    )
    return page(
        request,
        where,
        "dir_integrations.html",
        title=f"Integrations · {where.org.name}",
        status_code=status_code,
        crumbs=crumb(where.caller, where.org, "Integrations"),
        values=values or ldapform.settings_values(settings, params.get("preset", "")),
        has_secret=settings is not None and settings.has_secret,
        is_configured=settings is not None,
        profile_labels=ldapform.PROFILE_LABELS,
        required=ldapform.REQUIRED,
        stamps=ldapform.STAMPS,
        presets=ldapform.PRESET_CHOICES,
        runs=runs,
        runs_total=total,
        runs_page=number,
        runs_pages=max(1, -(-total // RUNS_PAGE_SIZE)),
        notice=_NOTICES.get(params.get("m", ""), ""),
        error=error,
        error_field=error_field,
        **await _status_context(request, where),
    )


async def integrations(request: Request) -> Response:
    """GET /orgs/{org}/integrations: the Integrations page."""
    return await show(request, await org_page(request))


async def status(request: Request) -> Response:
    """GET /orgs/{org}/integrations/status: the status section alone (refreshed in place).

    Not activity: a page left open keeps refreshing, yet its session still
    ends after the inactivity timeout.
    """
    where = await org_page(request, is_activity=False)
    return page(
        request,
        where,
        "_ldap_status.html",
        title="Status",
        **await _status_context(request, where),
    )


async def save(request: Request) -> Response:
    """POST /orgs/{org}/integrations: save the settings, then check the connection."""
    where, form = await guarded(request)
    svc = ldap(request)
    try:
        settings = ldapform.settings_of(form, where.org.id)
        await svc.save(where.caller, settings, ldapform.secret_of(form))
    except (ValidationError, ConflictError) as exc:
        message, field = problem_of(exc)
        return await show(
            request,
            where,
            values=ldapform.sent_values(form),
            error=message,
            error_field=field,
            status_code=400,
        )
    is_connected = await svc.check(where.org.id)
    notice = "saved" if is_connected else "saved-not-connected"
    return RedirectResponse(f"{where.base}/integrations?m={notice}", 303)


async def _run(request: Request, where: OrgPage, *, is_confirmed: bool) -> Response:
    try:
        run: SyncRun = await ldap(request).sync(
            where.caller, where.org.id, trigger=Trigger.CONSOLE, is_confirmed=is_confirmed
        )
    except RunInProgressError as exc:
        return await show(request, where, error=exc.message, status_code=409)
    except NoIntegrationError:
        message = "Save the settings first: this organization has no directory integration."
        return await show(request, where, error=message, status_code=400)
    return RedirectResponse(f"{where.base}/integrations?m={run.state.value}", 303)


async def sync_now(request: Request) -> Response:
    """POST /orgs/{org}/integrations/sync: Sync Users Now (waits for the run to end)."""
    where, _form = await guarded(request)
    return await _run(request, where, is_confirmed=False)


async def confirm_page(request: Request) -> Response:
    """GET /orgs/{org}/integrations/confirm: ask before applying a held run."""
    where = await org_page(request, write=True)
    found = await ldap(request).status(where.caller, where.org.id)
    if found.held_run is None:
        return RedirectResponse(f"{where.base}/integrations", 303)
    return page(
        request,
        where,
        "dir_confirm.html",
        title="Confirm the held sync",
        crumbs=crumb(where.caller, where.org, "Integrations", "Confirm"),
        heading="Disable the users who left the directory?",
        question=CONFIRM_TEXT.format(message=found.held_run.message),
        action=f"{where.base}/integrations/confirm",
        cancel=f"{where.base}/integrations",
        button="Confirm and sync",
        fields={},
    )


async def confirm(request: Request) -> Response:
    """POST /orgs/{org}/integrations/confirm: a full run past the mass-disable guard.

    Only while a run is held: a second click (or a stale page) runs nothing.
    """
    where, _form = await guarded(request)
    found = await ldap(request).status(where.caller, where.org.id)
    if found.held_run is None:
        return RedirectResponse(f"{where.base}/integrations", 303)
    return await _run(request, where, is_confirmed=True)


async def report(request: Request) -> Response:
    """GET /orgs/{org}/integrations/runs/{run}: Import User Process (a run's per-user report)."""
    where = await org_page(request)
    number = page_number(request.query_params)
    run, lines, total = await ldap(request).report(
        where.caller,
        request.path_params["run"],
        offset=(number - 1) * REPORT_PAGE_SIZE,
        limit=REPORT_PAGE_SIZE,
    )
    if run.organisation_id != where.org.id:
        raise NoIntegrationError(f"no sync run {run.id} in this organisation")
    return page(
        request,
        where,
        "dir_import_report.html",
        title="Import User Process",
        crumbs=crumb(where.caller, where.org, "Integrations", "Import User Process"),
        run=run,
        lines=lines,
        total=total,
        number=number,
        page_count=max(1, -(-total // REPORT_PAGE_SIZE)),
        when=when,
    )
