"""Console sign-in by LDAP: an administrator's console password is their directory password.

An organisation administrator's console account is named by their e-mail
address and carries their organisation (docs/directory.md, "Administrator
role"). When that address belongs to a user of the same organisation who is
synced from its LDAP directory, and the organisation signs in by LDAP, the
console checks the password by a simple bind as the user's DN over TLS
(:meth:`LdapService.check_password`), under the console's own lockout rules
(:mod:`carewire.security.console_auth`). Everyone else (system
administrators, auditors, administrators of other organisations or not
synced) keeps the console's own password.
"""

from __future__ import annotations

from carewire.directory.service import DirectoryService
from carewire.identity.ldap.service import LdapService
from carewire.security.console_auth import ConsoleUser, DirectoryVerdict


class LdapConsolePasswords:
    """The console's :class:`~carewire.security.console_auth.DirectoryPasswords` for LDAP."""

    def __init__(self, ldap: LdapService, directory: DirectoryService) -> None:
        """Look users up in ``directory``, check passwords with ``ldap``."""
        self._ldap = ldap
        self._directory = directory

    async def _login(self, user: ConsoleUser) -> str | None:
        """The synced directory login whose password ``user`` gives (None: not one)."""
        if user.organisation_id is None or not user.email:
            return None
        owners = await self._directory.synced.email_owners([user.email])
        found = owners.get(user.email)
        if found is None or found[1] != user.organisation_id:
            return None
        login = found[0]
        return login if await self._ldap.is_external(login) else None

    async def is_external(self, user: ConsoleUser) -> bool:
        """Whether ``user`` is a synced user of an organisation that signs in by LDAP."""
        return await self._login(user) is not None

    async def check_password(self, user: ConsoleUser, password: str) -> DirectoryVerdict:
        """A simple bind as the user's DN (an empty password is refused before any bind)."""
        login = await self._login(user)
        if login is None:
            return DirectoryVerdict.WRONG
        verdict = await self._ldap.check_password(login, password)
        return DirectoryVerdict(verdict.value)
