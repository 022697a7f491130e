"""The ``/certificates`` resources: the XMPP certificate, the CSR in progress, push certificates.

Reading needs any token, changing needs an admin token (see :mod:`.deps`).
Everything goes through the
:class:`~carewire.security.cert_manager.CertificateManager`: an upload it
refuses is a 422 saying why (``invalid-certificate``); CSR fields missing or
invalid are a 422 listing each problem (``errors``). A new certificate is
used by connections made after the change; existing ones keep theirs.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from carewire.errors import NotFoundError, ValidationError
from carewire.security.apns import ApnsDetails
from carewire.security.audit import Channel
from carewire.security.cert_manager import Caller, CertificateDetails, CertificateManager
from carewire.web.api.deps import CurrentToken, Services, authorize

router = APIRouter(tags=["certificates"], dependencies=[Depends(authorize)])

PEM_TYPE = "application/x-pem-file"
#: The largest upload accepted (a chain of a few certificates is a few KiB).
MAX_UPLOAD_BYTES = 1024 * 1024


class CertificateOut(BaseModel):
    """The XMPP certificate's details."""

    domain: str
    status: str = Field(description="Good, Expires Soon (within a month) or Expired.")
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    self_signed: bool
    fingerprint_sha256: str
    names: list[str] = Field(description="The DNS names it covers.")


class UploadBody(BaseModel):
    """A certificate chain to install."""

    model_config = ConfigDict(extra="forbid")

    pem: str = Field(
        description="The certificate first, then each intermediate in order, optionally the "
        "private key last (without it, the certificate must be the one signed for the CSR "
        "in progress)."
    )
    federating: bool = Field(False, description="Also require the chat. and patients. names.")


class CsrBody(BaseModel):
    """The subject of a new CSR; all fields are required (the CN is the chat domain)."""

    model_config = ConfigDict(extra="forbid")

    country: str = Field("", description="Two-letter country code.", examples=["US"])
    city: str = ""
    state: str = ""
    organization: str = ""
    unit: str = Field("", description="Organizational unit.")


class CsrOut(BaseModel):
    """The CSR in progress."""

    domain: str
    country: str
    city: str
    state: str
    organization: str
    unit: str
    created_at: datetime


class ApnsBody(BaseModel):
    """A push certificate (PKCS#12) and the password that opens it (never stored)."""

    model_config = ConfigDict(extra="forbid")

    certificate: str = Field(description="The PKCS#12 file, base64.")
    password: str = ""
    production: bool = False
    next_gen: bool = False


class ApnsOut(BaseModel):
    """A stored push certificate."""

    slot: str = Field(description="legacy or next-gen.")
    subject: str
    not_after: datetime
    fingerprint_sha256: str
    production: bool
    next_gen: bool
    uploaded_at: datetime


class ApnsList(BaseModel):
    """The stored push certificates."""

    certificates: list[ApnsOut]


def _manager(services: Services) -> CertificateManager:
    if services.certificates is None:
        raise NotFoundError("this server has no certificate manager")
    return services.certificates


def _caller(request: Request, token: CurrentToken) -> Caller:
    host = request.client.host if request.client is not None else ""
    return Caller(actor=f"api:{token.name}", channel=Channel.API, remote_ip=host)


Manager = Annotated[CertificateManager, Depends(_manager)]
By = Annotated[Caller, Depends(_caller)]


def _out(d: CertificateDetails) -> CertificateOut:
    return CertificateOut(
        domain=d.domain,
        status=d.status.value,
        subject=d.subject,
        issuer=d.issuer,
        not_before=d.not_before,
        not_after=d.not_after,
        self_signed=d.is_self_signed,
        fingerprint_sha256=d.fingerprint,
        names=list(d.names),
    )


def _apns_out(d: ApnsDetails) -> ApnsOut:
    return ApnsOut(
        slot=d.slot,
        subject=d.subject,
        not_after=d.not_after,
        fingerprint_sha256=d.fingerprint,
        production=d.is_production,
        next_gen=d.is_next_gen,
        uploaded_at=d.uploaded_at,
    )


