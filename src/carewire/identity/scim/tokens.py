"""SCIM bearer tokens (RFC 6750) of the organisations: create, verify, list, revoke.

A token is ``cwscim_`` and 32 random bytes in URL-safe base64; it is shown once,
when created, and only its SHA-256 digest is stored. As for the REST API's
tokens (:mod:`carewire.security.tokens`), a fast unsalted digest is right for
256 random bits: nothing can enumerate them, and one indexed lookup finds the
token. A token reaches only its organisation's users and groups, and nothing
but ``/scim/v2``. Creating and revoking one is recorded in the audit trail
(``scim.token.create``, ``scim.token.revoke``); the token itself never is.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import replace
from datetime import timedelta

from carewire.clock import Clock
from carewire.directory.model import Caller, ReadOnlyError
from carewire.directory.service import DirectoryService
from carewire.errors import NotFoundError, ValidationError
from carewire.identity.scim.model import (
    MAX_TOKEN_NAME,
    TOKEN_BYTES,
    TOKEN_PREFIX,
    ScimToken,
    ScimTokenError,
)
from carewire.identity.scim.store import ScimStore
from carewire.security.audit import AuditEvent, AuditTrail

log = logging.getLogger(__name__)

#: ``last_used_at`` is written at most this often per token.
TOUCH_INTERVAL = timedelta(minutes=1)
_TOKEN = re.compile(rf"^{TOKEN_PREFIX}[A-Za-z0-9_-]{{43}}$")


def token_digest(plaintext: str) -> str:
    """The SHA-256 hex digest stored for ``plaintext``."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    """A token name: 1 to 200 printable characters, trimmed.

    Raises:
        ValidationError: It is empty, too long or has control characters.
    """
    name = name.strip()
    if not 1 <= len(name) <= MAX_TOKEN_NAME or not name.isprintable():
        raise ValidationError(f"a SCIM token name has 1 to {MAX_TOKEN_NAME} printable characters")
    return name


class ScimTokens:
    """The organisations' SCIM tokens; every change is made for a directory :class:`Caller`."""

    def __init__(
        self, store: ScimStore, directory: DirectoryService, audit: AuditTrail, clock: Clock
    ) -> None:
        """Keep tokens in ``store``; ``directory`` scopes callers to their organisation."""
        self._store = store
        self._directory = directory
        self._audit = audit
        self._clock = clock

    async def create(
        self, caller: Caller, organisation_id: int, name: str, *, invite_users: bool = True
    ) -> tuple[ScimToken, str]:
        """Create a token of the organisation.

        Returns:
            (what is stored, the token itself: show it once, it cannot be read back).

        Raises:
            UnknownOrganisationError: Not an organisation the caller sees.
            ReadOnlyError: An auditor.
            ValidationError: A bad name.
            ConflictError: The organisation has a token of that name.
        """
        org = await self._directory.organisations.get(caller, organisation_id)
        self._check_write(caller)
        name = check_name(name)
        plaintext = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        token = await self._store.add_token(
            organisation_id=org.id,
            name=name,
            token_hash=token_digest(plaintext),
            invite_users=invite_users,
            created_by=caller.actor,
            created_at=self._clock.now(),
        )
        await self._record(caller, "scim.token.create", token, invite_users=invite_users)
        log.info("SCIM token %r of organisation %d created", name, org.id)
        return token, plaintext

    async def list(self, caller: Caller, organisation_id: int | None = None) -> list[ScimToken]:
        """The tokens of an organisation (of every organisation the caller sees when None).

        Raises:
            UnknownOrganisationError: Not an organisation the caller sees.
        """
        if organisation_id is not None:
            await self._directory.organisations.get(caller, organisation_id)
        scope = organisation_id if organisation_id is not None else caller.organisation_id
        return await self._store.tokens(scope)

    async def revoke(self, caller: Caller, organisation_id: int, name: str) -> ScimToken:
        """Revoke a token; it stops working at once (twice changes nothing).

        Raises:
            UnknownOrganisationError: Not an organisation the caller sees.
            ReadOnlyError: An auditor.
            NotFoundError: The organisation has no token of that name.
        """
        org = await self._directory.organisations.get(caller, organisation_id)
        self._check_write(caller)
        token = await self._store.revoke_token(org.id, name.strip(), self._clock.now())
        if token is None:
            raise NotFoundError(f"no SCIM token named {name!r}", code="unknown-token")
        await self._record(caller, "scim.token.revoke", token)
        log.info("SCIM token %r of organisation %d revoked", token.name, org.id)
        return token

    async def verify(self, plaintext: str) -> ScimToken:
        """The valid token ``plaintext`` is; notes its use.

        Raises:
            ScimTokenError: Malformed, unknown or revoked.
        """
        if not _TOKEN.match(plaintext):
            raise ScimTokenError("the SCIM token is malformed")
        token = await self._store.token_by_hash(token_digest(plaintext))
        if token is None:
            raise ScimTokenError("the SCIM token is not valid")
        if token.is_revoked:
            raise ScimTokenError("the SCIM token has been revoked")
        now = self._clock.now()
        if token.last_used_at is None or now - token.last_used_at >= TOUCH_INTERVAL:
            await self._store.touch_token(token.id, now)
            token = replace(token, last_used_at=now)
        return token

    @staticmethod
    def _check_write(caller: Caller) -> None:
        if not caller.can_write:
            raise ReadOnlyError("this role can only read", code="read-only")

    async def _record(
        self, caller: Caller, action: str, token: ScimToken, **details: object
    ) -> None:
        await self._audit.record(
            AuditEvent(
                actor=caller.actor,
                channel=caller.channel,
                action=action,
                target=f"organisation:{token.organisation_id}",
                remote_ip=caller.remote_ip,
                details={"token": token.name, **details},
            )
        )
