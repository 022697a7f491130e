"""The core schema: accounts, credentials, rosters, offline, vCards, private, blocking, audit.

Revision ID: 0001_core
Revises:
Create Date: 2024-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_core"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the application types (migrations must not change when
# the application's types do): UTCDateTime stores as DateTime(timezone=True).
_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_LOGIN = sa.String(1023)
_JID = sa.String(3071)

# Children first, so that dropping never trips a foreign key.
_TABLES = (
    "login_audit",
    "blocklist",
    "private_storage",
    "vcards",
    "offline_messages",
    "pending_subscriptions",
    "roster_versions",
    "roster_items",
    "credentials",
    "accounts",
)


def _owner_fk(table: str, column: str = "owner") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["accounts.login"], name=f"fk_{table}_{column}_accounts", ondelete="CASCADE"
    )


def upgrade() -> None:
    """Create every table of the core schema."""
    _create_accounts()
    _create_roster()
    _create_offline_and_audit()
    _create_documents()


def _create_accounts() -> None:
    op.create_table(
        "accounts",
        sa.Column("login", _LOGIN, nullable=False),
        sa.Column("first_name", sa.String(), nullable=False, server_default=""),
        sa.Column("last_name", sa.String(), nullable=False, server_default=""),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_failed_at", _TS, nullable=True),
        sa.Column("is_locked", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("login", name="pk_accounts"),
    )
    op.create_table(
        "credentials",
        sa.Column("login", _LOGIN, nullable=False),
        sa.Column("mechanism", sa.String(32), nullable=False),
        sa.Column("salt", sa.LargeBinary(), nullable=False),
        sa.Column("iterations", sa.Integer(), nullable=False),
        sa.Column("stored_key", sa.LargeBinary(), nullable=False),
        sa.Column("server_key", sa.LargeBinary(), nullable=False),
        _owner_fk("credentials", "login"),
        sa.PrimaryKeyConstraint("login", "mechanism", name="pk_credentials"),
    )


def _create_roster() -> None:
    op.create_table(
        "roster_items",
        sa.Column("owner", _LOGIN, nullable=False),
        sa.Column("contact", _JID, nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("subscription", sa.String(4), nullable=False),
        sa.Column("is_pending_out", sa.Boolean(), nullable=False),
        sa.Column("is_approved", sa.Boolean(), nullable=False),
        sa.Column("groups", sa.Text(), nullable=False),
        _owner_fk("roster_items"),
        sa.PrimaryKeyConstraint("owner", "contact", name="pk_roster_items"),
    )
    op.create_table(
        "roster_versions",
        sa.Column("owner", _LOGIN, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _owner_fk("roster_versions"),
        sa.PrimaryKeyConstraint("owner", name="pk_roster_versions"),
    )
    op.create_table(
        "pending_subscriptions",
        sa.Column("owner", _LOGIN, nullable=False),
        sa.Column("contact", _JID, nullable=False),
        sa.Column("stanza", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        _owner_fk("pending_subscriptions"),
        sa.PrimaryKeyConstraint("owner", "contact", name="pk_pending_subscriptions"),
    )


def _create_offline_and_audit() -> None:
    op.create_table(
        "offline_messages",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("owner", _LOGIN, nullable=False),
        sa.Column("stanza", sa.Text(), nullable=False),
        sa.Column("stamp", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        _owner_fk("offline_messages"),
        sa.PrimaryKeyConstraint("id", name="pk_offline_messages"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_offline_messages_owner", "offline_messages", ["owner"])
    op.create_index("ix_offline_messages_expires_at", "offline_messages", ["expires_at"])
    op.create_table(
        "login_audit",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("login", _LOGIN, nullable=False),
        sa.Column("remote_ip", sa.String(64), nullable=False),
        sa.Column("transport", sa.String(32), nullable=False),
        sa.Column("mechanism", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_login_audit"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_login_audit_at", "login_audit", ["at"])
    op.create_index("ix_login_audit_login", "login_audit", ["login"])


def _create_documents() -> None:
    op.create_table(
        "vcards",
        sa.Column("owner", _LOGIN, nullable=False),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        _owner_fk("vcards"),
        sa.PrimaryKeyConstraint("owner", name="pk_vcards"),
    )
    op.create_table(
        "private_storage",
        sa.Column("owner", _LOGIN, nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("xml", sa.Text(), nullable=False),
        _owner_fk("private_storage"),
        sa.PrimaryKeyConstraint("owner", "key", name="pk_private_storage"),
    )
    op.create_table(
        "blocklist",
        sa.Column("owner", _LOGIN, nullable=False),
        sa.Column("jid", _JID, nullable=False),
        _owner_fk("blocklist"),
        sa.PrimaryKeyConstraint("owner", "jid", name="pk_blocklist"),
    )


def downgrade() -> None:
    """Drop every table of the core schema (their indexes go with them)."""
    for table in _TABLES:
        op.drop_table(table)
