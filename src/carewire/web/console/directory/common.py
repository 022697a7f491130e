"""What the directory pages share: the caller, scoped look-ups, guarded POSTs, texts.

Every directory page acts as a :class:`~carewire.directory.model.Caller`
made from the signed-in console user: their role, and for an organisation
administrator their organisation. The directory service does the scoping:
anything of another organisation is "not found", which the console's
exception handler turns into the ordinary 404 page (existence never leaks).
Writes go through :func:`guarded`: writers only (auditors get 403), with the
session's CSRF token. Refusals the user can act on (bad input, a taken name)
are shown next to the form, the service's sentence as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, urlencode

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

from carewire.directory.model import (
    Caller,
    CallerRole,
    Group,
    InvalidFieldError,
    Organisation,
    OrganisationId,
    OrgKind,
)
from carewire.directory.service import DirectoryService
from carewire.errors import CarewireError
from carewire.security.audit import Channel
from carewire.web.console.auth import (
    ANY_ROLE,
    WRITERS,
    SignedIn,
    check_csrf,
    remote_ip,
    require_role,
)
from carewire.web.console.render import render

if TYPE_CHECKING:
    from carewire.web.console.services import ConsoleServices

#: The most fields a directory form posts (the invitations page's checkboxes, a profile).
MAX_FIELDS = 1000
#: The largest CSV upload, in bytes (the service counts characters; 4 bytes each at worst).
MAX_UPLOAD_BYTES = 8 * 1024 * 1024

#: The Manage Users tabs: (label, path under /orgs/{id}).
USER_TABS: tuple[tuple[str, str], ...] = (
    ("Find", "/users"),
    ("Create", "/users/new"),
    ("Invite Users", "/invite"),
    ("Invitations", "/invitations"),
)


def services(request: Request) -> ConsoleServices:
    """The console's services."""
    return cast("ConsoleServices", request.app.state.services)


def directory(request: Request) -> DirectoryService:
    """The directory service (a console built without it answers 404)."""
    found = services(request).directory
    if found is None:
        raise HTTPException(404)
    return found


def caller_of(request: Request, signed_in: SignedIn) -> Caller:
    """The directory caller of a signed-in console user."""
    user = signed_in.user
    org = user.organisation_id
    return Caller(
        actor=f"console:{user.username}",
        role=CallerRole(user.role.value),
        organisation_id=None if org is None else OrganisationId(org),
        channel=Channel.CONSOLE,
        remote_ip=remote_ip(request),
    )


def can_write(signed_in: SignedIn) -> bool:
    """Whether the user may change things (auditors only look)."""
    return signed_in.user.role in WRITERS


def is_system_admin(caller: Caller) -> bool:
    """A system administrator (may create hospitals, add community members)."""
    return caller.role is CallerRole.SYSTEM_ADMIN


def may_create_practice(caller: Caller, org: Organisation) -> bool:
    """Hospital administrators and system administrators; never for a practice."""
    return caller.can_write and org.kind is OrgKind.HOSPITAL


@dataclass(frozen=True, slots=True, kw_only=True)
class OrgPage:
    """A signed-in request about one organisation.

    Attributes:
        signed_in: The session.
        caller: The directory caller.
        org: The organisation of the path (the caller may see it).
    """

    signed_in: SignedIn
    caller: Caller
    org: Organisation

    @property
    def base(self) -> str:
        """The organisation's pages' path prefix."""
        return f"/orgs/{self.org.id}"

    @property
    def can_write(self) -> bool:
        """Whether the user may change things here."""
        return can_write(self.signed_in)


def _org_id(request: Request) -> int:
    value = request.path_params.get("org")
    if not isinstance(value, int):
        raise HTTPException(404)
    return value


async def org_page(request: Request, *, write: bool = False, is_activity: bool = True) -> OrgPage:
    """The organisation named by the path, for a reader (or a writer when ``write``).

    ``is_activity`` False: a background refresh (the session is not kept alive).

    Raises:
        UnknownOrganisationError: Not one the caller may see (answered 404).
    """
    signed_in = await require_role(
        request, *(WRITERS if write else ANY_ROLE), is_activity=is_activity
    )
    caller = caller_of(request, signed_in)
    org = await directory(request).organisations.get(caller, _org_id(request))
    return OrgPage(signed_in=signed_in, caller=caller, org=org)


@dataclass(frozen=True, slots=True, kw_only=True)
class Upload:
    """A file a form sent, read into memory (at most :data:`MAX_UPLOAD_BYTES` + 1 bytes)."""

    filename: str
    content_type: str
    data: bytes


async def _read_uploads(form: FormData) -> dict[str, Upload]:
    uploads = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile) and value.filename:
            data = await value.read(MAX_UPLOAD_BYTES + 1)
            uploads[key] = Upload(
                filename=value.filename, content_type=value.content_type or "", data=data
            )
    return uploads


