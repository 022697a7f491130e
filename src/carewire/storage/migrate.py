"""Schema migrations: Alembic, configured in code (no ``alembic.ini``).

The server calls :func:`upgrade` at ``init`` and at start;
:meth:`carewire.storage.Database.open` never migrates. Each call runs in
one transaction on its own short-lived engine (DDL is transactional on
both SQLite and PostgreSQL, so a failed migration leaves no half schema).

A database stamped with a revision this code does not ship was migrated by
a newer Carewire: :func:`upgrade` refuses it (:class:`SchemaTooNewError`)
before Alembic touches anything, so an older server never runs on, or
"repairs", a schema it does not know (``carewire migrate --check``, docs/upgrades.md).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from carewire.errors import CarewireError
from carewire.storage import dialects

log = logging.getLogger(__name__)

#: Where env.py and the revisions live.
MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")

_T = TypeVar("_T")


class SchemaTooNewError(CarewireError):
    """The database's schema revision is newer than this version of Carewire knows."""

    code = "schema-too-new"


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaStatus:
    """Where a database's schema stands against the migrations this version ships.

    Attributes:
        current: The database's revision (None: an empty, unmigrated database).
        head: The newest revision shipped.
        pending: The revisions :func:`upgrade` would apply, oldest first.
        is_newer: The database is at a revision this version does not know.
    """

    current: str | None
    head: str
    pending: tuple[str, ...]
    is_newer: bool

    @property
    def is_current(self) -> bool:
        """Whether the schema is exactly this version's."""
        return not self.pending and not self.is_newer


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
        _refuse_newer(conn)
        command.upgrade(alembic_config(conn), revision)
        _check_foreign_keys(conn)

    await _run(url, run)
    log.info("database schema upgraded to %s", revision)


async def upgrade_each(url: str, on_applied: Callable[[str | None, str, float], None]) -> int:
    """Migrate ``url`` to the newest revision one revision (and transaction) at a time.

    Each revision commits on its own, so a failure leaves the database at the
    last revision that succeeded, never half-way through one.

    Args:
        url: A database URL as for :meth:`carewire.storage.Database.open`.
        on_applied: Called after each revision with (from, to, seconds taken).

    Returns:
        How many revisions were applied.

    Raises:
        SchemaTooNewError: The database is newer than this code.
    """
    found = await status(url)
    if found.is_newer:
        assert found.current is not None
        raise SchemaTooNewError(too_new_message(found.current))
    before = found.current
    for revision in found.pending:
        started = time.monotonic()
        await upgrade(url, revision)
        on_applied(before, revision, time.monotonic() - started)
        before = revision
    return len(found.pending)


async def status(url: str) -> SchemaStatus:
    """Where the schema of the database at ``url`` stands (nothing is changed)."""
    return await _run(url, _status)


def too_new_message(current: str) -> str:
    """The one line that says a database is newer than this code."""
    from carewire import __version__

    return (
        f"the database schema is at revision {current}, newer than this Carewire "
        f"{__version__} knows (newest {head()}): it was upgraded by a newer version; run that "
        "version, or restore the backup taken before the upgrade (docs/upgrades.md)"
    )


def _status(conn: Connection) -> SchemaStatus:
    script = _script()
    current = MigrationContext.configure(conn).get_current_revision()
    newest = head()
    if current is not None and not is_known(current):
        return SchemaStatus(current=current, head=newest, pending=(), is_newer=True)
    # walk_revisions yields newest first, down to (excluding) ``current``.
    pending = [rev.revision for rev in script.walk_revisions("base", newest)]
    if current is not None:
        pending = pending[: pending.index(current)]
    return SchemaStatus(
        current=current, head=newest, pending=tuple(reversed(pending)), is_newer=False
    )


def _refuse_newer(conn: Connection) -> None:
    found = _status(conn)
    if found.is_newer:
        assert found.current is not None
        raise SchemaTooNewError(too_new_message(found.current))


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


@functools.cache
def _script() -> ScriptDirectory:
    """The shipped revisions (read once per process: they never change under it)."""
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest revision of the migrations shipped with this version."""
    revision = _script().get_current_head()
    if revision is None:  # pragma: no cover - the package always ships migrations
        raise CarewireError("no database migrations found")
    return revision


def is_known(revision: str) -> bool:
    """Whether ``revision`` is one of the migrations shipped with this version."""
    return revision in {rev.revision for rev in _script().walk_revisions()}


async def current(url: str) -> str | None:
    """The revision the database at ``url`` is at, or None if unmigrated."""

    def run(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    return await _run(url, run)


async def _run(url: str, fn: Callable[[Connection], _T]) -> _T:
    engine = dialects.create_engine(dialects.normalize_url(url), dialects.Role.MIGRATE)
    try:
        try:
            conn = await engine.connect()
        except (OSError, DBAPIError) as exc:  # refused, unknown host or database, no access
            raise dialects.unreachable(url, exc) from None
        try:
            async with conn.begin():
                return await conn.run_sync(fn)
        finally:
            await conn.close()
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
