"""What the console's pages call: the services the composition root hands the console."""

from __future__ import annotations

from dataclasses import dataclass

from carewire.adapters.manager import AdapterManager
from carewire.datasets.registry import Registry
from carewire.datasets.service import DatasetService
from carewire.directory.service import DirectoryService
from carewire.features.coverage.desk import CoverageDesk
from carewire.federation.service import FederationAdmin
from carewire.identity.ldap.service import LdapService
from carewire.identity.scim.service import ScimProvisioning
from carewire.mail import Mailer
from carewire.monitoring.model import StatusSource
from carewire.rules.engine import RuleEngine
from carewire.rules.service import RuleService
from carewire.security.audit import AuditTrail
from carewire.security.cert_manager import CertificateManager
from carewire.security.console_auth import ConsoleAccounts, ConsoleConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleServices:
    """What the console's pages call.

    Attributes:
        accounts: Console users, sessions and password resets.
        audit: The audit trail (for the audit pages to come; accounts record their own acts).
        mailer: Where reset links and confirmations go.
        config: Timeouts and the address used in mailed links.
        registry: Dataset definitions (None in tests of the sign-in pages alone).
        datasets: Records.
        adapters: Adapter kinds and instances.
        rules: Rules.
        engine: The rules engine (dry runs).
        certificates: The XMPP certificate manager.
        directory: The organisation directory (organisations, users, groups, invitations).
        coverage: Busy users and held messages (the Coverage panel of a user's profile).
        ldap: Directory sync from LDAP (the Integrations page; None: the page is a 404).
        scim: SCIM provisioning (the organisations' SCIM token pages; None: not served).
        federation: Trusted domains and stream status (None: the Federation page is a 404).
        status: The running system's figures for the dashboard (None: not shown).
    """

    accounts: ConsoleAccounts
    audit: AuditTrail
    mailer: Mailer
    config: ConsoleConfig
    registry: Registry | None = None
    datasets: DatasetService | None = None
    adapters: AdapterManager | None = None
    rules: RuleService | None = None
    engine: RuleEngine | None = None
    certificates: CertificateManager | None = None
    directory: DirectoryService | None = None
    coverage: CoverageDesk | None = None
    ldap: LdapService | None = None
    scim: ScimProvisioning | None = None
    federation: FederationAdmin | None = None
    status: StatusSource | None = None
