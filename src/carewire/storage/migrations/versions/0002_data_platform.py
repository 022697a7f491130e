"""The data platform's system tables: dataset definitions, rules, schedule, adapters, tokens.

The dataset tables themselves (``ds_*``, join tables ``dsj_*``) are generated
from the definitions by :mod:`carewire.storage.datasets`; downgrading drops
them together with their definitions.

Revision ID: 0002_data_platform
Revises: 0001_core
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_data_platform"
down_revision: str | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Children first, so that dropping never trips a foreign key.
_TABLES = ("api_tokens", "adapters", "rule_schedule", "rules", "dataset_definitions")


def upgrade() -> None:
    """Create the system tables of the data platform."""
    op.create_table(
        "dataset_definitions",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("is_builtin", sa.Boolean(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_dataset_definitions"),
    )
    op.create_table(
        "rules",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("dataset", sa.String(63), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rules"),
        sa.UniqueConstraint("name", name="uq_rules_name"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_rules_dataset", "rules", ["dataset"])
    op.create_table(
        "rule_schedule",
        sa.Column("delivery_id", _ID, autoincrement=False, nullable=False),
        sa.Column("rule_id", _ID, nullable=False),
        sa.Column("due_at", _TS, nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["rules.id"], name="fk_rule_schedule_rule_id_rules", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("delivery_id", name="pk_rule_schedule"),
    )
    op.create_index("ix_rule_schedule_due_at", "rule_schedule", ["due_at"])
    op.create_table(
        "adapters",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("reference_name", sa.String(200), nullable=False),
        sa.Column("component", sa.String(100), nullable=False),
        sa.Column("is_enabled", sa.Boolean(), nullable=False),
        sa.Column("required_datasets", sa.Text(), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_adapters"),
        sa.UniqueConstraint("reference_name", name="uq_adapters_reference_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_used_at", _TS, nullable=True),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("name", name="uq_api_tokens_name"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    """Drop the generated dataset tables, then the system tables."""
    bind = op.get_bind()
    names = sa.inspect(bind).get_table_names()
    generated = sa.MetaData()
    generated.reflect(bind, only=[n for n in names if n.startswith(("ds_", "dsj_"))])
    generated.drop_all(bind)
    for table in _TABLES:
        op.drop_table(table)
