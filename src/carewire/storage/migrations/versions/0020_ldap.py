"""Directory sync from LDAP: integrations, linked users, runs and reports (docs/ldap.md).

Revision ID: 0020_ldap
Revises: 0019_fast
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_ldap"
down_revision: str | None = "0019_fast"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _org(table: str, *, primary_key: bool = False) -> sa.Column[int]:
    return sa.Column(
        "organisation_id",
        _ID,
        sa.ForeignKey(
            "organisations.id", name=f"fk_{table}_organisation_id_organisations", ondelete="CASCADE"
        ),
        primary_key=primary_key,
        autoincrement=False,
        nullable=False,
    )


def upgrade() -> None:
    """Create ``ldap_integrations``, ``ldap_users``, ``ldap_runs`` and ``ldap_run_lines``."""
    op.create_table(
        "ldap_integrations",
        _org("ldap_integrations", primary_key=True),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("bind_secret", sa.Text(), nullable=False),
        sa.Column("is_sync_enabled", sa.Boolean(), nullable=False),
        sa.Column("is_sign_in_enabled", sa.Boolean(), nullable=False),
        sa.Column("is_connected", sa.Boolean(), nullable=True),
        sa.Column("status_error", sa.Text(), server_default="", nullable=False),
        sa.Column("status_checked_at", _TS, nullable=True),
        sa.Column("stamp", sa.String(64), server_default="", nullable=False),
        sa.Column("last_full_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("organisation_id", name="pk_ldap_integrations"),
    )
    op.create_table(
        "ldap_users",
        sa.Column(
            "login",
            sa.String(1023),
            sa.ForeignKey(
                "accounts.login", name="fk_ldap_users_login_accounts", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        _org("ldap_users"),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("dn", sa.String(1024), nullable=False),
        sa.Column("is_disabled_by_sync", sa.Boolean(), nullable=False),
        sa.Column("synced_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("login", name="pk_ldap_users"),
        sa.UniqueConstraint("organisation_id", "external_id", name="uq_ldap_users_org_external_id"),
    )
    op.create_table(
        "ldap_runs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        _org("ldap_runs"),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(320), server_default="", nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("ended_at", _TS, nullable=True),
        *(
            sa.Column(name, sa.Integer(), server_default="0", nullable=False)
            for name in ("created", "updated", "disabled", "unchanged", "failed")
        ),
        sa.Column("message", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ldap_runs"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_ldap_runs_org_started", "ldap_runs", ["organisation_id", "started_at"])
    op.create_table(
        "ldap_run_lines",
        sa.Column(
            "run_id",
            _ID,
            sa.ForeignKey(
                "ldap_runs.id", name="fk_ldap_run_lines_run_id_ldap_runs", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("login", sa.String(1023), server_default="", nullable=False),
        sa.Column("staff_id", sa.BigInteger(), nullable=True),
        sa.Column("external_id", sa.String(255), server_default="", nullable=False),
        sa.Column("name", sa.String(200), server_default="", nullable=False),
        sa.Column("message", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("run_id", "seq", name="pk_ldap_run_lines"),
    )


def downgrade() -> None:
    """Drop them: the directory keeps its users, which are no longer marked as synced."""
    op.drop_table("ldap_run_lines")
    op.drop_index("ix_ldap_runs_org_started", table_name="ldap_runs")
    op.drop_table("ldap_runs")
    op.drop_table("ldap_users")
    op.drop_table("ldap_integrations")
