"""Shapes of the directory's storage, asked for by the service (:mod:`carewire.storage.directory`).

Each protocol covers one subject; :class:`DirectoryStore` bundles them. Every
write opens a named transaction on the shared database, so several calls
made inside the service's own transaction (``Transactions.transaction``)
commit or roll back together with the account and the USERS record.
Timestamps are timezone-aware UTC; e-mail addresses arrive lower-case;
tokens arrive as SHA-256 hex digests only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from carewire.directory.index import Snapshot
from carewire.directory.model import (
    Affiliation,
    AffiliationId,
    AffiliationStatus,
    DirectoryUser,
    Group,
    Invitation,
    InvitationFilter,
    InvitationId,
    InvitationStatus,
    Organisation,
    OrganisationId,
    OrganisationRef,
    Permission,
    UserFilter,
    UserSortKey,
)

# -- rows the service hands to the store ----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NewInvitation:
    """An invitation to insert (its token as a digest)."""

    organisation_id: OrganisationId
    email: str
    first_name: str = ""
    last_name: str = ""
    department: str = ""
    is_admin: bool = False
    token_hash: str
    expires_at: datetime
    invited_by: str
    at: datetime
    login: str | None = None  # an administrator-created user the invitation completes


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredInvitation:
    """An invitation with what only the service sees."""

    invitation: Invitation
    is_deleted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredPin:
    """A user's PIN as stored (an argon2id hash)."""

    pin_hash: str
    is_temporary: bool
    set_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class PinReset:
    """A mailed PIN-reset link, by digest."""

    login: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewAffiliation:
    """An affiliation (or invitation to one) to insert."""

    inviter_id: OrganisationId
    invitee_id: OrganisationId
    status: AffiliationStatus
    token_hash: str | None
    expires_at: datetime
    invited_by: str
    at: datetime


# -- the protocols -----------------------------------------------------------------------------


class Transactions(Protocol):
    """Opens the named transaction that the stores' writes join."""

    def transaction(self, name: str) -> AbstractAsyncContextManager[object]:
        """A write transaction; stores called inside it (same task) join it."""


class OrganisationStore(Protocol):
    """Organisations (table ``organisations``)."""

    async def add(self, org: Organisation) -> Organisation:
        """Insert (``org.id`` is ignored: a new one is assigned).

        Raises:
            NameTakenError: The name is taken (case-insensitive).
        """

    async def get(self, organisation_id: int) -> Organisation | None:
        """One organisation."""

    async def list_all(self, ids: Iterable[int] | None = None) -> list[Organisation]:
        """Organisations (all, or those of ``ids``), by name."""

    async def search(self, text: str, *, limit: int, exclude: int | None) -> list[OrganisationRef]:
        """Names containing ``text`` (case-insensitive), by name."""

    async def update(self, org: Organisation) -> Organisation:
        """Write every field of ``org``.

        Raises:
            NameTakenError: The new name is taken.
        """


class UserStore(Protocol):
    """Directory profiles (``directory_users``), PINs and PIN resets, joined with accounts."""

    async def next_staff_ids(self, count: int) -> list[int]:
        """Reserve ``count`` new StaffIDs (increasing, never reused)."""

    async def add(self, user: DirectoryUser) -> None:
        """Insert a profile (its account exists).

        Raises:
            EmailTakenError: Another profile has the address.
        """

    async def add_many(self, users: Sequence[DirectoryUser]) -> None:
        """Insert profiles (their accounts exist) with one batched statement.

        Raises:
            EmailTakenError: An address is taken (nothing is inserted).
        """

    async def update(self, user: DirectoryUser) -> None:
        """Write the profile fields and ``is_org_admin``/``is_registered`` of ``user``.

        Raises:
            EmailTakenError: Another profile has the address.
        """

    async def get(self, login: str, *, with_photo: bool = True) -> DirectoryUser | None:
        """One user (login state from the account, ``has_pin`` from the PIN)."""

    async def get_by_email(self, email: str) -> DirectoryUser | None:
        """The user with this (lower-case) address."""

    async def by_emails(self, emails: Sequence[str]) -> dict[str, DirectoryUser]:
        """The users having these addresses, by address (any number may be asked)."""

    async def by_logins(self, logins: Sequence[str]) -> dict[str, DirectoryUser]:
        """The users of these logins, by login (any number may be asked; with photos)."""

    async def find(
        self,
        organisation_id: int,
        search: UserFilter,
        *,
        sort: UserSortKey,
        is_descending: bool,
        offset: int,
        limit: int,
    ) -> tuple[list[DirectoryUser], int]:
        """One page of matching users (no photos) and how many match."""

    async def admins(self, organisation_id: int) -> list[DirectoryUser]:
        """The organisation's administrators, by last then first name (no photos)."""

    async def count_admins(self, organisation_id: int) -> int:
        """How many administrators the organisation has."""

    async def taken_logins(self, logins: Sequence[str]) -> set[str]:
        """Which of ``logins`` an account has."""

    async def set_disabled(self, login: str, is_disabled: bool) -> bool:
        """Set ``accounts.is_disabled``; False if there is no such account."""

    async def unlock(self, login: str) -> bool:
        """Clear the account's lock and failure count; False if there is no such account."""

    async def remove(self, login: str) -> bool:
        """Delete the account and everything it owns (profile, PIN, memberships)."""

    async def get_pin(self, login: str) -> StoredPin | None:
        """The user's PIN hash."""

    async def has_pin(self, login: str) -> bool:
        """Whether the user has a PIN (an inline point read: the FAST login's hot path)."""

    async def set_pin(self, login: str, pin: StoredPin) -> None:
        """Set (or replace) the user's PIN."""

    async def add_pin_reset(self, token_hash: str, reset: PinReset) -> None:
        """Save a PIN-reset link."""

    async def get_pin_reset(self, token_hash: str) -> PinReset | None:
        """A PIN-reset link by digest."""

    async def use_pin_reset(self, token_hash: str, at: datetime) -> bool:
        """Mark the link used if it is unused and unexpired at ``at``; whether it was."""


