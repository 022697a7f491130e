"""SCIM Provisioning: an organisation's SCIM bearer tokens in the console (docs/scim.md).

The page lists the organisation's tokens (name, whether they invite the users
they create, created, created by, last used, revoked) and the SCIM base URL to
give the identity provider; a writer creates a token, which is shown on the
answer to that POST only (only its SHA-256 is kept, and the answer is not
cached: the console's pages are ``no-store``), and revokes one after a
confirmation. Tokens are named by their id in paths (a name may hold any
printable character) and looked up among the organisation's own, so another
organisation's token is "not found". :class:`~carewire.identity.scim.tokens.ScimTokens`
scopes every call to the caller's organisation and records creating and
revoking in the audit trail (``scim.token.create``, ``scim.token.revoke``),
with the console user as actor. Auditors see the page; every POST answers them 403.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from carewire.errors import ConflictError, ValidationError
from carewire.identity.scim.model import MAX_TOKEN_NAME, ScimToken
from carewire.identity.scim.service import ScimProvisioning
from carewire.web.console.directory.common import (
    OrgPage,
    crumb,
    guarded,
    org_page,
    page,
    services,
    text,
    when,
)

TITLE = "SCIM Provisioning"
REVOKE_TEXT = (
    "Revoke the SCIM token {name}? The identity provider using it is refused from its next "
    "request on, and the token can never be used again. The users and groups it provisioned "
    "stay in the directory."
)
_NOTICES = {"revoked": "The SCIM token was revoked."}


def _provisioning(request: Request) -> ScimProvisioning:
    """SCIM provisioning (a console built without it answers 404)."""
    found = services(request).scim
    if found is None:
        raise HTTPException(404)
    return found


def _row(token: ScimToken) -> dict[str, object]:
    return {
        "id": token.id,
        "name": token.name,
        "invites": "Yes" if token.invite_users else "No",
        "created": when(token.created_at),
        "created_by": token.created_by,
        "last_used": when(token.last_used_at) or "Never",
        "revoked": when(token.revoked_at),
    }


async def _show(
    request: Request,
    where: OrgPage,
    *,
    values: Mapping[str, str] | None = None,
    created: tuple[ScimToken, str] | None = None,
    error: str = "",
    status_code: int = 200,
) -> Response:
    """Render the page (with the token just created, or a refused form)."""
    provisioning = _provisioning(request)
    tokens = await provisioning.tokens.list(where.caller, where.org.id)
    return page(
        request,
        where,
        "dir_scim_tokens.html",
        title=f"{TITLE} · {where.org.name}",
        status_code=status_code,
        crumbs=crumb(where.caller, where.org, TITLE),
        base_url=provisioning.base_url,
        tokens=[_row(t) for t in tokens],
        values=values or {"name": "", "invite_users": "on"},
        max_name=MAX_TOKEN_NAME,
        created=None if created is None else {"name": created[0].name, "token": created[1]},
        notice=_NOTICES.get(request.query_params.get("m", ""), ""),
        error=error,
        error_field="name" if error else "",
    )


async def tokens_page(request: Request) -> Response:
    """GET /orgs/{org}/scim-tokens: the tokens and the SCIM base URL."""
    return await _show(request, await org_page(request))


async def create_token(request: Request) -> Response:
    """POST /orgs/{org}/scim-tokens: a new token, shown in this answer only."""
    where, form = await guarded(request)
    values = {"name": text(form, "name"), "invite_users": text(form, "invite_users")}
    try:
        created = await _provisioning(request).tokens.create(
            where.caller,
            where.org.id,
            values["name"],
            invite_users=bool(values["invite_users"]),
        )
    except (ValidationError, ConflictError) as exc:
        message = exc.message[:1].upper() + exc.message[1:] + "."
        return await _show(request, where, values=values, error=message, status_code=400)
    return await _show(request, where, created=created)


async def _token_of(request: Request, where: OrgPage) -> ScimToken:
    """The organisation's token of the path (404 for any other)."""
    wanted = request.path_params.get("token")
    tokens = await _provisioning(request).tokens.list(where.caller, where.org.id)
    for token in tokens:
        if token.id == wanted:
            return token
    raise HTTPException(404)


async def confirm_revoke(request: Request) -> Response:
    """GET /orgs/{org}/scim-tokens/{token}/revoke: ask before revoking."""
    where = await org_page(request, write=True)
    token = await _token_of(request, where)
    path = f"{where.base}/scim-tokens"
    return page(
        request,
        where,
        "dir_confirm.html",
        title="Revoke SCIM Token",
        crumbs=crumb(where.caller, where.org, TITLE, token.name, "Revoke"),
        heading="Revoke SCIM Token",
        question=REVOKE_TEXT.format(name=token.name),
        action=f"{path}/{token.id}/revoke",
        cancel=path,
        button="Revoke",
        fields={},
    )


async def revoke_token(request: Request) -> Response:
    """POST /orgs/{org}/scim-tokens/{token}/revoke: revoke it (it stops at once)."""
    where, _form = await guarded(request)
    token = await _token_of(request, where)
    if not token.is_revoked:  # revoking twice would change nothing but the audit trail
        await _provisioning(request).tokens.revoke(where.caller, where.org.id, token.name)
    return RedirectResponse(f"{where.base}/scim-tokens?m=revoked", 303)
