"""Directory sync from LDAP: integrations, linked users, runs and their reports (docs/ldap.md).

Part of the schema of :mod:`carewire.storage.tables` (migration 0020_ldap). The
bind secret is sealed with the data keys (``cw1:`` text, docs/encryption.md).
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
from carewire.storage.schema_base import BIG_ID, LOGIN_LENGTH, metadata

ldap_integrations = Table(
    "ldap_integrations",
    metadata,
    Column(
        "organisation_id",
        BIG_ID,
        ForeignKey("organisations.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("settings", Text, nullable=False),  # JSON: every setting but the secret
    Column("bind_secret", Text, nullable=False),  # sealed
    Column("is_sync_enabled", Boolean, nullable=False),
    Column("is_sign_in_enabled", Boolean, nullable=False),
    Column("is_connected", Boolean, nullable=True),  # None: never checked
    Column("status_error", Text, nullable=False, server_default=""),
    Column("status_checked_at", UTCDateTime(), nullable=True),
    Column("stamp", String(64), nullable=False, server_default=""),  # incremental high-water
    Column("last_full_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

ldap_users = Table(
    "ldap_users",
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
    Column("external_id", String(255), nullable=False),
    Column("dn", String(1024), nullable=False),
    Column("is_disabled_by_sync", Boolean, nullable=False),
    Column("synced_at", UTCDateTime(), nullable=False),
    UniqueConstraint("organisation_id", "external_id", name="uq_ldap_users_org_external_id"),
)

ldap_runs = Table(
    "ldap_runs",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column(
        "organisation_id",
        BIG_ID,
        ForeignKey("organisations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("kind", String(16), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("actor", String(320), nullable=False, server_default=""),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime(), nullable=True),
    Column("created", Integer, nullable=False, server_default="0"),
    Column("updated", Integer, nullable=False, server_default="0"),
    Column("disabled", Integer, nullable=False, server_default="0"),
    Column("unchanged", Integer, nullable=False, server_default="0"),
    Column("failed", Integer, nullable=False, server_default="0"),
    Column("message", Text, nullable=False, server_default=""),
    Index("ix_ldap_runs_org_started", "organisation_id", "started_at"),
    sqlite_autoincrement=True,
)

ldap_run_lines = Table(
    "ldap_run_lines",
    metadata,
    Column("run_id", BIG_ID, ForeignKey("ldap_runs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("change", String(16), nullable=False),
    Column("login", String(LOGIN_LENGTH), nullable=False, server_default=""),
    Column("staff_id", BigInteger, nullable=True),
    Column("external_id", String(255), nullable=False, server_default=""),
    Column("name", String(200), nullable=False, server_default=""),
    Column("message", Text, nullable=False, server_default=""),
)
