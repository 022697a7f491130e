"""Schema migrations: Alembic, configured in code (no ``alembic.ini``).

The server calls :func:`upgrade` at ``init`` and at start;
:meth:`carewire.storage.Database.open` never migrates. Each call runs in
one transaction on its own short-lived engine (DDL is transactional on
both SQLite and PostgreSQL, so a failed migration leaves no half schema).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from carewire.errors import CarewireError
from carewire.storage import dialects

log = logging.getLogger(__name__)

#: Where env.py and the revisions live.
MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")

_T = TypeVar("_T")


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for Carewire's migrations.

    Args:
        connection: The connection env.py should migrate, if any.

    Returns:
        The config (script location set; nothing read from disk).
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision``.

    Args:
        url: A database URL as for :meth:`carewire.storage.Database.open`.
        revision: Target revision (default: the newest).
    """

    def run(conn: Connection) -> None:
        command.upgrade(alembic_config(conn), revision)
        _check_foreign_keys(conn)

    await _run(url, run)
    log.info("database schema upgraded to %s", revision)


async def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"base"``: empty).

    Args:
        url: A database URL as for :meth:`carewire.storage.Database.open`.
        revision: Target revision.
    """

    def run(conn: Connection) -> None:
        command.downgrade(alembic_config(conn), revision)
        _check_foreign_keys(conn)

    await _run(url, run)
    log.info("database schema downgraded to %s", revision)


def head() -> str:
    """The newest revision of the migrations shipped with this version."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:  # pragma: no cover - the package always ships migrations
        raise CarewireError("no database migrations found")
    return revision


async def current(url: str) -> str | None:
    """The revision the database at ``url`` is at, or None if unmigrated."""

    def run(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    return await _run(url, run)


async def _run(url: str, fn: Callable[[Connection], _T]) -> _T:
    engine = dialects.create_engine(dialects.normalize_url(url), dialects.Role.MIGRATE)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def _check_foreign_keys(conn: Connection) -> None:
    """Fail (and roll back) if a migration broke a foreign key on SQLite.

    Migrations run with SQLite's foreign keys off so tables can be rebuilt;
    this is SQLite's own recommended check before committing.
    """
    if conn.dialect.name != dialects.SQLITE:
        return
    violations = conn.execute(text("PRAGMA foreign_key_check")).fetchall()
    if violations:
        raise CarewireError(f"migration left {len(violations)} foreign key violations")