class GroupStore(Protocol):
    """Groups (``directory_groups``) and members (``directory_group_members``)."""

    async def add(self, group: Group) -> Group:
        """Insert (``group.id`` is ignored).

        Raises:
            NameTakenError: The organisation has a group of that name (case-insensitive).
        """

    async def get(self, group_id: int) -> Group | None:
        """One group with its member count."""

    async def by_names(self, organisation_id: int, names: Iterable[str]) -> dict[str, Group]:
        """The organisation's groups of these names, by lower-case name."""

    async def list_for(self, organisation_id: int, name_contains: str = "") -> list[Group]:
        """The organisation's groups (case-insensitive substring), by name."""

    async def taken_slugs(self, slugs: Sequence[str]) -> set[str]:
        """Which of ``slugs`` a group has."""

    async def update(self, group: Group) -> Group:
        """Write name and options.

        Raises:
            NameTakenError: The new name is taken.
        """

    async def delete(self, group_id: int) -> list[tuple[AffiliationId, OrganisationId]]:
        """Delete the group; the permissions that used it (and now have no group left)."""

    async def members(self, group_id: int) -> list[DirectoryUser]:
        """The group's members, by last then first name (no photos)."""

    async def member_logins(self, group_id: int) -> list[str]:
        """The logins of the group's members."""

    async def add_members(self, group_id: int, logins: Sequence[str]) -> list[str]:
        """Insert memberships; the logins actually added (not already members)."""

    async def remove_members(self, group_id: int, logins: Sequence[str]) -> list[str]:
        """Delete memberships; the logins actually removed."""

    async def of_user(self, login: str) -> list[Group]:
        """The groups the user is in, by name."""


class InvitationStore(Protocol):
    """User invitations (``invitations``)."""

    async def add_many(self, rows: Sequence[NewInvitation]) -> list[Invitation]:
        """Insert invitations (batched), in order."""

    async def get(self, invitation_id: int) -> StoredInvitation | None:
        """One invitation, deleted ones included."""

    async def by_token(self, token_hash: str) -> StoredInvitation | None:
        """The invitation whose current token has this digest."""

    async def find(
        self, organisation_id: int, search: InvitationFilter, *, offset: int, limit: int
    ) -> tuple[list[Invitation], int]:
        """One page of the organisation's undeleted invitations and how many match."""

    async def open_for(self, organisation_id: int, emails: Sequence[str]) -> dict[str, Invitation]:
        """The newest undeleted, unregistered invitation of each address in the organisation."""

    async def set_status(
        self,
        ids: Sequence[InvitationId],
        status: InvitationStatus,
        at: datetime,
        *,
        only_from: InvitationStatus | None = None,
    ) -> None:
        """Set the status (and Last Updated) of undeleted invitations (those in ``only_from``)."""

    async def reissue(
        self,
        invitation_id: InvitationId,
        *,
        token_hash: str,
        expires_at: datetime,
        at: datetime,
        invited_by: str,
    ) -> Invitation:
        """A new token and expiry; back to Pending."""

    async def delete(self, ids: Sequence[InvitationId], at: datetime) -> list[InvitationId]:
        """Mark deleted (its link is refused from now on); the ids not deleted before."""

    async def registered(self, invitation_id: InvitationId, login: str, at: datetime) -> None:
        """Mark Registered by ``login`` (its link is refused from now on: used)."""

    async def delete_open_for_email(self, email: str, at: datetime) -> int:
        """Delete every unregistered invitation to ``email`` (all organisations)."""


class AffiliationStore(Protocol):
    """Affiliations (``affiliations``) and permissions (``affiliation_permissions[_groups]``)."""

    async def add(self, new: NewAffiliation) -> Affiliation:
        """Insert an affiliation."""

    async def get(self, affiliation_id: int) -> Affiliation | None:
        """One affiliation with its permissions."""

    async def by_token(self, token_hash: str) -> Affiliation | None:
        """The pending affiliation whose token has this digest."""

    async def between(self, a: int, b: int) -> list[Affiliation]:
        """The pending and active affiliations between two organisations."""

    async def of_organisation(self, organisation_id: int) -> list[Affiliation]:
        """The pending and active affiliations an organisation is in."""

    async def active(self) -> list[Affiliation]:
        """Every active affiliation."""

    async def activate(self, affiliation_id: int, at: datetime) -> None:
        """Make it active (accepted at ``at``); its token dies."""

    async def decline(self, affiliation_id: int, at: datetime) -> None:
        """Make it declined; its token dies."""

    async def delete(self, affiliation_id: int) -> None:
        """Delete it with its permissions."""

    async def set_permission(
        self, affiliation_id: int, organisation_id: int, permission: Permission
    ) -> None:
        """Replace one side's permission."""


class SnapshotStore(Protocol):
    """The whole directory, read for the in-memory index."""

    async def snapshot(self) -> Snapshot:
        """Users, groups, memberships, organisations and active affiliations (no devices)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectoryStore:
    """Every directory store, on one database.

    Attributes:
        db: Opens the transactions the stores' writes join.
        organisations: Organisations.
        users: Profiles, PINs, PIN resets (and the account flags they need).
        groups: Groups and members.
        invitations: User invitations.
        affiliations: Affiliations and permissions.
        snapshot: The index's source.
    """

    db: Transactions
    organisations: OrganisationStore
    users: UserStore
    groups: GroupStore
    invitations: InvitationStore
    affiliations: AffiliationStore
    snapshot: SnapshotStore
