"""The SCIM protocol engine (RFC 7644) on scim2-server: discovery, and one request served.

Imported on the first SCIM request only (scim2's models take a noticeable part of a
process's start-up): :class:`~carewire.identity.scim.service.ScimProvisioning` builds a
:class:`ScimEngine` when an identity provider first calls.

:func:`scim_provider` describes what is served (RFC 7644 §4): Users with the
enterprise extension (``employeeNumber`` is the directory's StaffID, read-only)
and Groups; PATCH, sorting, filtering (at most :data:`MAX_RESULTS` a page) and
ETags; no bulk requests, no password change through ``/Me`` (there is no
``/Me``: a token is an organisation's, not a user's). :class:`ScimProvisioning`
authenticates a request's bearer token and serves it with scim2-server's
handler over a :class:`~carewire.identity.scim.backend.DirectoryBackend` of the
token's organisation.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    EnterpriseUser,
    ETag,
    Filter,
    Group,
    Mutability,
    Pagination,
    Patch,
    PayloadTooLargeException,
    ResourceType,
    SCIMException,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    UnauthorizedException,
    User,
)
from scim2_server.handler import AsyncScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.service import ScimService

from carewire.clock import Clock
from carewire.directory.model import Caller, CallerRole, OrganisationId
from carewire.directory.service import DirectoryService
from carewire.identity.scim.backend import BackendServices, DirectoryBackend
from carewire.identity.scim.model import (
    DEFAULT_PAGE_SIZE,
    MAX_BODY_BYTES,
    MAX_RESULTS,
    ScimToken,
    ScimTokenError,
)
from carewire.identity.scim.store import ScimStore
from carewire.identity.scim.tokens import ScimTokens
from carewire.security.audit import AuditEvent, AuditTrail, Channel, Outcome
from carewire.security.throttle import AuthThrottle

log = logging.getLogger(__name__)


class StaffEnterpriseUser(EnterpriseUser):
    """The enterprise extension; ``employeeNumber`` is the StaffID the directory hands out."""

    employee_number: Annotated[str | None, Mutability.read_only] = None


def scim_provider() -> ScimProvider:
    """What the service serves and declares (its three discovery endpoints, RFC 7644 §4)."""
    config = ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=True),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        pagination=Pagination(
            index=True,
            cursor=False,
            default_page_size=DEFAULT_PAGE_SIZE,
            max_page_size=MAX_RESULTS,
        ),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="Bearer token",
                description="A SCIM token of the organisation (carewire scim token create ORG)",
                primary=True,
            )
        ],
    )
    return ScimProvider(
        models=[User, StaffEnterpriseUser, Group],
        resource_types=[
            ResourceType.from_resource(User[StaffEnterpriseUser]),
            ResourceType.from_resource(Group),
        ],
        config=config,
    )


class _Service(ScimService):
    """scim2-server's service; every URL starts at the configured base, never a Host header."""


class ScimEngine:
    """Requests of identity providers, served for the token they present."""

    def __init__(
        self,
        *,
        directory: DirectoryService,
        store: ScimStore,
        audit: AuditTrail,
        clock: Clock,
        throttle: AuthThrottle | None = None,
        tokens: ScimTokens,
        base_url: str,
    ) -> None:
        """Serve ``directory``'s organisations; URLs start at ``base_url``."""
        self.tokens = tokens
        self.base_url = base_url
        self._audit = audit
        self._throttle = throttle
        provider = scim_provider()
        self.service = _Service(provider)
        self._backend = BackendServices(
            directory=directory,
            store=store,
            clock=clock,
            domain=directory.config.domain,
            user_model=User[StaffEnterpriseUser],
            group_model=Group,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> ScimRequest:
        """A request to ``path`` (below :data:`SCIM_PATH`) for :meth:`handle`."""
        return ScimRequest(
            method=method,
            base_url=self.base_url,
            path=path,
            query=query or {},
            headers=headers or [],
            body=body,
        )

    async def handle(self, request: ScimRequest, *, remote_ip: str = "") -> ScimResponse:
        """Serve one request: its token, then the operation (errors as RFC 7644 §3.12)."""
        try:
            if len(request.body) > MAX_BODY_BYTES:
                raise PayloadTooLargeException(
                    detail=f"a request body has at most {MAX_BODY_BYTES} bytes"
                )
            if self._needs_token(request):
                token = await self._authenticate(request, remote_ip)
                caller = _caller_of(token, remote_ip)
                backend = DirectoryBackend(self._backend, token, caller)
            else:
                backend = DirectoryBackend(self._backend, _NO_TOKEN, _NO_CALLER)
            response = await AsyncScimHandler(self.service, backend).handle(request)
        except SCIMException as exc:
            log.info("SCIM %s %s refused: %s %s", request.method, request.path, exc.status, exc)
            response = self.service.error_response(exc)
        except Exception as exc:  # supervisor: one request's bug must not end the server
            log.exception("SCIM %s %s failed", request.method, request.path)
            response = self.service.error_response(exc)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    def _needs_token(self, request: ScimRequest) -> bool:
        try:
            operation = self.service.match(request).operation
        except SCIMException:
            return True
        return operation.value != "service_provider_config"

    async def _authenticate(self, request: ScimRequest, remote_ip: str) -> ScimToken:
        throttle = self._throttle
        if throttle is not None and not await throttle.admit(remote_ip, Channel.API):
            raise UnauthorizedException(detail="too many failed authentications; try later")
        scheme, _, credentials = (request.header("Authorization") or "").partition(" ")
        try:
            if scheme.lower() != "bearer" or not credentials.strip():
                raise ScimTokenError("SCIM needs an 'Authorization: Bearer <token>' header")
            return await self.tokens.verify(credentials.strip())
        except ScimTokenError as exc:
            if throttle is not None:
                await throttle.failed(remote_ip, Channel.API)
            await self._audit.record(
                AuditEvent(
                    actor="scim",
                    channel=Channel.API,
                    action="scim.auth",
                    target=f"{request.method} {request.path}",
                    outcome=Outcome.FAILURE,
                    remote_ip=remote_ip,
                    details={"reason": exc.message},
                )
            )
            raise UnauthorizedException(detail=exc.message) from None


def _caller_of(token: ScimToken, remote_ip: str) -> Caller:
    """The token as a directory caller: its organisation's administrator, recorded as itself."""
    return Caller(
        actor=token.actor,
        role=CallerRole.ORG_ADMIN,
        organisation_id=OrganisationId(token.organisation_id),
        channel=Channel.API,
        remote_ip=remote_ip,
    )


# Discovery needs no token and reaches no resource: a backend of no organisation.
_NO_CALLER = Caller(actor="scim", role=CallerRole.AUDITOR, organisation_id=OrganisationId(-1))
_NO_TOKEN = ScimToken(
    id=0,
    organisation_id=-1,
    name="",
    invite_users=False,
    created_by="",
    created_at=datetime(1970, 1, 1, tzinfo=UTC),
)