async def guarded(request: Request, *, max_files: int = 0) -> tuple[OrgPage, FormData]:
    """A writer's POST about the path's organisation, with the right CSRF token.

    Uploaded files are read into memory and the form's temporary files closed
    at once; :func:`uploaded` hands them out.
    """
    signed_in = await require_role(request, *WRITERS)
    form = await request.form(
        max_files=max_files, max_fields=MAX_FIELDS, max_part_size=MAX_UPLOAD_BYTES
    )
    try:
        check_csrf(request, form, signed_in)
        request.state.uploads = await _read_uploads(form) if max_files else {}
    finally:
        await form.close()
    caller = caller_of(request, signed_in)
    org = await directory(request).organisations.get(caller, _org_id(request))
    return OrgPage(signed_in=signed_in, caller=caller, org=org), form


def uploaded(request: Request, name: str) -> Upload | None:
    """The file the guarded form sent as ``name`` (None when no file was chosen)."""
    uploads: dict[str, Upload] = getattr(request.state, "uploads", {})
    found = uploads.get(name)
    return found if found is not None and found.data else None


async def guarded_plain(request: Request) -> tuple[SignedIn, Caller, FormData]:
    """A writer's POST not about one organisation (hospitals, communities, acceptance)."""
    signed_in = await require_role(request, *WRITERS)
    form = await request.form(max_files=0, max_fields=MAX_FIELDS)
    check_csrf(request, form, signed_in)
    return signed_in, caller_of(request, signed_in), form


def text(form: Mapping[str, object], name: str) -> str:
    """A form or query field as text (missing or a file: empty)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def page_number(params: Mapping[str, str], name: str = "page") -> int:
    """The page number a query asks for (1 when missing or not a sensible number)."""
    value = params.get(name, "1")
    return int(value) if value.isdigit() and 0 < len(value) < 7 and int(value) > 0 else 1


def ids(form: FormData, name: str) -> list[int]:
    """Whole numbers posted under ``name`` (repeated checkboxes); others are dropped."""
    out = []
    for value in form.getlist(name):
        if isinstance(value, str) and value.isdigit() and len(value) < 12:
            out.append(int(value))
    return out


def logins(form: FormData, name: str) -> list[str]:
    """Logins posted under ``name`` (repeated checkboxes or a multiple select)."""
    return [v for v in form.getlist(name) if isinstance(v, str) and 0 < len(v) <= 64]


def upload_text(request: Request, name: str) -> str | None:
    """An uploaded text file (CSV) as text, or None when no file was chosen.

    Raises:
        InvalidFieldError: Too large, or not UTF-8 text.
    """
    upload = uploaded(request, name)
    if upload is None:
        return None
    if len(upload.data) > MAX_UPLOAD_BYTES:
        raise InvalidFieldError(name, "The file is larger than 8 MB.")
    try:
        return upload.data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidFieldError(name, "The file must be a UTF-8 text (CSV) file.") from None


#: The field a refusal without one is about.
_FIELDS_OF = {"email-taken": "email", "login-taken": "login", "name-taken": "name"}


def problem_of(exc: CarewireError) -> tuple[str, str]:
    """The message to show and the field it is about ("" when none)."""
    field = str(getattr(exc, "field", "") or "") or _FIELDS_OF.get(exc.code, "")
    return exc.message, field


def when(at: datetime | None) -> str:
    """ "5/18/2015 11:18:05 PM UTC": the Invitations page's format."""
    if at is None:
        return ""
    t = at.astimezone(UTC)
    return f"{t.month}/{t.day}/{t.year} {t.hour % 12 or 12}:{t:%M:%S} {t:%p} UTC"


def activity(at: datetime | None) -> str:
    """ "Thu Oct 06 17:03:44 UTC 2016": User's Devices' Most Recent Activity."""
    if at is None:
        return "Never"
    return at.astimezone(UTC).strftime("%a %b %d %H:%M:%S UTC %Y")


def query(params: Mapping[str, str], **changes: object) -> str:
    """A query string of ``params`` with ``changes`` (empty values dropped)."""
    merged = {**params, **{k: str(v) for k, v in changes.items()}}
    return urlencode({k: v for k, v in merged.items() if v})


def group_options(groups: Sequence[Group]) -> list[tuple[int, str]]:
    """(id, name) of groups, for selects."""
    return [(g.id, g.name) for g in groups]


def crumb(caller: Caller, org: Organisation, *parts: str) -> str:
    """The breadcrumb: ``SYSTEM ADMIN / ORG / PART`` (``ORG / PART`` for an org's admin)."""
    head = ["SYSTEM ADMIN"] if caller.organisation_id is None else []
    return " / ".join([*head, org.name.upper(), *(p.upper() for p in parts)])


def page(
    request: Request,
    where: OrgPage,
    template: str,
    *,
    title: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a page about ``where.org`` (breadcrumb, header label, write permission)."""
    values: dict[str, Any] = {
        "org": where.org,
        "base": where.base,
        "can_write": where.can_write,
        "org_label": where.org.name if where.caller.organisation_id is not None else "",
        "tabs": USER_TABS,
        "notice": "",
        "error": "",
        "error_field": "",
    }
    values.update(context)
    values.setdefault("crumbs", crumb(where.caller, where.org))
    return render(
        request,
        template,
        title=title,
        signed_in=where.signed_in,
        status_code=status_code,
        **values,
    )


def next_path(path: str) -> str:
    """``path`` quoted for a ``next`` parameter."""
    return quote(path, safe="")
