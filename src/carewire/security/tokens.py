"""API tokens: create, verify, list and revoke the bearer tokens of the REST API (RFC 6750).

A token is ``cw_`` followed by 32 random bytes in URL-safe base64
(:func:`secrets.token_urlsafe`). It is shown once, when created; the store
keeps only its SHA-256 digest, so a copy of the database cannot be used to
call the API.

Why a fast hash here when passwords use argon2id: a slow, salted hash exists
to make *guessing* expensive, because people choose passwords from a small,
predictable space. A token has 256 bits from the operating system's CSPRNG;
nobody can enumerate that space whatever the hash costs, so a plain SHA-256
preimage search is already out of reach. A fast, unsalted digest also lets
:meth:`TokenService.verify` find the token with one indexed lookup instead
of trying every stored hash, which keeps each API request cheap.

Comparing through the lookup is safe against timing attacks: the attacker
controls the token, not its digest, so how long the index takes to compare
digests tells them nothing useful about any stored token.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from carewire.clock import Clock
from carewire.errors import CarewireError, NotFoundError, ValidationError
from carewire.errors import ForbiddenError as ForbiddenError  # re-exported: the API maps it to 403

log = logging.getLogger(__name__)

#: Every token starts with this, so leaked ones are easy to recognise (secret scanners).
TOKEN_PREFIX = "cw_"
#: Random bytes per token (256 bits).
TOKEN_BYTES = 32
#: The longest token name.
MAX_NAME_LENGTH = 200
#: ``last_used_at`` is written at most this often per token (one write per request is waste).
TOUCH_INTERVAL = timedelta(minutes=1)
#: The shortest and longest lifetimes a token may be given.
MIN_EXPIRY = timedelta(minutes=1)
MAX_EXPIRY = timedelta(days=5 * 366)

# token_urlsafe(32) is 43 characters of the URL-safe base64 alphabet, without padding.
_TOKEN = re.compile(rf"^{TOKEN_PREFIX}[A-Za-z0-9_-]{{43}}$")


class Role(enum.StrEnum):
    """What a token may do."""

    ADMIN = "admin"
    READ_ONLY = "read-only"

    @property
    def can_write(self) -> bool:
        """Whether the role may change anything (any method but GET/HEAD/OPTIONS)."""
        return self is Role.ADMIN


class AuthError(CarewireError):
    """The request carries no valid token (missing, unknown, revoked, expired or malformed)."""

    code = "unauthorized"


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenInfo:
    """What is known about a token, without the token itself.

    Attributes:
        id: The token's id.
        name: Its unique name (``nurse-call-gateway``).
        role: What it may do.
        created_at: When it was created (UTC).
        last_used_at: When a request last used it, to the minute (None: never).
        revoked_at: When it was revoked (None: still valid).
        organisation_id: The directory organisation it acts for (None: every
            organisation, as a system administrator or a global auditor).
        expires_at: When it stops working by itself (None: never).
    """

    id: int
    name: str
    role: Role
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    organisation_id: int | None = None
    expires_at: datetime | None = None

    @property
    def is_revoked(self) -> bool:
        """Whether the token was revoked."""
        return self.revoked_at is not None

    def is_expired(self, now: datetime) -> bool:
        """Whether the token's expiry has passed at ``now``."""
        return self.expires_at is not None and now >= self.expires_at


class TokenStore(Protocol):
    """Where token digests live (:class:`carewire.storage.tokens.SqlTokenStore`)."""

    async def add(
        self,
        *,
        name: str,
        token_hash: str,
        role: Role,
        created_at: datetime,
        organisation_id: int | None = None,
        expires_at: datetime | None = None,
    ) -> TokenInfo:
        """Save a new token.

        Raises:
            ConflictError: A token of that name exists (revoked ones included).
        """

    async def find_by_hash(self, token_hash: str) -> TokenInfo | None:
        """The token whose SHA-256 hex digest is ``token_hash``."""

    async def list(self) -> list[TokenInfo]:
        """Every token, revoked ones included, by name."""

    async def revoke(self, name: str, at: datetime) -> TokenInfo | None:
        """Mark the token ``name`` revoked at ``at`` (kept if it already was); None if unknown."""

    async def touch(self, token_id: int, at: datetime) -> None:
        """Set the token's ``last_used_at``."""


def token_digest(plaintext: str) -> str:
    """The SHA-256 hex digest stored for ``plaintext``."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def check_name(name: str) -> None:
    """Check a token name: 1 to 200 printable characters.

    Raises:
        ValidationError: It is empty, too long or has control characters.
    """
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise ValidationError(f"a token name has 1 to {MAX_NAME_LENGTH} characters")
    if not name.isprintable():
        raise ValidationError("a token name has only printable characters")


class TokenService:
    """Creates and checks API tokens; the store sees only digests."""

    def __init__(self, store: TokenStore, clock: Clock) -> None:
        """Keep tokens in ``store``; ``clock`` stamps creation, use and revocation."""
        self._store = store
        self._clock = clock

    async def create(
        self,
        name: str,
        role: Role,
        *,
        organisation_id: int | None = None,
        expires_in: timedelta | None = None,
    ) -> tuple[TokenInfo, str]:
        """Create a token (for one directory organisation when ``organisation_id`` is given).

        With ``expires_in`` the token stops working that long after its creation.

        Returns:
            (what is stored, the token itself: show it once, it cannot be read back).

        Raises:
            ValidationError: The name or the expiry is not valid.
            ConflictError: A token of that name exists.
        """
        check_name(name)
        if expires_in is not None and not MIN_EXPIRY <= expires_in <= MAX_EXPIRY:
            raise ValidationError("a token expires between 1 minute and 5 years after creation")
        plaintext = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        now = self._clock.now()
        info = await self._store.add(
            name=name,
            token_hash=token_digest(plaintext),
            role=Role(role),
            created_at=now,
            organisation_id=organisation_id,
            expires_at=None if expires_in is None else now + expires_in,
        )
        log.info("API token %r created (%s)", name, info.role.value)
        return info, plaintext

    async def verify(self, plaintext: str) -> TokenInfo:
        """The token ``plaintext`` names, if it is valid; notes that it was used.

        Raises:
            AuthError: The token is malformed, unknown, revoked or expired.
        """
        if not _TOKEN.match(plaintext):
            raise AuthError("the token is malformed")
        info = await self._store.find_by_hash(token_digest(plaintext))
        if info is None:
            raise AuthError("the token is not valid")
        if info.is_revoked:
            raise AuthError("the token has been revoked")
        now = self._clock.now()
        if info.is_expired(now):
            raise AuthError("the token has expired")
        if info.last_used_at is None or now - info.last_used_at >= TOUCH_INTERVAL:
            await self._store.touch(info.id, now)
            info = replace(info, last_used_at=now)
        return info

    async def list(self) -> list[TokenInfo]:
        """Every token, revoked ones included, by name."""
        return await self._store.list()

    async def revoke(self, name: str) -> TokenInfo:
        """Revoke a token; it stops working at once (revoking twice changes nothing).

        Raises:
            NotFoundError: No token has that name.
        """
        info = await self._store.revoke(name, self._clock.now())
        if info is None:
            raise NotFoundError(f"no API token named {name!r}", code="unknown-token")
        log.info("API token %r revoked", name)
        return info
