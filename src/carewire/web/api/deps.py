"""What the API's handlers depend on: the services, and the caller's token (RFC 6750).

Every request carries ``Authorization: Bearer <token>``. A missing, unknown,
revoked or malformed token is a 401 with ``WWW-Authenticate: Bearer``; a
read-only token may only use the safe methods (GET, HEAD, OPTIONS), anything
else is a 403. Both refusals are recorded in the audit trail (``api.auth``,
failure, with the caller's address), and handlers record every write they
complete through :data:`Audit`. Invalid tokens count toward the caller's
address in the authentication throttle (:mod:`carewire.security.throttle`):
an address over its limit gets 429 without its token being looked at, and
those refusals are aggregated in the audit trail instead of one row each.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from carewire.adapters.manager import AdapterManager
from carewire.adapters.xmpp.gateway import GatewaySlot
from carewire.datasets.model import Origin
from carewire.datasets.registry import Registry
from carewire.datasets.service import DatasetService
from carewire.directory.model import Caller, CallerRole, OrganisationId
from carewire.directory.service import DirectoryService
from carewire.errors import UnavailableError
from carewire.features.coverage.desk import CoverageDesk
from carewire.federation.service import FederationAdmin
from carewire.identity.ldap.service import LdapService
from carewire.identity.scim.tokens import ScimTokens
from carewire.push.appserver import PushAppServer
from carewire.rules.engine import RuleEngine
from carewire.rules.service import RuleService
from carewire.security.audit import AuditEvent, AuditTrail, Channel, Outcome
from carewire.security.cert_manager import CertificateManager
from carewire.security.throttle import AuthThrottle, ThrottledError
from carewire.security.tokens import AuthError, ForbiddenError, TokenInfo, TokenService

log = logging.getLogger(__name__)

#: Methods that change nothing (RFC 9110 §9.2.1), open to read-only tokens.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="cw_…",
    description="An API token from `carewire token create NAME`.",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiServices:
    """The services the API calls (never stores).

    Attributes:
        registry: Dataset definitions.
        datasets: Record reads and writes.
        tokens: API tokens.
        adapters: Adapter kinds and instances.
        rules: Rules (validated when saved).
        engine: The rules engine (for dry runs).
        audit: The audit trail (None records nothing: only for tests of other things).
        certificates: The certificate manager (None: the certificate resources answer 404).
        chat: Where the running XMPP server's gateway is attached (presence of users).
        directory: The organisation directory (None: its resources answer 503).
        coverage: Busy users and held messages (None: ``/coverage`` answers 503).
        throttle: Failed authentications per address (None: no throttling).
        push: The push app server (None: ``/push`` answers 503).
        ldap: Directory sync from LDAP (None: its routes answer 503).
        scim: SCIM tokens of the organisations (None: ``/scim-tokens`` answers 503).
        federation: Trusted domains and stream status (None: ``/federation`` answers 503).
    """

    registry: Registry
    datasets: DatasetService
    tokens: TokenService
    adapters: AdapterManager
    rules: RuleService
    engine: RuleEngine
    audit: AuditTrail | None = None
    certificates: CertificateManager | None = None
    chat: GatewaySlot | None = None
    directory: DirectoryService | None = None
    coverage: CoverageDesk | None = None
    throttle: AuthThrottle | None = None
    push: PushAppServer | None = None
    ldap: LdapService | None = None
    scim: ScimTokens | None = None
    federation: FederationAdmin | None = None


def get_services(request: Request) -> ApiServices:
    """The services of the app handling ``request`` (set by :func:`carewire.web.api.create_api`)."""
    return cast(ApiServices, request.app.state.services)


Services = Annotated[ApiServices, Depends(get_services)]


async def authorize(
    request: Request,
    services: Services,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TokenInfo:
    """The caller's token, if it is valid and its role allows the request's method.

    Raises:
        AuthError: No bearer token, or not a valid one.
        ForbiddenError: A read-only token on a method that writes.
        ThrottledError: The caller's address failed too often lately.
    """
    throttle = services.throttle
    if throttle is not None and not await throttle.admit(remote_ip(request), Channel.API):
        raise ThrottledError("too many failed authentications from this address; try later")
    try:
        if credentials is None:
            raise AuthError("this API needs an 'Authorization: Bearer <token>' header")
        token = await services.tokens.verify(credentials.credentials)
    except AuthError as exc:
        log.info("API request refused: %s", exc.message)
        if throttle is not None:
            await throttle.failed(remote_ip(request), Channel.API)
        await _refused(request, services, "api", exc.message)
        raise
    if request.method not in SAFE_METHODS and not token.role.can_write:
        refusal = ForbiddenError(f"the token {token.name!r} is {token.role.value} and cannot write")
        await _refused(request, services, f"api:{token.name}", refusal.message)
        raise refusal
    return token


def remote_ip(request: Request) -> str:
    """The caller's address (the TCP peer: proxy headers are not trusted)."""
    return request.client.host if request.client is not None else ""


