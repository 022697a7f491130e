"""The organisation directory's tables (migration 0005; see docs/directory.md).

Part of the schema of :mod:`carewire.storage.tables`, which re-exports them; the
shared :data:`~carewire.storage.tables.metadata` lives in :mod:`.schema_base`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from carewire.storage.columns import UTCDateTime
from carewire.storage.schema_base import BIG_ID as _BIG_ID
from carewire.storage.schema_base import LOGIN_LENGTH, metadata

organisations = Table(
    "organisations",
    metadata,
    Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("name_key", String(200), nullable=False, unique=True),  # casefolded: unique
    Column("office_number", String(32), nullable=False),
    Column("voice_number", String(32), nullable=False, server_default=""),
    Column("default_time_zone", String(64), nullable=False),
    Column("whole_org_messaging", Boolean, nullable=False),
    Column("non_user_messaging", Boolean, nullable=False),
    Column("high_priority_sound_seconds", Integer, nullable=False),
    Column("message_expiration", String(8), nullable=False),
    Column("retention_value", Integer, nullable=True),  # None: never purge
    Column("retention_unit", String(16), nullable=True),
    Column("pin_length", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    sqlite_autoincrement=True,
)

directory_sequences = Table(
    "directory_sequences",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

directory_users = Table(
    "directory_users",
    metadata,
    Column(
        "login",
        String(LOGIN_LENGTH),
        ForeignKey("accounts.login", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("organisation_id", _BIG_ID, ForeignKey("organisations.id"), nullable=False, index=True),
    Column("staff_id", BigInteger, nullable=False, unique=True),
    Column("email", String(320), nullable=False, unique=True),  # lower-case
    Column("first_name", String(100), nullable=False),
    Column("last_name", String(100), nullable=False),
    Column("first_key", String(100), nullable=False),  # lower-case copies: search and sort
    Column("last_key", String(100), nullable=False),
    Column("profile", Text, nullable=False),  # JSON: the other profile fields
    Column("staff_type", String(32), nullable=False),
    Column("photo", Text, nullable=False, server_default=""),
    Column("photo_type", String(64), nullable=False, server_default=""),
    Column("is_org_admin", Boolean, nullable=False),
    Column("is_registered", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_directory_users_org_name", "organisation_id", "last_key", "first_key", "login"),
    Index(
        "ix_directory_users_org_type",
        "organisation_id",
        "staff_type",
        "last_key",
        "first_key",
        "login",
    ),
)

directory_pins = Table(
    "directory_pins",
    metadata,
    Column(
        "login",
        String(LOGIN_LENGTH),
        ForeignKey("accounts.login", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("pin_hash", Text, nullable=False),  # argon2id
    Column("is_temporary", Boolean, nullable=False),
    Column("set_at", UTCDateTime(), nullable=False),
)

pin_resets = Table(
    "pin_resets",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 of the mailed token
    Column(
        "login",
        String(LOGIN_LENGTH),
        ForeignKey("accounts.login", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
)

directory_groups = Table(
    "directory_groups",
    metadata,
    Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    Column(
        "organisation_id",
        _BIG_ID,
        ForeignKey("organisations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(100), nullable=False),
    Column("name_key", String(100), nullable=False),  # casefolded: unique per organisation
    Column("slug", String(LOGIN_LENGTH), nullable=False, unique=True),
    Column("whole_group_messaging", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("organisation_id", "name_key", name="uq_directory_groups_org_name"),
    sqlite_autoincrement=True,
)

directory_group_members = Table(
    "directory_group_members",
    metadata,
    Column(
        "group_id",
        _BIG_ID,
        ForeignKey("directory_groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "login",
        String(LOGIN_LENGTH),
        ForeignKey("accounts.login", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)

invitations = Table(
    "invitations",
    metadata,
    Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    Column(
        "organisation_id",
        _BIG_ID,
        ForeignKey("organisations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("email", String(320), nullable=False),  # lower-case
    Column("first_name", String(100), nullable=False),
    Column("last_name", String(100), nullable=False),
    Column("department", String(100), nullable=False),
    Column("is_admin", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("token_hash", String(64), nullable=True, unique=True),  # None: the link is dead
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("invited_by", String(200), nullable=False),
    Column("login", String(LOGIN_LENGTH), nullable=True),  # registered (or created) user
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("deleted_at", UTCDateTime(), nullable=True),
    Index("ix_invitations_org_updated", "organisation_id", "updated_at"),
    Index("ix_invitations_email", "email"),
    sqlite_autoincrement=True,
)

affiliations = Table(
    "affiliations",
    metadata,
    Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    Column(
        "inviter_id",
        _BIG_ID,
        ForeignKey("organisations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column(
        "invitee_id",
        _BIG_ID,
        ForeignKey("organisations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("status", String(16), nullable=False),
    Column("token_hash", String(64), nullable=True, unique=True),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("invited_by", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("accepted_at", UTCDateTime(), nullable=True),
    sqlite_autoincrement=True,
)

affiliation_permissions = Table(
    "affiliation_permissions",
    metadata,
    Column(
        "affiliation_id",
        _BIG_ID,
        ForeignKey("affiliations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "organisation_id",
        _BIG_ID,
        ForeignKey("organisations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("mode", String(16), nullable=False),
)

affiliation_permission_groups = Table(
    "affiliation_permission_groups",
    metadata,
    Column(
        "affiliation_id",
        _BIG_ID,
        ForeignKey("affiliations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("organisation_id", _BIG_ID, primary_key=True),
    Column(
        "group_id",
        _BIG_ID,
        ForeignKey("directory_groups.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)
