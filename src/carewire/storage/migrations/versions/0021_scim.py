"""SCIM 2.0 provisioning: organisation tokens, user and group links (docs/scim.md).

Revision ID: 0021_scim
Revises: 0020_ldap
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_scim"
down_revision: str | None = "0020_ldap"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_STRING = 320


def upgrade() -> None:
    """Create ``scim_tokens``, ``scim_users`` and ``scim_groups``."""
    op.create_table(
        "scim_tokens",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("organisation_id", _ID, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("invite_users", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_used_at", _TS, nullable=True),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name="fk_scim_tokens_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_scim_tokens"),
        sa.UniqueConstraint("organisation_id", "name", name="uq_scim_tokens_org_name"),
        sa.UniqueConstraint("token_hash", name="uq_scim_tokens_token_hash"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "scim_users",
        sa.Column("login", sa.String(1023), nullable=False),
        sa.Column("organisation_id", _ID, nullable=False),
        sa.Column("user_name", sa.String(_STRING), nullable=False),
        sa.Column("user_name_key", sa.String(_STRING), nullable=False),
        sa.Column("external_id", sa.String(_STRING), nullable=True),
        sa.Column("extra", sa.Text(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["login"], ["accounts.login"], name="fk_scim_users_login_accounts", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name="fk_scim_users_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("login", name="pk_scim_users"),
        sa.UniqueConstraint("organisation_id", "user_name_key", name="uq_scim_users_org_user_name"),
    )
    op.create_index(
        "ix_scim_users_org_external_id", "scim_users", ["organisation_id", "external_id"]
    )
    op.create_table(
        "scim_groups",
        sa.Column("group_id", _ID, nullable=False),
        sa.Column("external_id", sa.String(_STRING), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["directory_groups.id"],
            name="fk_scim_groups_group_id_directory_groups",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", name="pk_scim_groups"),
    )


def downgrade() -> None:
    """Drop them: the tokens stop working, identity providers' links are forgotten.

    The directory's users and groups stay as they are.
    """
    op.drop_table("scim_groups")
    op.drop_index("ix_scim_users_org_external_id", table_name="scim_users")
    op.drop_table("scim_users")
    op.drop_table("scim_tokens")
