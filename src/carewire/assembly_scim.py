"""SCIM provisioning's assembly (docs/scim.md): built on an :class:`~carewire.assembly.Assembly`.

Kept apart from :mod:`carewire.assembly` (within its size bound). The server
builds it once for the HTTPS app; the CLI and the console's token page each
build their own, on the same database; it holds no state of its own.
"""

from __future__ import annotations

from carewire.assembly import Assembly
from carewire.identity.scim.service import ScimProvisioning
from carewire.storage.scim import SqlScimStore


def scim_provisioning(assembly: Assembly) -> ScimProvisioning:
    """SCIM provisioning on the assembly's directory, audit trail, throttle and database."""
    return ScimProvisioning(
        directory=assembly.directory,
        store=SqlScimStore(assembly.db),
        audit=assembly.audit,
        clock=assembly.clock,
        throttle=assembly.throttle,
    )