async def _refused(request: Request, services: ApiServices, actor: str, reason: str) -> None:
    """Record a refused request (401/403) as an ``api.auth`` failure; never the token."""
    if services.audit is None:
        return
    await services.audit.record(
        AuditEvent(
            actor=actor,
            channel=Channel.API,
            action="api.auth",
            target=f"{request.method} {request.url.path}",
            outcome=Outcome.FAILURE,
            remote_ip=remote_ip(request),
            details={"reason": reason},
        )
    )


CurrentToken = Annotated[TokenInfo, Depends(authorize)]


def origin_of(token: TokenInfo) -> Origin:
    """Who a write through the API is recorded as."""
    return Origin(actor=f"api:{token.name}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiAudit:
    """Records one request's acts as its token (``api:<token name>``) from its address."""

    trail: AuditTrail | None
    actor: str
    remote_ip: str

    async def __call__(
        self, action: str, target: str, *, details: Mapping[str, object] | None = None
    ) -> None:
        """Record a completed write: ``action`` on ``target`` (identifiers only, never values)."""
        if self.trail is None:
            return
        await self.trail.record(
            AuditEvent(
                actor=self.actor,
                channel=Channel.API,
                action=action,
                target=target,
                remote_ip=self.remote_ip,
                details=details or {},
            )
        )


def get_audit(request: Request, services: Services, token: CurrentToken) -> ApiAudit:
    """The recorder for the request's acts."""
    return ApiAudit(trail=services.audit, actor=f"api:{token.name}", remote_ip=remote_ip(request))


Audit = Annotated[ApiAudit, Depends(get_audit)]


def caller_of(token: TokenInfo, remote_ip: str = "") -> Caller:
    """Who a token is to the organisation directory.

    A read-only token is an auditor (of its organisation, or of all); an admin
    token with an organisation is that organisation's administrator (anything
    of another organisation is "not found"); an admin token without one acts as
    a system administrator. Acts are recorded as ``api:<token name>`` from
    ``remote_ip``.
    """
    if not token.role.can_write:
        role = CallerRole.AUDITOR
    elif token.organisation_id is None:
        role = CallerRole.SYSTEM_ADMIN
    else:
        role = CallerRole.ORG_ADMIN
    organisation = None if token.organisation_id is None else OrganisationId(token.organisation_id)
    return Caller(
        actor=f"api:{token.name}",
        role=role,
        organisation_id=organisation,
        channel=Channel.API,
        remote_ip=remote_ip,
    )


def get_caller(request: Request, token: CurrentToken) -> Caller:
    """The request's caller for the directory (its token, from the peer's address)."""
    return caller_of(token, remote_ip(request))


DirectoryCaller = Annotated[Caller, Depends(get_caller)]


def get_directory(services: Services) -> DirectoryService:
    """The organisation directory.

    Raises:
        UnavailableError: The API is served without it.
    """
    if services.directory is None:
        raise UnavailableError("the organisation directory is not served here")
    return services.directory


Directory = Annotated[DirectoryService, Depends(get_directory)]


def get_ldap(services: Services) -> LdapService:
    """Directory sync from LDAP.

    Raises:
        UnavailableError: The API is served without it.
    """
    if services.ldap is None:
        raise UnavailableError("directory sync is not served here")
    return services.ldap


Ldap = Annotated[LdapService, Depends(get_ldap)]


def changes(before: object, after: object) -> dict[str, object]:
    """``details`` of an administrative change: the configuration before and after it."""
    return {"before": before, "after": after}
