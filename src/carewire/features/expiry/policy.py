"""Each message's lifetime on clients: the sending organisation's Message Expiration Time.

The seed's rule: "If the recipients of a message span multiple organizations,
[the server] honors the message duration setting of the sending
organization"; senders without an organisation (system messages, accounts
without a directory profile) get the default, 7 days. Routing asks for every
message, so the answer comes from memory: the directory index gives the
sender's organisation, and the organisations' settings are read at start and
again every :data:`REFRESH_INTERVAL` seconds, so a changed setting applies to
messages sent from then on (within a minute).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from carewire.directory.model import DEFAULT_EXPIRATION, SYSTEM_CALLER, OrganisationId
from carewire.directory.service import DirectoryService

log = logging.getLogger(__name__)

#: Seconds between re-reads of the organisations' settings.
REFRESH_INTERVAL = 60.0
DEFAULT_LIFETIME = DEFAULT_EXPIRATION.duration


class OrganisationLifetimes:
    """Message lifetimes by sender, from the directory (shared with tracking)."""

    def __init__(self, directory: DirectoryService, domain: str) -> None:
        self.directory = directory
        self.domain = domain
        self.by_org: dict[OrganisationId, timedelta] = {}

    async def refresh(self, _payload: object = None) -> None:
        """Re-read every organisation's Message Expiration Time."""
        orgs = await self.directory.organisations.list_visible(SYSTEM_CALLER)
        self.by_org = {o.id: o.settings.message_expiration.duration for o in orgs}
        log.debug("message lifetimes of %d organisations read", len(self.by_org))

    def lifetime(self, sender: str | None) -> timedelta:
        """How long a message from ``sender`` (a bare JID; None: the system) stays on clients."""
        if sender is None:
            return DEFAULT_LIFETIME
        login, at, domain = sender.partition("@")
        if not at or domain != self.domain:
            return DEFAULT_LIFETIME
        org = self.directory.index.organisation_of(login)
        if org is None:
            return DEFAULT_LIFETIME
        return self.by_org.get(org, DEFAULT_LIFETIME)
