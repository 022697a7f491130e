"""The ``/invitations`` resource: invite users by e-mail list or CSV, list, resend, delete.

Typed addresses are all-or-nothing: one malformed address refuses the whole
request ("Invalid email address: <addr>. No invitations were sent.", a 422
``invalid-email``). A CSV file (JSON ``csv`` text, or a multipart upload to
``/invitations/upload``) needs a header naming ``Email``, ``First Name``,
``Last Name``, ``Department``; bad rows are reported by line in ``problems``
while the good rows go in. Addresses are de-duplicated case-insensitively;
users' addresses are skipped and reported; a pending or failed invitation to
the same address is resent instead. Resending makes a new link (the old one
stops working); a Registered invitation is never resent. Deleting kills the
link. Every change is recorded in the audit trail by the directory service
(``directory.invitation.*``).
"""

from __future__ import annotations

import enum
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from carewire.directory.model import (
    INVITATIONS_PAGE_SIZE,
    INVITATIONS_SENT,
    MAX_PAGE_SIZE,
    SAMPLE_CSV,
    BulkResult,
    InvitationFilter,
    InvitationSortKey,
    InvitationStatus,
    InviteRequest,
    PageRequest,
)
from carewire.errors import ConflictError
from carewire.web.api.deps import Directory, DirectoryCaller, authorize
from carewire.web.api.directory_schemas import (
    MAX_ID,
    Id,
    InvitationOut,
    InviteOut,
    OrganisationParam,
    invitation_out,
    invite_out,
    organisation_of,
    read_upload,
)

router = APIRouter(prefix="/invitations", tags=["invitations"], dependencies=[Depends(authorize)])

IdList = Annotated[
    list[Annotated[int, Field(ge=1, le=MAX_ID)]], Field(min_length=1, max_length=1000)
]


class Order(enum.StrEnum):
    """Sort direction."""

    ASC = "asc"
    DESC = "desc"


class InviteBody(BaseModel):
    """Invite Users: typed addresses and/or CSV text, merged."""

    model_config = ConfigDict(extra="forbid")

    organisation: OrganisationParam = None
    emails: list[str] = Field(
        default=[], max_length=1000, examples=[["jdoe@example.org", "rroe@example.org"]]
    )
    csv: str | None = Field(default=None, description="A CSV file's text (header row required).")
    is_admin: bool = Field(default=False, description="Invite administrators of the organisation.")


class InvitationPage(BaseModel):
    """One page of the Invitations list."""

    total: int
    offset: int
    limit: int
    invitations: list[InvitationOut]


class BulkBody(BaseModel):
    """Invitations of one organisation to act on."""

    model_config = ConfigDict(extra="forbid")

    organisation: OrganisationParam = None
    ids: IdList


class BulkOut(BaseModel):
    """What a bulk action did."""

    done: list[int]
    skipped: list[int] = Field(description="Registered (never resent), unknown or deleted.")


def _bulk(result: BulkResult) -> BulkOut:
    return BulkOut(done=list(result.done), skipped=list(result.skipped))


@router.post("", summary="Invite users")
async def invite(body: InviteBody, directory: Directory, caller: DirectoryCaller) -> InviteOut:
    """Invite by typed addresses (all or nothing) and/or CSV text (bad rows by line)."""
    result = await directory.invitations.invite(
        caller,
        organisation_of(caller, body.organisation),
        InviteRequest(emails="\n".join(body.emails), csv_text=body.csv, is_admin=body.is_admin),
    )
    return invite_out(result, INVITATIONS_SENT)


@router.post("/upload", summary="Invite users from a CSV file")
async def upload(
    *,
    directory: Directory,
    caller: DirectoryCaller,
    file: Annotated[UploadFile, File(description="Email,First Name,Last Name,Department")],
    organisation: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
    emails: Annotated[str, Form(max_length=100_000, description="Typed addresses too.")] = "",
    is_admin: Annotated[bool, Form()] = False,
) -> InviteOut:
    """Invite the rows of an uploaded CSV file (multipart); bad rows are reported by line."""
    text = await read_upload(file)
    result = await directory.invitations.invite(
        caller,
        organisation_of(caller, organisation),
        InviteRequest(emails=emails, csv_text=text, is_admin=is_admin),
    )
    return invite_out(result, INVITATIONS_SENT)


@router.get("", summary="List invitations")
async def list_invitations(
    *,
    directory: Directory,
    caller: DirectoryCaller,
    organisation: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    email: Annotated[str, Query(max_length=320)] = "",
    first_name: Annotated[str, Query(max_length=200)] = "",
    last_name: Annotated[str, Query(max_length=200)] = "",
    status: InvitationStatus | None = None,
    sort: InvitationSortKey = InvitationSortKey.UPDATED,
    order: Order = Order.DESC,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = INVITATIONS_PAGE_SIZE,
) -> InvitationPage:
    """The organisation's invitations matching the filters (substrings; a status), newest first."""
    page = await directory.invitations.find(
        caller,
        organisation_of(caller, organisation),
        InvitationFilter(
            email=email,
            first_name=first_name,
            last_name=last_name,
            status=status,
            sort=sort,
            is_descending=order is Order.DESC,
        ),
        PageRequest(offset=offset, limit=limit),
    )
    return InvitationPage(
        total=page.total,
        offset=page.offset,
        limit=page.limit,
        invitations=[invitation_out(i) for i in page.items],
    )


@router.get(
    "/sample.csv",
    summary="Download the sample CSV file",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def sample_csv() -> PlainTextResponse:
    """The header and example rows an invitation CSV file has."""
    return PlainTextResponse(
        SAMPLE_CSV,
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="invitations.csv"'},
    )


@router.post("/resend", summary="Resend invitations")
async def resend_many(body: BulkBody, directory: Directory, caller: DirectoryCaller) -> BulkOut:
    """A new link and mail for each (Registered ones are skipped)."""
    org = organisation_of(caller, body.organisation)
    return _bulk(await directory.invitations.resend(caller, org, body.ids))


@router.post("/delete", summary="Delete invitations")
async def delete_many(body: BulkBody, directory: Directory, caller: DirectoryCaller) -> BulkOut:
    """Remove them from the list; their links stop working."""
    org = organisation_of(caller, body.organisation)
    return _bulk(await directory.invitations.delete(caller, org, body.ids))


@router.get("/{invitation_id}", summary="Read an invitation")
async def get_invitation(
    invitation_id: Id, directory: Directory, caller: DirectoryCaller
) -> InvitationOut:
    """One invitation."""
    return invitation_out(await directory.invitations.get(caller, invitation_id))


@router.post("/{invitation_id}/resend", summary="Resend an invitation")
async def resend(invitation_id: Id, directory: Directory, caller: DirectoryCaller) -> InvitationOut:
    """A new link (the old one stops working) and mail; a Registered invitation is a 409."""
    inv = await directory.invitations.get(caller, invitation_id)
    if inv.status is InvitationStatus.REGISTERED:
        raise ConflictError(
            "invitations already in the 'Registered' state are not resent", code="registered"
        )
    await directory.invitations.resend(caller, inv.organisation_id, [inv.id])
    return invitation_out(await directory.invitations.get(caller, inv.id))


@router.delete("/{invitation_id}", status_code=204, summary="Delete an invitation")
async def delete(invitation_id: Id, directory: Directory, caller: DirectoryCaller) -> Response:
    """Remove it from the list; its link stops working (a Registered one is only hidden)."""
    inv = await directory.invitations.get(caller, invitation_id)
    await directory.invitations.delete(caller, inv.organisation_id, [inv.id])
    return Response(status_code=204)
