"""SCIM provisioning's assembly (docs/scim.md): built on an :class:`~carewire.assembly.Assembly`.

Kept apart from :mod:`carewire.assembly` (within its size bound). The server
builds it once for the HTTPS app; the CLI and the console's token page each
build their own, on the same database; it holds no state of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from carewire.assembly import Assembly
from carewire.identity.scim.tokens import ScimTokens
from carewire.storage.scim import SqlScimStore

if TYPE_CHECKING:
    from carewire.identity.scim.service import ScimProvisioning


def scim_tokens(assembly: Assembly) -> ScimTokens:
    """The organisations' SCIM tokens alone (the CLI's ``scim token``), without the protocol.

    The protocol side (scim2-server and its models) takes half a second to import: a
    ``carewire`` command that only manages tokens does not pay for it.
    """
    return ScimTokens(SqlScimStore(assembly.db), assembly.directory, assembly.audit, assembly.clock)


def scim_provisioning(assembly: Assembly) -> ScimProvisioning:
    """SCIM provisioning on the assembly's directory, audit trail, throttle and database."""
    from carewire.identity.scim.service import ScimProvisioning

    return ScimProvisioning(
        directory=assembly.directory,
        store=SqlScimStore(assembly.db),
        audit=assembly.audit,
        clock=assembly.clock,
        throttle=assembly.throttle,
    )
