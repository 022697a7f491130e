"""SCIM provisioning's data: tokens, the links to directory users and groups, constants."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from carewire.errors import CarewireError

#: The core schemas (RFC 7643 §4) and the enterprise extension (§4.3).
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

#: Every token starts with this, so a leaked one is easy to recognise.
TOKEN_PREFIX = "cwscim_"
#: Random bytes per token (256 bits).
TOKEN_BYTES = 32
#: The longest token name.
MAX_TOKEN_NAME = 200
#: The longest userName and externalId kept (the column's size).
MAX_SCIM_STRING = 320
#: The largest request body (JSON) the SCIM endpoints read, in bytes.
MAX_BODY_BYTES = 262_144
#: Results of one page at most (``filter.maxResults``), and without ``count``.
MAX_RESULTS = 200
DEFAULT_PAGE_SIZE = 100
#: The organisation's users a filter the database cannot evaluate walks at most.
MAX_SCANNED_USERS = 50_000
#: Attributes kept for the identity provider (JSON) at most, in characters.
MAX_EXTRA_CHARS = 32_768


class ScimTokenError(CarewireError):
    """A request's SCIM token is missing, unknown, malformed or revoked (HTTP 401)."""

    code = "unauthorized"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScimToken:
    """A SCIM bearer token of one organisation, without the token itself.

    Attributes:
        id: The token's id.
        organisation_id: The only organisation it reaches.
        name: Unique in the organisation (``entra-id``).
        invite_users: Users created through it without a password are mailed an
            invitation (to register: set a password and PIN); False when they sign
            in another way (the directory's LDAP sign-in).
        created_by: Who created it (``console:alice``, ``cli``, ``api:ops``).
        created_at: When.
        last_used_at: When a request last used it, to the minute (None: never).
        revoked_at: When it was revoked (None: valid).
    """

    id: int
    organisation_id: int
    name: str
    invite_users: bool
    created_by: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def is_revoked(self) -> bool:
        """Whether the token was revoked."""
        return self.revoked_at is not None

    @property
    def actor(self) -> str:
        """Who the token's acts are recorded as in the audit trail."""
        return f"scim:{self.organisation_id}/{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class UserLink:
    """What an identity provider said about a directory user that the directory does not hold.

    Attributes:
        login: The directory user (the SCIM ``id``).
        organisation_id: Their organisation.
        user_name: The provider's ``userName`` (unique in the organisation, case-insensitive).
        external_id: The provider's ``externalId``.
        extra: The SCIM attributes with no directory field, as the provider sent them.
        updated_at: When the link last changed.
    """

    login: str
    organisation_id: int
    user_name: str
    external_id: str | None = None
    extra: Mapping[str, object] = field(default_factory=dict)
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupLink:
    """A directory group's ``externalId``."""

    group_id: int
    external_id: str | None = None
    updated_at: datetime