@router.get("/certificates/xmpp", summary="Read the XMPP certificate's details")
async def get_certificate(manager: Manager) -> CertificateOut:
    """Domain, status, subject, issuer, validity and fingerprint of the current certificate."""
    return _out(manager.details())


@router.get(
    "/certificates/xmpp/pem",
    summary="Download the XMPP certificate",
    response_class=Response,
    responses={200: {"content": {PEM_TYPE: {}}, "description": "The chain, leaf first."}},
)
async def download_certificate(manager: Manager) -> Response:
    """The certificate chain as PEM (to install on a federated server); never the key."""
    return Response(
        manager.download(),
        media_type=PEM_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{manager.domain}.pem"'},
    )


async def _upload_body(request: Request, federating: bool) -> tuple[str, bool]:
    raw = await request.body()
    if len(raw) > MAX_UPLOAD_BYTES:
        raise ValidationError(f"the file is larger than {MAX_UPLOAD_BYTES // 1024} KiB")
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return raw.decode("ascii", errors="replace"), federating
    try:
        body = UploadBody.model_validate(json.loads(raw))
    except ValueError as exc:  # json.JSONDecodeError and pydantic's ValidationError
        raise ValidationError(f"the body is not a valid upload: {exc}") from None
    return body.pem, body.federating or federating


@router.post(
    "/certificates/xmpp",
    summary="Upload a new XMPP certificate",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/plain": {"schema": {"type": "string"}},
                PEM_TYPE: {"schema": {"type": "string"}},
                "application/json": {"schema": UploadBody.model_json_schema()},
            },
        }
    },
)
async def upload_certificate(
    request: Request,
    manager: Manager,
    by: By,
    federating: Annotated[
        bool, Query(description="Also require the chat. and patients. names.")
    ] = False,
) -> CertificateOut:
    """Install a chain (PEM body, or JSON ``{"pem", "federating"}``) for new connections."""
    pem, is_federating = await _upload_body(request, federating)
    return _out(await manager.upload(pem, is_federating=is_federating, by=by))


@router.delete("/certificates/xmpp", summary="Delete the XMPP certificate")
async def delete_certificate(manager: Manager, by: By) -> CertificateOut:
    """Delete the certificate and key; a new self-signed certificate takes their place."""
    return _out(await manager.delete(by=by))


@router.post(
    "/certificates/csr",
    summary="Create a certificate signing request",
    response_class=Response,
    responses={200: {"content": {PEM_TYPE: {}}, "description": "The CSR (PEM)."}},
)
async def create_csr(body: CsrBody, manager: Manager, by: By) -> Response:
    """A new key and CSR for the chat domain (overwrites any CSR in progress); returns the PEM."""
    pem = await manager.create_csr(
        country=body.country,
        city=body.city,
        state=body.state,
        organization=body.organization,
        unit=body.unit,
        by=by,
    )
    return Response(
        pem,
        media_type=PEM_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{manager.domain}.csr"'},
    )


@router.get("/certificates/csr", summary="Read the CSR in progress")
async def get_csr(manager: Manager) -> CsrOut:
    """The subject fields of the CSR in progress (404 when there is none)."""
    d = manager.csr_details()
    if d is None:
        raise NotFoundError("No CSR in progress")
    return CsrOut(
        domain=d.domain,
        country=d.country,
        city=d.city,
        state=d.state,
        organization=d.organization,
        unit=d.unit,
        created_at=d.created_at,
    )


@router.post("/certificates/apns", summary="Upload a push certificate")
async def upload_apns(body: ApnsBody, manager: Manager, by: By) -> ApnsOut:
    """Check the PKCS#12 file opens with the password, and store it (the password is not kept)."""
    try:
        data = base64.b64decode(body.certificate, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("certificate: not valid base64") from None
    details = await manager.upload_apns(
        data,
        body.password,
        is_production=body.production,
        is_next_gen=body.next_gen,
        by=by,
    )
    return _apns_out(details)


@router.get("/certificates/apns", summary="List the push certificates")
async def list_apns(manager: Manager) -> ApnsList:
    """The stored push certificates (legacy, next-gen)."""
    return ApnsList(certificates=[_apns_out(d) for d in manager.apns_details()])
