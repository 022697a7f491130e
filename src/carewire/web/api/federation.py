"""The ``/federation`` resources: trusted domains, pinned peer certificates, stream status.

Reading needs any token, changing needs an admin token (see :mod:`.deps`).
Everything goes through :class:`~carewire.federation.service.FederationAdmin`
(docs/federation-admin.md), which records each change in the audit trail and
tells the server-to-server streams at once. Refusals are problems: an invalid
domain is a 422 ``invalid-domain``; a file that is not a certificate, holds a
private key or has expired is a 422 ``invalid-certificate``; an unknown pin or
partner a 404 (``unknown-certificate``, ``unknown-domain``); removing the last
partner domain a 409 ``last-allowed-domain`` (it would open federation to all).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from carewire.errors import UnavailableError, ValidationError
from carewire.federation.model import PinnedCertificate, PolicyRecord, ReportedStatus
from carewire.federation.peer_certificates import MAX_PEER_CERTIFICATE_BYTES
from carewire.federation.service import DomainOverview, FederationAdmin
from carewire.security.audit import Channel
from carewire.security.cert_manager import Caller
from carewire.web.api.deps import CurrentToken, Services, authorize, remote_ip

router = APIRouter(tags=["federation"], dependencies=[Depends(authorize)])

PEM_TYPE = "application/x-pem-file"
DER_TYPE = "application/pkix-cert"
DomainParam = Annotated[
    str, Path(description="A remote domain (lower case; IDNA names in either form).")
]


class StreamOut(BaseModel):
    """One stream with a remote domain, as its node last reported it."""

    direction: str = Field(description="in or out.")
    node: str = Field(description="The Carewire node holding the stream.")
    connected: bool
    auth: str | None = Field(None, description="certificate (SASL EXTERNAL) or dialback.")
    tls_version: str | None = None
    fingerprint_sha256: str | None = Field(None, description="The peer certificate's SHA-256.")
    certificate_not_after: datetime | None = None
    since: datetime | None = Field(None, description="When it was established (or closed).")
    last_error: str | None = None
    last_error_at: datetime | None = None
    queued: int = Field(description="Outgoing stanzas waiting for the stream.")
    stanzas_in: int
    stanzas_out: int
    updated_at: datetime


class DomainOut(BaseModel):
    """A remote domain: whether it may federate, its pins and its streams."""

    domain: str
    connected: bool = Field(description="Whether any stream with it is up.")
    allowed: bool = Field(description="Whether the policy lets it federate.")
    listed: bool = Field(description="Whether it is on the allow-list itself.")
    pinned_certificates: int
    streams: list[StreamOut]


class StatusOut(BaseModel):
    """Every remote domain with a stream, a partner entry or a pinned certificate."""

    domains: list[DomainOut]


class AllowedOut(BaseModel):
    """A partner domain on the allow-list."""

    domain: str
    added_by: str
    added_at: datetime


class PolicyOut(BaseModel):
    """The federation policy."""

    certificates_only: bool = Field(description="Only certificate authentication (no dialback).")
    open: bool = Field(description="True when the allow-list is empty: any domain may federate.")
    allow: list[AllowedOut]
    updated_by: str | None = None
    updated_at: datetime | None = None


class PolicyIn(BaseModel):
    """A new policy; without ``allow`` the allow-list is left as it is."""

    model_config = ConfigDict(extra="forbid")

    certificates_only: bool
    allow: list[Annotated[str, Field(max_length=1023)]] | None = Field(
        None, max_length=1000, description="Partner domains; an empty list opens federation."
    )


class DomainIn(BaseModel):
    """A partner domain to add."""

    model_config = ConfigDict(extra="forbid")

    domain: str = Field(max_length=1023, examples=["hospital-b.example"])


class PinIn(BaseModel):
    """A peer certificate to pin."""

    model_config = ConfigDict(extra="forbid")

    pem: str = Field(description="The other server's certificate (PEM); never its key.")


class PinOut(BaseModel):
    """A certificate pinned for a remote domain."""

    domain: str
    sha256: str = Field(description="SHA-256 of the DER certificate, lowercase hex.")
    subject: str
    not_after: datetime
    uploaded_by: str
    uploaded_at: datetime
    pem: str


class PinnedOut(PinOut):
    """A certificate just pinned, and what its uploader should know."""

    warnings: list[str]


class PinList(BaseModel):
    """Pinned certificates."""

    certificates: list[PinOut]


def _admin(services: Services) -> FederationAdmin:
    if services.federation is None:
        raise UnavailableError("federation administration is not available here")
    return services.federation


def _caller(request: Request, token: CurrentToken) -> Caller:
    return Caller(actor=f"api:{token.name}", channel=Channel.API, remote_ip=remote_ip(request))


Admin = Annotated[FederationAdmin, Depends(_admin)]
By = Annotated[Caller, Depends(_caller)]


def _stream(r: ReportedStatus) -> StreamOut:
    s = r.status
    return StreamOut(
        direction=s.direction,
        node=s.node,
        connected=s.connected,
        auth=s.auth,
        tls_version=s.tls_version,
        fingerprint_sha256=s.fingerprint,
        certificate_not_after=s.certificate_not_after,
        since=s.since,
        last_error=s.last_error,
        last_error_at=s.last_error_at,
        queued=s.queued,
        stanzas_in=s.stanzas_in,
        stanzas_out=s.stanzas_out,
        updated_at=r.updated_at,
    )


def _domain(d: DomainOverview) -> DomainOut:
    return DomainOut(
        domain=d.domain,
        connected=d.is_connected,
        allowed=d.is_allowed,
        listed=d.is_listed,
        pinned_certificates=d.pins,
        streams=[_stream(s) for s in d.streams],
    )


def _policy(p: PolicyRecord) -> PolicyOut:
    return PolicyOut(
        certificates_only=p.certificates_only,
        open=not p.allow,
        allow=[
            AllowedOut(domain=a.domain, added_by=a.added_by, added_at=a.added_at) for a in p.allow
        ],
        updated_by=p.updated_by,
        updated_at=p.updated_at,
    )


def _pin(p: PinnedCertificate) -> PinOut:
    return PinOut(
        domain=p.domain,
        sha256=p.sha256,
        subject=p.subject,
        not_after=p.not_after,
        uploaded_by=p.uploaded_by,
        uploaded_at=p.uploaded_at,
        pem=p.pem,
    )


@router.get("/federation/status", summary="Federation status per remote domain")
async def get_status(admin: Admin) -> StatusOut:
    """Connected or not, direction, authentication, peer certificate, last error, queue."""
    return StatusOut(domains=[_domain(d) for d in await admin.overview()])


@router.get("/federation/policy", summary="Read the federation policy")
async def get_policy(admin: Admin) -> PolicyOut:
    """Certificates only or dialback allowed; the allow-list (empty: open to any domain)."""
    return _policy(await admin.trust.read_policy())


@router.put("/federation/policy", summary="Set the federation policy")
async def put_policy(body: PolicyIn, admin: Admin, by: By) -> PolicyOut:
    """Set "certificates only" and, when ``allow`` is given, replace the allow-list."""
    return _policy(
        await admin.trust.set_policy(
            certificates_only=body.certificates_only, allow=body.allow, by=by
        )
    )


@router.post(
    "/federation/allowed-domains",
    summary="Add a partner domain",
    status_code=201,
    responses={200: {"model": PolicyOut, "description": "It was on the list already."}},
)
async def add_allowed(body: DomainIn, admin: Admin, by: By, response: Response) -> PolicyOut:
    """Put a domain on the allow-list; from then on only listed domains federate."""
    _, added = await admin.trust.allow(body.domain, by=by)
    if not added:
        response.status_code = 200
    return _policy(await admin.trust.read_policy())


@router.delete("/federation/allowed-domains/{domain}", summary="Remove a partner domain")
async def remove_allowed(domain: DomainParam, admin: Admin, by: By) -> PolicyOut:
    """Take a domain off the allow-list (not the last one: see ``PUT /federation/policy``)."""
    await admin.trust.disallow(domain, by=by)
    return _policy(await admin.trust.read_policy())


@router.get("/federation/certificates", summary="List every pinned peer certificate")
async def list_all_pins(admin: Admin) -> PinList:
    """The certificates pinned for every remote domain."""
    return PinList(certificates=[_pin(p) for p in await admin.trust.certificates()])


@router.get(
    "/federation/domains/{domain}/certificates", summary="List a domain's pinned certificates"
)
async def list_pins(domain: DomainParam, admin: Admin) -> PinList:
    """The certificates pinned for ``domain``."""
    return PinList(certificates=[_pin(p) for p in await admin.trust.certificates(domain)])


async def _pin_body(request: Request) -> bytes:
    raw = await request.body()
    if len(raw) > MAX_PEER_CERTIFICATE_BYTES:
        raise ValidationError(
            f"the file is larger than {MAX_PEER_CERTIFICATE_BYTES // 1024} KiB",
            code="invalid-certificate",
        )
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return raw
    try:
        return PinIn.model_validate(json.loads(raw)).pem.encode("utf-8")
    except ValueError as exc:  # json.JSONDecodeError and pydantic's ValidationError
        raise ValidationError(f"the body is not a valid upload: {exc}") from None


@router.post(
    "/federation/domains/{domain}/certificates",
    summary="Pin a peer certificate for a domain",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                PEM_TYPE: {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
                DER_TYPE: {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": PinIn.model_json_schema()},
            },
        }
    },
)
async def add_pin(domain: DomainParam, request: Request, admin: Admin, by: By) -> PinnedOut:
    """Upload the other server's certificate (PEM, DER, or JSON ``{"pem"}``) for ``domain``.

    A peer presenting it is authenticated for ``domain`` even when no trusted CA issued it.
    """
    outcome = await admin.trust.pin(domain, await _pin_body(request), by=by)
    return PinnedOut(**_pin(outcome.pin).model_dump(), warnings=list(outcome.warnings))


@router.delete(
    "/federation/domains/{domain}/certificates/{sha256}", summary="Unpin a peer certificate"
)
async def remove_pin(
    domain: DomainParam,
    sha256: Annotated[str, Path(description="The SHA-256 fingerprint (hex, colons allowed).")],
    admin: Admin,
    by: By,
) -> PinOut:
    """Remove a pinned certificate; streams it authenticated are closed."""
    return _pin(await admin.trust.unpin(domain, sha256, by=by))
