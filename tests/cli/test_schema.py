"""``carewire migrate`` and ``--check``: exit codes, a line per revision, a newer schema refused."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from carewire.cli.schema import EXIT_CURRENT, EXIT_NEWER, EXIT_PENDING
from carewire.storage import migrate
from tests.cli.conftest import Run
from tests.cli.test_audit import rows

FUTURE = "0999_from_the_future"


def stamp(data: Path, revision: str) -> None:
    con = sqlite3.connect(data / "carewire.db")
    try:
        con.execute("UPDATE alembic_version SET version_num = ?", (revision,))
        con.commit()
    finally:
        con.close()


def test_check_up_to_date(data: Path, run: Run) -> None:
    code, out, err = run("migrate", "--check", "--data-dir", str(data))
    assert code == EXIT_CURRENT == 0, err
    assert out.strip() == f"schema up to date (revision {migrate.head()})"


def test_check_pending_then_migrate_one_line_per_revision(data: Path, run: Run) -> None:
    url = f"sqlite+aiosqlite:///{data / 'carewire.db'}"
    asyncio.run(migrate.downgrade(url, "0020_ldap"))
    code, out, _ = run("migrate", "--check", "--data-dir", str(data))
    assert code == EXIT_PENDING == 1
    assert "4 migrations pending: 0020_ldap -> 0024_cluster_fence" in out
    assert "0021_scim, 0022_federation, 0023_webpush, 0024_cluster_fence" in out
    assert "run 'carewire migrate'" in out

    code, out, err = run("migrate", "--data-dir", str(data))
    assert code == 0, err
    lines = out.splitlines()
    assert [ln.split(" (")[0] for ln in lines[:4]] == [
        "migrated 0020_ldap -> 0021_scim",
        "migrated 0021_scim -> 0022_federation",
        "migrated 0022_federation -> 0023_webpush",
        "migrated 0023_webpush -> 0024_cluster_fence",
    ]
    assert lines[4] == "schema at revision 0024_cluster_fence (4 migrations applied)"
    (entry,) = rows(data, "action = 'schema.migrate'")
    assert entry["target"] == "0024_cluster_fence" and entry["channel"] == "cli"
    assert '"revisions": 4' in entry["details"] and '"from": "0020_ldap"' in entry["details"]

    assert run("migrate", "--check", "--data-dir", str(data))[0] == EXIT_CURRENT
    code, out, _ = run("migrate", "--data-dir", str(data))
    assert code == 0 and "nothing to do" in out


def test_newer_schema_check_migrate_and_every_command_refuse(data: Path, run: Run) -> None:
    stamp(data, FUTURE)
    code, out, err = run("migrate", "--check", "--data-dir", str(data))
    assert code == EXIT_NEWER == 3 and out == ""
    assert err.startswith(f"error: the database schema is at revision {FUTURE}, newer than")
    assert "docs/upgrades.md" in err and len(err.strip().splitlines()) == 1
    assert run("migrate", "--data-dir", str(data))[0] == EXIT_NEWER
    code, _, err = run("user", "list", "--data-dir", str(data))
    assert code == 2 and f"revision {FUTURE}, newer than" in err
    con = sqlite3.connect(data / "carewire.db")
    try:
        assert con.execute("SELECT version_num FROM alembic_version").fetchone() == (FUTURE,)
    finally:
        con.close()


def test_migrate_without_installation(tmp_path: Path, run: Run) -> None:
    code, _, err = run("migrate", "--check", "--data-dir", str(tmp_path / "none"))
    assert code == 2 and "carewire.toml not found" in err
