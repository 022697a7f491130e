"""Federation administration as one service: trusted domains and the status board.

What the composition root builds once (:mod:`carewire.assembly_federation`) and
hands to the server-to-server streams (as
:class:`~carewire.core.federation.FederationSettings` and
:class:`~carewire.core.federation.FederationStatusSink`), the REST API, the
console and the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass

from carewire.federation.status import StatusBoard
from carewire.federation.trust import TrustedDomains


@dataclass(frozen=True, slots=True, kw_only=True)
class FederationAdmin:
    """The trusted domains (policy, allow-list, pins) and the streams' status board.

    Attributes:
        trust: The policy and pinned certificates; the streams' ``FederationSettings``.
        status: The per-domain status; the streams' ``FederationStatusSink``.
    """

    trust: TrustedDomains
    status: StatusBoard

    async def start(self) -> None:
        """Poll for changes made elsewhere, and write status reports behind."""
        await self.trust.start()
        await self.status.start()

    async def close(self) -> None:
        """Stop both, writing pending status reports."""
        await self.status.close()
        await self.trust.close()
