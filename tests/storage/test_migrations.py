"""Alembic migrations: up, down, up again, and agreement with tables.py."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.engine import Connection

from carewire.clock import FakeClock
from carewire.security.audit import AuditEvent, AuditTrail, Channel
from carewire.security.tokens import Role
from carewire.storage import Database, migrate
from carewire.storage.audit import SqlAuditStore
from carewire.storage.tables import ALL_TABLES, accounts, api_tokens, metadata
from carewire.storage.tokens import SqlTokenStore
from tests.templates import prefill

TABLES = {t.name for t in ALL_TABLES}
DIRECTORY_TABLES = {
    "organisations",
    "directory_sequences",
    "directory_users",
    "directory_pins",
    "pin_resets",
    "directory_groups",
    "directory_group_members",
    "invitations",
    "affiliations",
    "affiliation_permissions",
    "affiliation_permission_groups",
    "held_messages",
    "busy_periods",
}


async def _inspect(db_url: str) -> tuple[set[str], list[Any]]:
    def run(conn: Connection) -> tuple[set[str], list[Any]]:
        names = set(inspect(conn).get_table_names())
        diff = compare_metadata(MigrationContext.configure(conn), metadata) if names else []
        return names, diff

    db = await Database.open(db_url)
    try:
        async with db.read("inspect") as conn:
            return await conn.run_sync(run)
    finally:
        await db.close()


async def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    assert await migrate.current(db_url) is None
    # message_expiry, audit_mac_epochs, push_* (0016), uploads (0017), pep_* (0018) and
    # fast_tokens (0019) included
    # fast_tokens (0019), ldap_* (0020), scim_* (0021), federation_* (0022) and
    # webpush_subscriptions (0023) and cluster_fence (0024) included
    assert len(TABLES) == 57

    await migrate.upgrade(db_url)
    names, diff = await _inspect(db_url)
    assert names >= TABLES
    assert diff == []
    assert await migrate.current(db_url) == migrate.head() == "0024_cluster_fence"

    await migrate.upgrade(db_url)  # idempotent
    assert await migrate.current(db_url) == migrate.head()

    await migrate.downgrade(db_url, "base")
    names, _ = await _inspect(db_url)
    assert not TABLES & names
    assert await migrate.current(db_url) is None

    await migrate.upgrade(db_url, "head")
    names, diff = await _inspect(db_url)
    assert names >= TABLES
    assert diff == []


async def test_directory_migration_down_and_up_keeps_older_data(db_url: str) -> None:
    """0005 down to 0004 removes only the directory (and its columns); up again restores them."""
    await migrate.upgrade(db_url)
    db = await Database.open(db_url)
    try:
        async with db.transaction("seed") as txn:
            await txn.conn.execute(
                insert(accounts).values(login="old", created_at=datetime(2026, 1, 1, tzinfo=UTC))
            )
    finally:
        await db.close()
    await migrate.downgrade(db_url, "0004_muc")
    names, _ = await _inspect(db_url)
    assert not DIRECTORY_TABLES & names and "accounts" in names
    columns = await _columns(db_url)
    assert "is_disabled" not in columns["accounts"]
    assert "organisation_id" not in columns["console_users"]
    assert "organisation_id" not in columns["api_tokens"]
    await migrate.upgrade(db_url)
    names, diff = await _inspect(db_url)
    assert names >= TABLES and diff == []
    db = await Database.open(db_url)
    try:
        async with db.read("check") as conn:
            row = (await conn.execute(select(accounts.c.login, accounts.c.is_disabled))).one()
    finally:
        await db.close()
    assert tuple(row) == ("old", False)


async def _columns(db_url: str) -> dict[str, set[str]]:
    def run(conn: Connection) -> dict[str, set[str]]:
        insp = inspect(conn)
        return {t: {c["name"] for c in insp.get_columns(t)} for t in insp.get_table_names()}

    db = await Database.open(db_url)
    try:
        async with db.read("columns") as conn:
            return await conn.run_sync(run)
    finally:
        await db.close()


async def test_audit_mac_migration_down_and_up_keeps_entries(db_url: str) -> None:
    """0013 down to 0012 drops the MACs and markers only; the entries stay, and up again."""
    await migrate.upgrade(db_url)
    db = await Database.open(db_url)
    try:
        trail = AuditTrail(SqlAuditStore(db), FakeClock(datetime(2026, 3, 1, tzinfo=UTC)))
        await trail.record(AuditEvent(actor="cli", channel=Channel.CLI, action="rule.create"))
    finally:
        await db.close()
    await migrate.downgrade(db_url, "0012_expiry")
    names, _ = await _inspect(db_url)
    assert "audit_mac_epochs" not in names and "audit_log" in names
    db = await Database.open(db_url)
    try:
        async with db.read("t") as conn:
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("audit_log")}
            )
            count = (await conn.execute(text("SELECT count(*) FROM audit_log"))).scalar_one()
        assert "mac" not in columns and count == 1
    finally:
        await db.close()
    await migrate.upgrade(db_url)
    names, diff = await _inspect(db_url)
    assert "audit_mac_epochs" in names and diff == []


async def test_token_expiry_migration_down_and_up_keeps_tokens(db_url: str) -> None:
    at = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    await migrate.upgrade(db_url, "0013_audit_mac")
    db = await Database.open(db_url)
    try:
        async with db.transaction("old_token") as txn:
            await txn.conn.execute(
                insert(api_tokens).values(
                    name="old", token_hash="a" * 64, role="admin", created_at=at
                )
            )
    finally:
        await db.close()
    await migrate.upgrade(db_url, "0014_hardening")
    db = await Database.open(db_url)
    try:
        store = SqlTokenStore(db)
        (old,) = await store.list()
        assert old.name == "old" and old.expires_at is None
        new = await store.add(
            name="new", token_hash="b" * 64, role=Role.ADMIN, created_at=at, expires_at=at
        )
        assert new.expires_at == at
        found = await store.find_by_hash("b" * 64)
        assert found is not None and found.expires_at == at
    finally:
        await db.close()
    await migrate.downgrade(db_url, "0013_audit_mac")
    await migrate.upgrade(db_url, "head")
    db = await Database.open(db_url)
    try:
        names = sorted(t.name for t in await SqlTokenStore(db).list())
        assert names == ["new", "old"]
    finally:
        await db.close()


async def test_upload_migration_down_and_up(db_url: str) -> None:
    """0017 down to 0015 drops only ``uploads``; up again brings it back as tables.py has it."""
    await migrate.upgrade(db_url)
    db = await Database.open(db_url)
    try:
        async with db.transaction("seed") as txn:
            await txn.conn.execute(
                insert(accounts).values(login="old", created_at=datetime(2026, 1, 1, tzinfo=UTC))
            )
    finally:
        await db.close()
    await migrate.downgrade(db_url, "0015_phi")
    names, _ = await _inspect(db_url)
    assert "uploads" not in names and "accounts" in names and "break_glass" in names
    assert await migrate.current(db_url) == "0015_phi"
    await migrate.upgrade(db_url)
    names, diff = await _inspect(db_url)
    assert "uploads" in names and diff == []
    assert await migrate.current(db_url) == migrate.head()


async def _execute(db_url: str, statement: str, **params: object) -> None:
    db = await Database.open(db_url)
    try:
        async with db.transaction("seed") as txn:
            await txn.conn.execute(text(statement), params)
    finally:
        await db.close()


async def test_first_revision_to_head_one_step_at_a_time_keeps_the_data(db_url: str) -> None:
    """An installation of the first released schema upgrades to now, revision by revision."""
    await migrate.upgrade(db_url, "0001_core")
    created = datetime(2025, 1, 2, 3, 4, tzinfo=UTC)
    await _execute(
        db_url,
        "INSERT INTO accounts (login, first_name, created_at) VALUES ('early', 'Ada', :at)",
        at=created,
    )
    await _execute(
        db_url,
        "INSERT INTO roster_items (owner, contact, name, subscription, is_pending_out, is_approved,"
        " groups) VALUES ('early', 'friend@h.example', 'Friend', 'both', false, false, '[]')",
    )
    found = await migrate.status(db_url)
    assert found.current == "0001_core" and not found.is_newer and not found.is_current
    assert found.pending[0] == "0002_data_platform" and found.pending[-1] == migrate.head()

    applied: list[tuple[str | None, str]] = []
    count = await migrate.upgrade_each(db_url, lambda a, b, _s: applied.append((a, b)))
    assert count == len(found.pending) == len(applied)
    assert applied[0] == ("0001_core", "0002_data_platform")
    assert [b for _, b in applied] == list(found.pending)
    assert all(b == c for (_, b), (c, _) in itertools.pairwise(applied))
    after = await migrate.status(db_url)
    assert after.is_current and after.current == migrate.head() and after.pending == ()
    names, diff = await _inspect(db_url)
    assert names >= TABLES and diff == []

    db = await Database.open(db_url)
    try:
        async with db.read("check") as conn:
            account = (
                await conn.execute(
                    select(accounts.c.login, accounts.c.first_name, accounts.c.is_disabled)
                )
            ).one()
            roster = (
                await conn.execute(text("SELECT owner, contact, name FROM roster_items"))
            ).one()
    finally:
        await db.close()
    assert tuple(account) == ("early", "Ada", False)
    assert tuple(roster) == ("early", "friend@h.example", "Friend")
    assert await migrate.upgrade_each(db_url, lambda *_: None) == 0


async def test_empty_database_status_lists_every_revision(db_url: str) -> None:
    found = await migrate.status(db_url)
    assert found.current is None and found.pending[0] == "0001_core"
    assert found.pending[-1] == migrate.head() and not found.is_newer


async def test_a_schema_newer_than_the_code_is_refused(db_url: str) -> None:
    await migrate.upgrade(await prefill(db_url))
    await _execute(db_url, "UPDATE alembic_version SET version_num = '0999_from_the_future'")
    found = await migrate.status(db_url)
    assert found.is_newer and found.current == "0999_from_the_future" and found.pending == ()
    assert not migrate.is_known("0999_from_the_future") and migrate.is_known(migrate.head())
    for attempt in (migrate.upgrade(db_url), migrate.upgrade_each(db_url, lambda *_: None)):
        with pytest.raises(migrate.SchemaTooNewError, match="0999_from_the_future, newer than"):
            await attempt
    # Nothing was touched: still stamped with the future revision.
    assert await migrate.current(db_url) == "0999_from_the_future"
