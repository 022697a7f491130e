"""Console pages for the XMPP certificate manager: Federation, CSR and push certificates.

Three tabs, links that work without JavaScript (``/certificates?tab=csr``).
Federation shows the current certificate and downloads, uploads or deletes
it; CSR makes a new certificate signing request and returns it as a PEM
download; the push tab uploads a PKCS#12 push certificate. Every change goes
through :class:`~carewire.security.cert_manager.CertificateManager`, which
records it in the audit trail; refusals are shown on the page. Auditors see
and download, but every POST answers them 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from carewire.errors import CarewireError, ConfigError
from carewire.security.audit import Channel
from carewire.security.cert_manager import Caller, CertificateDetails, CertificateManager
from carewire.web.console import federation
from carewire.web.console.auth import (
    ANY_ROLE,
    WRITERS,
    CsrfRejected,
    SignedIn,
    check_csrf,
    remote_ip,
    require_role,
)
from carewire.web.console.forms import problems_of
from carewire.web.console.render import render

TABS = (("federation", "Federation"), ("csr", "CSR"), ("apns", "APNs"))
#: The largest file accepted (a chain of a few certificates, a push certificate).
MAX_UPLOAD = 256 * 1024
CSR_FIELDS = (
    ("country", "Country"),
    ("city", "City"),
    ("state", "State"),
    ("organization", "Organization"),
    ("unit", "Organizational Unit"),
)
_NOTICES = {
    "uploaded": "The certificate has been uploaded. New connections use it.",
    "deleted": "The certificate has been deleted; a new self-signed certificate replaces it.",
    "apns": "The push certificate has been uploaded.",
}
#: The Federation tab's notices of pinned peer certificates.
_PIN_NOTICES = ("pinned", "unpinned")


def _manager(request: Request) -> CertificateManager:
    manager: CertificateManager | None = request.app.state.services.certificates
    if manager is None:
        raise HTTPException(404)
    return manager


def _caller(request: Request, signed_in: SignedIn) -> Caller:
    return Caller(
        actor=f"console:{signed_in.user.username}",
        channel=Channel.CONSOLE,
        remote_ip=remote_ip(request),
    )


def _details(manager: CertificateManager) -> tuple[CertificateDetails | None, str]:
    try:
        return manager.details(), ""
    except (ConfigError, OSError, ValueError) as exc:
        return None, getattr(exc, "message", "") or "The certificate cannot be read."


async def _page(
    request: Request,
    signed_in: SignedIn,
    tab: str,
    *,
    status_code: int = 200,
    **ctx: Any,
) -> Response:
    manager = _manager(request)
    admin = federation.admin_of(request)
    pins = [] if admin is None else federation.pin_rows(await admin.trust.certificates(), request)
    details, details_error = _details(manager)
    ctx.setdefault("problems", [])
    ctx["csr_invalid"] = {
        name
        for name, label in CSR_FIELDS
        for p in ctx["problems"]
        if p == f"Required: {label}" or p.startswith(f"{label}:")
    }
    ctx.setdefault("upload_error", "")
    ctx.setdefault("push_error", "")
    ctx.setdefault("pin_error", "")
    ctx.setdefault("pin_warnings", ())
    ctx.setdefault("pin_domain", "")
    ctx.setdefault("notice", _notice(request))
    ctx.setdefault("csr_values", {name: "" for name, _ in CSR_FIELDS})
    return render(
        request,
        "certificates.html",
        title="Certificate Information",
        signed_in=signed_in,
        status_code=status_code,
        tab=tab,
        tabs=TABS,
        details=details,
        details_error=details_error,
        csr=manager.csr_details(),
        csr_fields=CSR_FIELDS,
        push=manager.apns_details(),
        can_write=signed_in.user.role.can_write,
        has_pins=admin is not None,
        pins=pins,
        can_pin=signed_in.user.role in federation.CHANGERS,
        **ctx,
    )


def _notice(request: Request) -> str:
    key = request.query_params.get("m", "")
    return federation.notice_of(request) if key in _PIN_NOTICES else _NOTICES.get(key, "")


async def show_certificates(request: Request) -> Response:
    """GET /certificates: the tab asked for (Federation by default)."""
    signed_in = await require_role(request, *ANY_ROLE)
    tab = request.query_params.get("tab", "federation")
    return await _page(request, signed_in, tab if tab in dict(TABS) else "federation")


def _pem_download(text: str, filename: str) -> Response:
    return Response(
        text,
        media_type="application/x-pem-file",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def download_certificate(request: Request) -> Response:
    """GET /certificates/download: the certificate chain as a PEM file (never the key)."""
    await require_role(request, *ANY_ROLE)
    manager = _manager(request)
    try:
        text = manager.download()
    except OSError:
        raise HTTPException(404) from None
    return _pem_download(text, f"{manager.domain}.pem")


def _field(form: Mapping[str, object], key: str) -> str:
    value = form.get(key, "")
    return value if isinstance(value, str) else ""


async def _read(request: Request, signed_in: SignedIn) -> FormData:
    """The form, its CSRF token checked (the caller closes it: uploads are temporary files)."""
    form = await request.form(max_files=1, max_fields=20)
    try:
        check_csrf(request, form, signed_in)
    except CsrfRejected:
        await form.close()
        raise
    return form


async def _file_bytes(form: FormData, key: str) -> bytes:
    """The file sent as ``key`` (empty if none); every file of the form is closed."""
    upload = form.get(key)
    if not isinstance(upload, UploadFile):
        await form.close()
        return b""
    data = await upload.read(MAX_UPLOAD + 1)
    await form.close()
    if len(data) > MAX_UPLOAD:
        raise CarewireError(f"The file is larger than {MAX_UPLOAD // 1024} KB.")
    return data


async def upload_certificate(request: Request) -> Response:
    """POST /certificates/upload: install a PEM chain (a file, or pasted text)."""
    signed_in = await require_role(request, *WRITERS)
    form = await _read(request, signed_in)
    try:
        data = await _file_bytes(form, "certificate") or _field(form, "pem").strip().encode()
        if not data:
            raise CarewireError("Required: Certificate (choose a PEM file or paste its text)")
        await _manager(request).upload(
            data, is_federating="federating" in form, by=_caller(request, signed_in)
        )
    except CarewireError as exc:
        return await _page(
            request, signed_in, "federation", status_code=400, upload_error=_refusal(exc)
        )
    return RedirectResponse("/certificates?tab=federation&m=uploaded", 303)


def _refusal(exc: CarewireError) -> str:
    text = exc.message or "The file was refused."
    return text[:1].upper() + text[1:]


async def confirm_delete(request: Request) -> Response:
    """GET /certificates/delete: ask before deleting the certificate."""
    signed_in = await require_role(request, *WRITERS)
    return render(
        request,
        "certificates_delete.html",
        title="Delete the certificate?",
        signed_in=signed_in,
        domain=_manager(request).domain,
    )


async def delete_certificate(request: Request) -> Response:
    """POST /certificates/delete: delete it; a new self-signed certificate takes its place."""
    signed_in = await require_role(request, *WRITERS)
    await _read(request, signed_in)
    await _manager(request).delete(by=_caller(request, signed_in))
    return RedirectResponse("/certificates?tab=federation&m=deleted", 303)


async def download_csr(request: Request) -> Response:
    """POST /certificates/csr: a new CSR (overwriting any in progress), as a PEM download."""
    signed_in = await require_role(request, *WRITERS)
    form = await _read(request, signed_in)
    values = {name: _field(form, name).strip() for name, _ in CSR_FIELDS}
    manager = _manager(request)
    try:
        pem = await manager.create_csr(**values, by=_caller(request, signed_in))
    except CarewireError as exc:
        return await _page(
            request, signed_in, "csr", status_code=400, problems=problems_of(exc), csr_values=values
        )
    return _pem_download(pem, f"{manager.domain}.csr.pem")


async def upload_push(request: Request) -> Response:
    """POST /certificates/apns: store a push certificate (PKCS#12 and its password)."""
    signed_in = await require_role(request, *WRITERS)
    form = await _read(request, signed_in)
    try:
        data = await _file_bytes(form, "p12")
        if not data:
            raise CarewireError("Required: Certificate (choose the push certificate file)")
        await _manager(request).upload_apns(
            data,
            _field(form, "password"),
            is_production="production" in form,
            is_next_gen="next_gen" in form,
            by=_caller(request, signed_in),
        )
    except CarewireError as exc:
        return await _page(request, signed_in, "apns", status_code=400, push_error=_refusal(exc))
    return RedirectResponse("/certificates?tab=apns&m=apns", 303)


async def pin_certificate(request: Request) -> Response:
    """POST /certificates/peers: pin another server's certificate for its domain."""
    signed_in = await require_role(request, *federation.CHANGERS)
    admin = federation.admin_of(request)
    if admin is None:
        raise HTTPException(404)
    form = await _read(request, signed_in)
    domain = _field(form, "domain")
    try:
        data = await _file_bytes(form, "peer_certificate") or _field(form, "peer_pem").encode()
        if not data.strip():
            raise CarewireError("Required: Certificate (choose the other server's file)")
        outcome = await admin.trust.pin(domain, data, by=_caller(request, signed_in))
    except CarewireError as exc:
        return await _page(
            request,
            signed_in,
            "federation",
            status_code=400,
            pin_error=_refusal(exc),
            pin_domain=domain,
        )
    if not outcome.warnings:
        return RedirectResponse("/certificates?tab=federation&m=pinned#peers", 303)
    return await _page(
        request,
        signed_in,
        "federation",
        notice="The certificate has been pinned. The other server is trusted with it.",
        pin_warnings=[w[:1].upper() + w[1:] for w in outcome.warnings],
    )


async def unpin_certificate(request: Request) -> Response:
    """POST /certificates/peers/delete: remove a pinned peer certificate."""
    signed_in = await require_role(request, *federation.CHANGERS)
    admin = federation.admin_of(request)
    if admin is None:
        raise HTTPException(404)
    form = await _read(request, signed_in)
    try:
        await admin.trust.unpin(
            _field(form, "domain"), _field(form, "sha256"), by=_caller(request, signed_in)
        )
    except CarewireError as exc:
        return await _page(
            request, signed_in, "federation", status_code=400, pin_error=_refusal(exc)
        )
    return RedirectResponse("/certificates?tab=federation&m=unpinned#peers", 303)
