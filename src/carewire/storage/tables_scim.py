"""SCIM 2.0 provisioning's tables (migration 0021_scim; see docs/scim.md).

Part of the schema of :mod:`carewire.storage.tables`, which imports this module so
the tables join the shared :data:`~carewire.storage.schema_base.metadata`.

- ``scim_tokens``: each organisation's bearer tokens (SHA-256 digests only).
- ``scim_users``: what an identity provider said about a directory user that the
  directory itself does not hold (its ``userName``, ``externalId`` and the attributes
  with no directory field), removed with the account.
- ``scim_groups``: a directory group's ``externalId``, removed with the group.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, String, Table, Text, UniqueConstraint

from carewire.storage.columns import UTCDateTime
from carewire.storage.schema_base import BIG_ID, LOGIN_LENGTH, metadata

#: userName and externalId are free strings of the identity provider; this bounds them.
SCIM_STRING_LENGTH = 320

scim_tokens = Table(
    "scim_tokens",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column(
        "organisation_id",
        BIG_ID,
        ForeignKey("organisations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256 hex
    Column("invite_users", Boolean, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    UniqueConstraint("organisation_id", "name", name="uq_scim_tokens_org_name"),
    sqlite_autoincrement=True,
)

scim_users = Table(
    "scim_users",
    metadata,
    Column(
        "login",
        String(LOGIN_LENGTH),
        ForeignKey("accounts.login", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "organisation_id",
        BIG_ID,
        ForeignKey("organisations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_name", String(SCIM_STRING_LENGTH), nullable=False),
    Column("user_name_key", String(SCIM_STRING_LENGTH), nullable=False),  # casefolded
    Column("external_id", String(SCIM_STRING_LENGTH), nullable=True),
    Column("extra", Text, nullable=False),  # JSON: attributes the directory has no field for
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("organisation_id", "user_name_key", name="uq_scim_users_org_user_name"),
    Index("ix_scim_users_org_external_id", "organisation_id", "external_id"),
)

scim_groups = Table(
    "scim_groups",
    metadata,
    Column(
        "group_id",
        BIG_ID,
        ForeignKey("directory_groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("external_id", String(SCIM_STRING_LENGTH), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
)
