"""SCIM provisioning (RFC 7644): the organisations' tokens, and the requests of identity providers.

:class:`ScimProvisioning` is what the console, the API and the HTTPS listener hold. The
protocol itself (discovery documents, scim2-server's handler over the directory) is in
:mod:`carewire.identity.scim.engine`, built on the first request: scim2's models are a
large part of a process's start-up, and most processes (the CLI, a server nobody
provisions) never serve SCIM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from carewire.clock import Clock
from carewire.directory.service import DirectoryService
from carewire.identity.scim.store import ScimStore
from carewire.identity.scim.tokens import ScimTokens
from carewire.security.audit import AuditTrail
from carewire.security.throttle import AuthThrottle

if TYPE_CHECKING:
    from scim2_server.requests import ScimRequest
    from scim2_server.responses import ScimResponse

    from carewire.identity.scim.engine import ScimEngine

#: Where the service is served, below the HTTPS listener's address.
SCIM_PATH = "/scim/v2"


class ScimProvisioning:
    """SCIM provisioning: the tokens, and the requests of identity providers.

    Attributes:
        tokens: The organisations' SCIM tokens.
        base_url: Where the service is served (``https://host:8443/scim/v2``).
    """

    def __init__(
        self,
        *,
        directory: DirectoryService,
        store: ScimStore,
        audit: AuditTrail,
        clock: Clock,
        throttle: AuthThrottle | None = None,
    ) -> None:
        """Serve ``directory``'s organisations; URLs start with its link base."""
        self.tokens = ScimTokens(store, directory, audit, clock)
        self.base_url = directory.config.links + SCIM_PATH
        self._parts = (directory, store, audit, clock, throttle)
        self._engine: ScimEngine | None = None

    @property
    def engine(self) -> ScimEngine:
        """The protocol engine (imported and built on first use)."""
        if self._engine is None:
            from carewire.identity.scim.engine import ScimEngine

            directory, store, audit, clock, throttle = self._parts
            self._engine = ScimEngine(
                directory=directory,
                store=store,
                audit=audit,
                clock=clock,
                throttle=throttle,
                tokens=self.tokens,
                base_url=self.base_url,
            )
        return self._engine

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
        return self.engine.request(method, path, query=query, headers=headers, body=body)

    async def handle(self, request: ScimRequest, *, remote_ip: str = "") -> ScimResponse:
        """Serve one request: its token, then the operation (errors as RFC 7644 §3.12)."""
        return await self.engine.handle(request, remote_ip=remote_ip)
