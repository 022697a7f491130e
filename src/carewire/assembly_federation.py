"""Federation administration's assembly (docs/federation-admin.md).

Kept apart from :mod:`carewire.assembly` (within its size bound). The
assembly builds one :class:`~carewire.federation.service.FederationAdmin` per
process, on its database: the server's streams, API and console share it, so a
change made through any of them reaches the streams at once.
"""

from __future__ import annotations

import platform

from carewire.clock import Clock
from carewire.federation.service import FederationAdmin
from carewire.federation.status import StatusBoard
from carewire.federation.trust import TrustedDomains
from carewire.security.audit import AuditTrail
from carewire.storage.database import Database
from carewire.storage.federation import SqlStatusStore, SqlTrustStore


async def federation_admin(
    db: Database, audit: AuditTrail, clock: Clock, *, domain: str, node: str | None = None
) -> FederationAdmin:
    """The trusted domains (loaded) and the status board, on ``db``.

    Args:
        db: The database.
        audit: Where changes are recorded.
        clock: The clock.
        domain: This server's chat domain (never a remote domain).
        node: This node's name in status rows (the host name unless given).
    """
    trust = TrustedDomains(SqlTrustStore(db), audit, clock, local_domain=domain)
    await trust.load()
    status = StatusBoard(SqlStatusStore(db), clock, node=platform.node() if node is None else node)
    return FederationAdmin(trust=trust, status=status)
