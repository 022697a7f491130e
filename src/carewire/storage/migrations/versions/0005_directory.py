"""The organisation directory; ``accounts.is_disabled``; organisations of console users and tokens.

Revision ID: 0005_directory
Revises: 0004_muc
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_directory"
down_revision: str | None = "0004_muc"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_LOGIN = sa.String(1023)

# Children first, so that dropping never trips a foreign key.
_TABLES = (
    "affiliation_permission_groups",
    "affiliation_permissions",
    "affiliations",
    "invitations",
    "directory_group_members",
    "directory_groups",
    "pin_resets",
    "directory_pins",
    "directory_users",
    "directory_sequences",
    "organisations",
)


def _fk(table: str, column: str, target: str, *, cascade: bool = True) -> sa.ForeignKeyConstraint:
    parent = target.partition(".")[0]
    return sa.ForeignKeyConstraint(
        [column],
        [target],
        name=f"fk_{table}_{column}_{parent}",
        ondelete="CASCADE" if cascade else None,
    )


def upgrade() -> None:
    """Add the flags and columns, then create the directory's tables."""
    op.add_column(
        "accounts",
        sa.Column("is_disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    for table in ("console_users", "api_tokens"):
        op.add_column(table, sa.Column("organisation_id", _ID, nullable=True))
        op.create_index(f"ix_{table}_organisation_id", table, ["organisation_id"])
    _create_organisations()
    _create_users()
    _create_groups()
    _create_invitations()
    _create_affiliations()


def _create_organisations() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_key", sa.String(200), nullable=False),
        sa.Column("office_number", sa.String(32), nullable=False),
        sa.Column("voice_number", sa.String(32), nullable=False, server_default=""),
        sa.Column("default_time_zone", sa.String(64), nullable=False),
        sa.Column("whole_org_messaging", sa.Boolean(), nullable=False),
        sa.Column("non_user_messaging", sa.Boolean(), nullable=False),
        sa.Column("high_priority_sound_seconds", sa.Integer(), nullable=False),
        sa.Column("message_expiration", sa.String(8), nullable=False),
        sa.Column("retention_value", sa.Integer(), nullable=True),
        sa.Column("retention_unit", sa.String(16), nullable=True),
        sa.Column("pin_length", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_organisations"),
        sa.UniqueConstraint("name_key", name="uq_organisations_name_key"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "directory_sequences",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_directory_sequences"),
    )


def _create_users() -> None:
    op.create_table(
        "directory_users",
        sa.Column("login", _LOGIN, nullable=False),
        sa.Column("organisation_id", _ID, nullable=False),
        sa.Column("staff_id", sa.BigInteger(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("first_key", sa.String(100), nullable=False),
        sa.Column("last_key", sa.String(100), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("staff_type", sa.String(32), nullable=False),
        sa.Column("photo", sa.Text(), nullable=False, server_default=""),
        sa.Column("photo_type", sa.String(64), nullable=False, server_default=""),
        sa.Column("is_org_admin", sa.Boolean(), nullable=False),
        sa.Column("is_registered", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        _fk("directory_users", "login", "accounts.login"),
        _fk("directory_users", "organisation_id", "organisations.id", cascade=False),
        sa.PrimaryKeyConstraint("login", name="pk_directory_users"),
        sa.UniqueConstraint("staff_id", name="uq_directory_users_staff_id"),
        sa.UniqueConstraint("email", name="uq_directory_users_email"),
    )
    op.create_index("ix_directory_users_organisation_id", "directory_users", ["organisation_id"])
    op.create_index(
        "ix_directory_users_org_name",
        "directory_users",
        ["organisation_id", "last_key", "first_key", "login"],
    )
    op.create_index(
        "ix_directory_users_org_type",
        "directory_users",
        ["organisation_id", "staff_type", "last_key", "first_key", "login"],
    )
    op.create_table(
        "directory_pins",
        sa.Column("login", _LOGIN, nullable=False),
        sa.Column("pin_hash", sa.Text(), nullable=False),
        sa.Column("is_temporary", sa.Boolean(), nullable=False),
        sa.Column("set_at", _TS, nullable=False),
        _fk("directory_pins", "login", "accounts.login"),
        sa.PrimaryKeyConstraint("login", name="pk_directory_pins"),
    )
    op.create_table(
        "pin_resets",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("login", _LOGIN, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("used_at", _TS, nullable=True),
        _fk("pin_resets", "login", "accounts.login"),
        sa.PrimaryKeyConstraint("token_hash", name="pk_pin_resets"),
    )
    op.create_index("ix_pin_resets_login", "pin_resets", ["login"])


def _create_groups() -> None:
    op.create_table(
        "directory_groups",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("organisation_id", _ID, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("name_key", sa.String(100), nullable=False),
        sa.Column("slug", _LOGIN, nullable=False),
        sa.Column("whole_group_messaging", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        _fk("directory_groups", "organisation_id", "organisations.id"),
        sa.PrimaryKeyConstraint("id", name="pk_directory_groups"),
        sa.UniqueConstraint("slug", name="uq_directory_groups_slug"),
        sa.UniqueConstraint("organisation_id", "name_key", name="uq_directory_groups_org_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "directory_group_members",
        sa.Column("group_id", _ID, nullable=False),
        sa.Column("login", _LOGIN, nullable=False),
        _fk("directory_group_members", "group_id", "directory_groups.id"),
        _fk("directory_group_members", "login", "accounts.login"),
        sa.PrimaryKeyConstraint("group_id", "login", name="pk_directory_group_members"),
    )
    op.create_index("ix_directory_group_members_login", "directory_group_members", ["login"])


def _create_invitations() -> None:
    op.create_table(
        "invitations",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("organisation_id", _ID, nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("department", sa.String(100), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=True),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("invited_by", sa.String(200), nullable=False),
        sa.Column("login", _LOGIN, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("deleted_at", _TS, nullable=True),
        _fk("invitations", "organisation_id", "organisations.id"),
        sa.PrimaryKeyConstraint("id", name="pk_invitations"),
        sa.UniqueConstraint("token_hash", name="uq_invitations_token_hash"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_invitations_org_updated", "invitations", ["organisation_id", "updated_at"])
    op.create_index("ix_invitations_email", "invitations", ["email"])


def _create_affiliations() -> None:
    op.create_table(
        "affiliations",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("inviter_id", _ID, nullable=False),
        sa.Column("invitee_id", _ID, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=True),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("invited_by", sa.String(200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("accepted_at", _TS, nullable=True),
        _fk("affiliations", "inviter_id", "organisations.id"),
        _fk("affiliations", "invitee_id", "organisations.id"),
        sa.PrimaryKeyConstraint("id", name="pk_affiliations"),
        sa.UniqueConstraint("token_hash", name="uq_affiliations_token_hash"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_affiliations_inviter_id", "affiliations", ["inviter_id"])
    op.create_index("ix_affiliations_invitee_id", "affiliations", ["invitee_id"])
    op.create_table(
        "affiliation_permissions",
        sa.Column("affiliation_id", _ID, nullable=False),
        sa.Column("organisation_id", _ID, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        _fk("affiliation_permissions", "affiliation_id", "affiliations.id"),
        _fk("affiliation_permissions", "organisation_id", "organisations.id"),
        sa.PrimaryKeyConstraint(
            "affiliation_id", "organisation_id", name="pk_affiliation_permissions"
        ),
    )
    op.create_table(
        "affiliation_permission_groups",
        sa.Column("affiliation_id", _ID, nullable=False),
        sa.Column("organisation_id", _ID, nullable=False),
        sa.Column("group_id", _ID, nullable=False),
        _fk("affiliation_permission_groups", "affiliation_id", "affiliations.id"),
        _fk("affiliation_permission_groups", "group_id", "directory_groups.id"),
        sa.PrimaryKeyConstraint(
            "affiliation_id",
            "organisation_id",
            "group_id",
            name="pk_affiliation_permission_groups",
        ),
    )
    op.create_index(
        "ix_affiliation_permission_groups_group_id",
        "affiliation_permission_groups",
        ["group_id"],
    )


def downgrade() -> None:
    """Drop the directory's tables (children first), then the added columns."""
    for table in _TABLES:
        op.drop_table(table)
    for table in ("api_tokens", "console_users"):
        op.drop_index(f"ix_{table}_organisation_id", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("organisation_id")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("is_disabled")
