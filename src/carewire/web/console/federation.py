"""Console pages of federation: the Federation page, and trusted peer certificates.

The Federation page (``/federation``) shows each remote domain's streams (as
the servers last reported them) and edits the policy: the "certificates
only" switch and the allow-list of partner domains. The certificate manager's
Federation tab (:mod:`.certificates`) lists the peer certificates pinned per
remote domain and uploads or removes them through the handlers here. Every
change goes through :class:`~carewire.federation.trust.TrustedDomains`, which
audits it; refusals are shown on the page that sent the form. The policy is the
whole server's: only system administrators change it; every role reads it.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from carewire.errors import CarewireError
from carewire.federation.model import PinnedCertificate
from carewire.federation.service import FederationAdmin
from carewire.security.audit import Channel
from carewire.security.cert_manager import Caller
from carewire.security.console_model import Role
from carewire.web.console.auth import ANY_ROLE, SignedIn, check_csrf, remote_ip, require_role
from carewire.web.console.render import render

#: Who changes the policy and the pins: the whole server's, so system administrators.
CHANGERS = (Role.SYSTEM_ADMIN,)
#: The largest certificate file accepted.
MAX_UPLOAD = 64 * 1024
_NOTICES = {
    "policy": "The federation policy has been saved. Streams it no longer allows are closed.",
    "allowed": "The domain has been added to the partner domains.",
    "disallowed": "The domain has been removed from the partner domains.",
    "pinned": "The certificate has been pinned. The other server is trusted with it.",
    "unpinned": "The certificate has been removed. Streams it authenticated are closed.",
}


def admin_of(request: Request) -> FederationAdmin | None:
    """The federation service of the console (None: not served here)."""
    admin: FederationAdmin | None = request.app.state.services.federation
    return admin


def _admin(request: Request) -> FederationAdmin:
    admin = admin_of(request)
    if admin is None:
        raise HTTPException(404)
    return admin


def caller(request: Request, signed_in: SignedIn) -> Caller:
    """The signed-in user, as the audit trail records them."""
    return Caller(
        actor=f"console:{signed_in.user.username}",
        channel=Channel.CONSOLE,
        remote_ip=remote_ip(request),
    )


def notice_of(request: Request) -> str:
    """The notice a redirect after a change asked for (``?m=``)."""
    return _NOTICES.get(request.query_params.get("m", ""), "")


def _refusal(exc: CarewireError) -> str:
    text = exc.message or "The change was refused."
    return text[:1].upper() + text[1:]


def pin_rows(pins: list[PinnedCertificate], request: Request) -> list[dict[str, Any]]:
    """The pinned certificates as the Federation tab lists them."""
    admin = _admin(request)
    now = admin.trust.now()
    return [
        {
            "domain": p.domain,
            "sha256": p.sha256,
            "subject": p.subject,
            "expires": p.not_after.strftime("%Y-%m-%d %H:%M UTC"),
            "is_expired": p.not_after <= now,
            "uploaded": p.uploaded_at.strftime("%Y-%m-%d %H:%M UTC"),
            "uploaded_by": p.uploaded_by,
        }
        for p in pins
    ]


def _when(moment: Any) -> str:
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


async def _page(
    request: Request, signed_in: SignedIn, *, status_code: int = 200, **ctx: Any
) -> Response:
    admin = _admin(request)
    policy = await admin.trust.read_policy()
    domains = [
        {
            "domain": d.domain,
            "allowed": d.is_allowed,
            "connected": d.is_connected,
            "pins": d.pins,
            "streams": [
                {
                    "direction": "Incoming" if r.status.direction == "in" else "Outgoing",
                    "node": r.status.node or "—",
                    "connected": r.status.connected,
                    "auth": {"certificate": "Certificate", "dialback": "Dialback"}.get(
                        r.status.auth or "", "—"
                    ),
                    "tls": r.status.tls_version or "—",
                    "fingerprint": r.status.fingerprint or "—",
                    "expires": _when(r.status.certificate_not_after),
                    "queued": r.status.queued,
                    "error": r.status.last_error or "",
                    "error_at": _when(r.status.last_error_at),
                    "updated": _when(r.updated_at),
                }
                for r in d.streams
            ],
        }
        for d in await admin.overview()
    ]
    ctx.setdefault("error", "")
    ctx.setdefault("error_field", "")
    ctx.setdefault("domain_value", "")
    return render(
        request,
        "federation.html",
        title="Federation",
        signed_in=signed_in,
        status_code=status_code,
        policy=policy,
        allow=[
            {"domain": a.domain, "by": a.added_by, "at": _when(a.added_at)} for a in policy.allow
        ],
        domains=domains,
        can_write=signed_in.user.role in CHANGERS,
        notice=notice_of(request),
        **ctx,
    )


async def show_federation(request: Request) -> Response:
    """GET /federation: status per remote domain, the policy and the partner domains."""
    signed_in = await require_role(request, *ANY_ROLE)
    return await _page(request, signed_in)


async def _form(request: Request) -> tuple[SignedIn, dict[str, str]]:
    signed_in = await require_role(request, *CHANGERS)
    form = await request.form(max_files=0, max_fields=10)
    check_csrf(request, form, signed_in)
    return signed_in, {k: v for k, v in form.items() if isinstance(v, str)}


async def save_policy(request: Request) -> Response:
    """POST /federation/policy: the "certificates only" switch."""
    signed_in, form = await _form(request)
    trust = _admin(request).trust
    await trust.set_policy(
        certificates_only="certificates_only" in form, by=caller(request, signed_in)
    )
    return RedirectResponse("/federation?m=policy", 303)


async def allow_domain(request: Request) -> Response:
    """POST /federation/allow: add a partner domain."""
    signed_in, form = await _form(request)
    given = form.get("domain", "")
    try:
        await _admin(request).trust.allow(given, by=caller(request, signed_in))
    except CarewireError as exc:
        return await _page(
            request,
            signed_in,
            status_code=400,
            error=_refusal(exc),
            error_field="domain",
            domain_value=given,
        )
    return RedirectResponse("/federation?m=allowed", 303)


async def disallow_domain(request: Request) -> Response:
    """POST /federation/disallow: remove a partner domain (not the last one)."""
    signed_in, form = await _form(request)
    try:
        await _admin(request).trust.disallow(form.get("domain", ""), by=caller(request, signed_in))
    except CarewireError as exc:
        return await _page(request, signed_in, status_code=400, error=_refusal(exc))
    return RedirectResponse("/federation?m=disallowed", 303)


async def open_federation(request: Request) -> Response:
    """POST /federation/open: empty the allow-list (any domain may federate)."""
    signed_in, _ = await _form(request)
    trust = _admin(request).trust
    await trust.set_policy(
        certificates_only=trust.policy().certificates_only,
        allow=[],
        by=caller(request, signed_in),
    )
    return RedirectResponse("/federation?m=policy", 303)
