"""Fresh databases that are already migrated and assembled, copied from a per-process template.

Most tests start from a new database and build every service on it; doing
that from nothing runs every Alembic migration and creates the tables of
the built-in datasets each time (0.3 s on SQLite, about a second on
PostgreSQL). :func:`prefill` instead makes the (not yet created or still
empty) database at a URL a copy of a template that went through exactly
that once per test process: a file copy on SQLite, ``CREATE DATABASE …
TEMPLATE`` on PostgreSQL. The copy is what ``assemble()`` would have left
behind, so the services built on it next find the schema current.

Tests of migrations and of first starts keep using empty databases: they
never call :func:`prefill`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import delete
from sqlalchemy.engine import make_url

from carewire.assembly import Options, assemble
from carewire.storage.tables import data_keys

_sqlite_template: Path | None = None
#: (server DSN, template database name, CREATE DATABASE strategy)
_pg_template: tuple[str, str, str] | None = None


async def _build(url: str) -> None:
    services = await assemble(Options(url=url))
    try:
        # The data keys were wrapped by this process's throw-away KEK: a copy starts
        # without them, so whatever opens it (a server with its configured key file)
        # makes its own, as on a new installation.
        async with services.db.transaction("template_forget_data_keys") as txn:
            await txn.conn.execute(delete(data_keys))
    finally:
        await services.close()


async def _sqlite(path: Path) -> None:
    global _sqlite_template
    if _sqlite_template is None:
        where = Path(tempfile.mkdtemp(prefix="carewire-template-"))
        await _build(f"sqlite+aiosqlite:///{where / 'template.db'}")
        _sqlite_template = where / "template.db"
    if path.exists() and path.stat().st_size > 0:
        return  # a database this test made before (a restart): left as it is
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_sqlite_template, path)


def _server(url: str) -> tuple[str, str]:
    parsed = make_url(url)
    name = parsed.database or ""
    server = parsed.set(drivername="postgresql", database="postgres")
    return server.render_as_string(hide_password=False), name


async def _strategy(server: str) -> str:
    """How to copy the template: ``FILE_COPY`` on a cluster without fsync, else ``WAL_LOG``.

    ``FILE_COPY`` copies the files after a checkpoint: 0.08 s here without fsync (as
    ``.ci/run`` sets the test cluster), but over a second with it. ``WAL_LOG``, the default,
    writes every page to the WAL instead: 0.36 s either way.
    """
    conn = await asyncpg.connect(server)
    try:
        fsync = await conn.fetchval("SHOW fsync")
    finally:
        await conn.close()
    return "FILE_COPY" if fsync == "off" else "WAL_LOG"


async def _postgres(url: str) -> None:
    global _pg_template
    server, name = _server(url)
    if _pg_template is None:
        template = f"carewire_tpl_{os.getpid()}_{secrets.token_hex(4)}"
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(f'CREATE DATABASE "{template}"')
        finally:
            await conn.close()
        await _build(make_url(url).set(database=template).render_as_string(hide_password=False))
        _pg_template = (server, template, await _strategy(server))
    target = await asyncpg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        used = await target.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
    finally:
        await target.close()
    if used:
        return  # a database this test made before (a restart): left as it is
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _, template, strategy = _pg_template
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY {strategy}')
    finally:
        await conn.close()


async def prefill(url: str) -> str:
    """Make the database at ``url`` a migrated, assembled one, unless it is in use already.

    A new or empty database becomes a copy of the template; one that has a
    schema (a test that restarts its services on the same database) is left
    as it is.

    Returns:
        ``url``, for chaining.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database, "an in-memory SQLite database cannot be prefilled"
        await _sqlite(Path(parsed.database))
    else:
        await _postgres(url)
    return url


def drop_templates() -> None:
    """Remove this process's templates (at the end of the session)."""
    global _sqlite_template, _pg_template
    if _sqlite_template is not None:
        shutil.rmtree(_sqlite_template.parent, ignore_errors=True)
        _sqlite_template = None
    if _pg_template is not None:
        server, template, _ = _pg_template
        _pg_template = None

        async def drop() -> None:
            conn = await asyncpg.connect(server)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
            finally:
                await conn.close()

        asyncio.run(drop())
