"""What SCIM provisioning keeps and reads (:class:`carewire.storage.scim.SqlScimStore`).

Writes to users and groups go through the directory service; the store keeps
the tokens and the links (``userName``, ``externalId``, attributes with no
directory field) and answers searches with one joined query per page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from carewire.directory.model import DirectoryUser
from carewire.identity.scim.model import GroupLink, ScimToken, UserLink

if TYPE_CHECKING:
    from carewire.identity.scim.query import UserSearch


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupRef:
    """A group a user belongs to."""

    id: int
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredUser:
    """A directory user (no photo), their link (None: never provisioned) and their groups."""

    user: DirectoryUser
    link: UserLink | None
    groups: tuple[GroupRef, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberRef:
    """A member of a group and the name it is shown by."""

    login: str
    display: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredGroup:
    """A directory group, its ``externalId`` and its members (by login)."""

    id: int
    organisation_id: int
    name: str
    external_id: str | None
    created_at: datetime
    updated_at: datetime
    members: tuple[MemberRef, ...] = ()


class ScimStore(Protocol):
    """Tokens, links and the reads of SCIM provisioning."""

    async def add_token(
        self,
        *,
        organisation_id: int,
        name: str,
        token_hash: str,
        invite_users: bool,
        created_by: str,
        created_at: datetime,
    ) -> ScimToken:
        """Save a new token.

        Raises:
            ConflictError: The organisation has a token of that name (revoked ones included).
        """

    async def token_by_hash(self, token_hash: str) -> ScimToken | None:
        """The token whose SHA-256 hex digest is ``token_hash``."""

    async def tokens(self, organisation_id: int | None) -> list[ScimToken]:
        """The organisation's tokens (every organisation's when None), by organisation, name."""

    async def revoke_token(self, organisation_id: int, name: str, at: datetime) -> ScimToken | None:
        """Mark the token revoked at ``at`` (kept if it already was); None if unknown."""

    async def touch_token(self, token_id: int, at: datetime) -> None:
        """Set the token's ``last_used_at``."""

    async def search_users(self, search: UserSearch) -> tuple[list[StoredUser], int]:
        """One page of the organisation's users satisfying the condition, and how many do."""

    async def user(self, organisation_id: int, login: str) -> StoredUser | None:
        """The organisation's user ``login``."""

    async def login_of_user_name(self, organisation_id: int, user_name_key: str) -> str | None:
        """The user whose ``userName`` (its link's, else the login) is ``user_name_key``."""

    async def put_user_link(self, link: UserLink) -> None:
        """Create or replace the user's link.

        Raises:
            ConflictError: Another user of the organisation has the ``userName``.
        """

    async def groups(
        self, organisation_id: int, ids: Sequence[int] | None = None
    ) -> list[StoredGroup]:
        """The organisation's groups (only ``ids`` when given), by id, with their members."""

    async def put_group_link(self, link: GroupLink) -> None:
        """Create or replace the group's link."""
