"""Consistent copies of a live database, and putting one back (``carewire backup``/``restore``).

SQLite is copied with its online backup API (``sqlite3.Connection.backup``):
the copy is one consistent state of the database, WAL included, while the
server keeps writing. PostgreSQL is copied by ``pg_dump`` (custom format, one
repeatable-read snapshot) and restored by ``pg_restore`` into an empty
database; both tools come from PATH and must be at least the server's major
version (pg_dump refuses newer servers, pg_restore newer dumps).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL

from carewire.errors import CarewireError
from carewire.storage import dialects

#: Called as a copy progresses: (done, total) in pages (SQLite) or bytes (total 0: unknown).
Progress = Callable[[int, int], None]
#: Pages per step of the SQLite online backup (4 MiB of 4 KiB pages).
PAGES_PER_STEP = 1024
#: Restarts (the database written by another process between two steps) before the
#: copy is taken in one step instead.
MAX_RESTARTS = 3
_TIMEOUT = 30.0


class SnapshotError(CarewireError):
    """A database could not be copied or restored; the message says what to do."""

    code = "snapshot-failed"


class _Restarted(Exception):
    """The stepped SQLite backup restarted too often."""


def kind(url: str) -> str:
    """``"sqlite"`` or ``"postgresql"`` for a configured database URL."""
    return dialects.dialect_of(dialects.normalize_url(url))


def sqlite_path(url: str) -> Path:
    """The file of a SQLite URL.

    Raises:
        SnapshotError: An in-memory database (nothing to back up).
    """
    parsed = dialects.normalize_url(url)
    if dialects.is_memory(parsed) or parsed.database is None:
        raise SnapshotError("an in-memory database cannot be backed up")
    return Path(parsed.database)


def copy_sqlite(source: Path, dest: Path, progress: Progress) -> None:
    """Copy the SQLite database ``source`` to the new file ``dest``, consistently, online.

    Steps of :data:`PAGES_PER_STEP` pages report progress; when the server's
    writes restart the copy more than :data:`MAX_RESTARTS` times it is taken in
    one step (readers never block writers in WAL mode).

    Raises:
        SnapshotError: ``source`` is missing or not a database.
    """
    if not source.is_file():
        raise SnapshotError(f"{source}: database file not found")
    restarts, last = 0, -1

    def step(_status: int, remaining: int, total: int) -> None:
        nonlocal restarts, last
        if last >= 0 and remaining > last:
            restarts += 1
            if restarts > MAX_RESTARTS:
                raise _Restarted
        last = remaining
        progress(total - remaining, total)

    src = sqlite3.connect(source, timeout=_TIMEOUT)
    try:
        dst = sqlite3.connect(dest)
        try:
            try:
                src.backup(dst, pages=PAGES_PER_STEP, progress=step)
            except _Restarted:
                src.backup(dst, pages=-1)
            pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
            progress(pages, pages)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dst.close()
    except sqlite3.DatabaseError as exc:
        raise SnapshotError(f"{source}: cannot copy the database ({exc})") from None
    finally:
        src.close()


def sqlite_revision(path: Path) -> str | None:
    """The schema revision stored in the SQLite file ``path`` (None: unmigrated)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        con.close()
    return None if row is None else str(row[0])


def pg_tool(name: str) -> Path:
    """The PostgreSQL client program ``name`` (``pg_dump``, ``pg_restore``) on PATH.

    Raises:
        SnapshotError: Not installed.
    """
    found = shutil.which(name)
    if found is None:
        raise SnapshotError(
            f"{name} not found on PATH: install the PostgreSQL client programs of the"
            " server's major version (Debian: postgresql-client-NN)"
        )
    return Path(found)


def tool_major(tool: Path) -> int:
    """The major version of a PostgreSQL client program (``pg_dump (PostgreSQL) 16.4``)."""
    out = subprocess.run(
        [str(tool), "--version"], capture_output=True, text=True, timeout=_TIMEOUT, check=False
    ).stdout
    m = re.search(r"\)\s*(\d+)", out)
    if m is None:
        raise SnapshotError(f"{tool}: cannot tell its version from {out.strip()!r}")
    return int(m.group(1))


async def server_major(url: str) -> int:
    """The major version of the PostgreSQL server at ``url``."""
    engine = dialects.create_engine(dialects.normalize_url(url), dialects.Role.MIGRATE)
    try:
        async with engine.connect() as conn:
            number = (await conn.execute(text("SHOW server_version_num"))).scalar_one()
    finally:
        await engine.dispose()
    return int(number) // 10000


async def is_empty(url: str) -> bool:
    """Whether the database at ``url`` holds no table at all (any schema but the system's)."""
    engine = dialects.create_engine(dialects.normalize_url(url), dialects.Role.MIGRATE)
    try:
        async with engine.connect() as conn:
            if dialects.dialect_of(engine.url) == dialects.SQLITE:
                count = await conn.scalar(
                    text("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
                )
            else:
                count = await conn.scalar(
                    text(
                        "SELECT count(*) FROM information_schema.tables WHERE table_schema"
                        " NOT IN ('pg_catalog', 'information_schema')"
                    )
                )
    finally:
        await engine.dispose()
    return not count


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """``url`` as a libpq URI without its password, and the environment carrying it."""
    parsed: URL = dialects.normalize_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)  # never on a command line (ps shows it)
    dsn = parsed.set(drivername="postgresql", password=None)
    return dsn.render_as_string(hide_password=False), env


async def check_tool(tool: Path, url: str) -> int:
    """The tool's major version, checked against the server's.

    Raises:
        SnapshotError: The tool is older than the server.
    """
    mine, theirs = tool_major(tool), await server_major(url)
    if mine < theirs:
        raise SnapshotError(
            f"{tool} is PostgreSQL {mine}, the server is {theirs}: install the client"
            f" programs {theirs} (Debian: postgresql-client-{theirs}) and put them first on PATH"
        )
    return mine


def dump_postgres(tool: Path, url: str, dest: Path, progress: Progress) -> None:
    """``pg_dump --format=custom`` of ``url`` into ``dest``, reporting bytes written.

    Raises:
        SnapshotError: pg_dump failed (its last line of error output is shown).
    """
    dsn, env = _libpq(url)
    args = [str(tool), "--format=custom", "--no-owner", "--no-privileges", f"--dbname={dsn}"]
    with (
        tempfile.TemporaryFile() as errors,
        dest.open("wb") as out,
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors, env=env) as proc,
    ):
        assert proc.stdout is not None
        done = 0
        while chunk := proc.stdout.read(1 << 16):
            out.write(chunk)
            done += len(chunk)
            progress(done, 0)
        if proc.wait() != 0:
            errors.seek(0)
            raise SnapshotError(f"pg_dump failed: {_last_line(errors.read())}")


def restore_postgres(tool: Path, dump: Path, url: str) -> None:
    """``pg_restore`` ``dump`` into the (empty) database at ``url``, in one transaction.

    Raises:
        SnapshotError: pg_restore failed (nothing was restored: one transaction).
    """
    dsn, env = _libpq(url)
    args = [
        str(tool),
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
        f"--dbname={dsn}",
        str(dump),
    ]
    done = subprocess.run(args, capture_output=True, env=env, check=False)
    if done.returncode != 0:
        raise SnapshotError(f"pg_restore failed: {_last_line(done.stderr)}")


def _last_line(output: bytes) -> str:
    """The tool's first error line (its last line when none says ``error:``)."""
    lines = [ln.strip() for ln in output.decode("utf-8", "replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error:" in ln]
    return (errors or lines or ["no error output"])[0 if errors else -1]
