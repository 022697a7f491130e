"""``carewire backup`` and ``carewire restore`` in-process on SQLite: round trips and refusals.

The server-backed drill (an online backup of a serving installation, restored
and served again, on SQLite and PostgreSQL) is tests/interop/test_backup_restore.py.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from carewire.backup import create
from carewire.config import load
from carewire.security.backup_cipher import Secret
from tests.cli.conftest import Run
from tests.cli.test_audit import rows

MARKER = "Zyxwvutsrq"  # a patient's last name: PHI, encrypted in the database
PASSPHRASE = "a long backup passphrase"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "backup.key"
    path.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def populated(data: Path, run: Run) -> Path:
    """``data`` with two more users and a patient whose name is :data:`MARKER`."""
    d = ("--data-dir", str(data))
    accounts = data.parent / "accounts.csv"
    accounts.write_text("alice,pw-alice-1\nbob,pw-bob-22\n")
    assert run("user", "import", str(accounts), "--quiet", *d)[0] == 0
    code, _, err = run(
        "records", "create", "PATIENTS", "--set", "mrn=MRN-77", "--set", f"last_name={MARKER}", *d
    )
    assert code == 0, err
    return data


def backup(run: Run, data: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return run("backup", "--data-dir", str(data), "--output", str(out), *extra)


def copy_keys(source: Path, target: Path) -> None:
    """What an operator keeps apart from the backups: the ``-keys`` directory."""
    shutil.copytree(source.parent / f"{source.name}-keys", target.parent / f"{target.name}-keys")


def patients(run: Run, data: Path) -> list[dict[str, object]]:
    code, out, err = run("records", "list", "PATIENTS", "--json", "--data-dir", str(data))
    assert code == 0, err
    return [r["values"] for r in json.loads(out)["records"]]


def test_round_trip_with_keys_kept_apart(
    populated: Path, run: Run, key_file: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "b.cwbak"
    code, out, err = backup(run, populated, archive, "--key-file", str(key_file))
    assert code == 0, err
    assert "database  sqlite at schema revision 0024_cluster_fence" in out
    assert "keys      not included" in out
    assert archive.stat().st_mode & 0o777 == 0o600
    assert MARKER.encode() not in archive.read_bytes()
    (entry,) = rows(populated, "action = 'backup.create'")
    details = json.loads(entry["details"])
    assert entry["target"] == "b.cwbak" and details["database"] == "sqlite"
    assert details["keys_included"] is False and len(details["sha256"]) == 64

    restored = tmp_path / "restored"
    copy_keys(populated, restored)
    code, out, err = run(
        "restore", str(archive), "--key-file", str(key_file), "--data-dir", str(restored)
    )
    assert code == 0, err
    assert f"start it  carewire serve --data-dir {restored}" in out
    assert not (restored / "initial-admin-password.txt").exists()
    assert (restored / "certs" / "xmpp.key").read_bytes() == (
        populated / "certs" / "xmpp.key"
    ).read_bytes()
    assert (restored / "keys" / "server.secret").read_bytes() == (
        populated / "keys" / "server.secret"
    ).read_bytes()
    assert {p["last_name"] for p in patients(run, restored)} == {MARKER}
    code, out, _ = run("user", "list", "--data-dir", str(restored))
    assert code == 0 and "alice" in out and "bob" in out
    code, out, err = run("audit", "verify", "--data-dir", str(restored))
    assert code == 0, out + err
    assert "chain intact" in out
    before = [r["action"] for r in rows(populated, "action != 'backup.create'")]
    after = [r["action"] for r in rows(restored)]
    assert after[: len(before)] == before and "backup.restore" in after[len(before) :]


def test_keys_in_the_archive_restore_alone(
    populated: Path, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAREWIRE_BACKUP_PASSPHRASE", PASSPHRASE)
    archive = tmp_path / "all.cwbak"
    code, out, err = backup(run, populated, archive, "--include-keys")
    assert code == 0, err
    assert "keys      included" in out
    restored = tmp_path / "elsewhere" / "data"
    code, _, err = run("restore", str(archive), "--data-dir", str(restored))
    assert code == 0, err
    kek = restored.parent / "data-keys" / "kek"
    assert kek.read_text() == (populated.parent / "data-keys" / "kek").read_text()
    assert kek.stat().st_mode & 0o777 == 0o600
    assert kek.parent.stat().st_mode & 0o777 == 0o700
    assert {p["last_name"] for p in patients(run, restored)} == {MARKER}
    assert run("audit", "verify", "--data-dir", str(restored))[0] == 0


def test_wrong_key_tampered_and_missing_keys_write_nothing(
    populated: Path, run: Run, key_file: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "b.cwbak"
    assert backup(run, populated, archive, "--key-file", str(key_file))[0] == 0
    target = tmp_path / "target"

    other = tmp_path / "other.key"
    other.write_text(base64.b64encode(os.urandom(32)).decode())
    other.chmod(0o600)
    code, _, err = run("restore", str(archive), "--key-file", str(other), "--data-dir", str(target))
    assert code == 2 and "error: wrong backup key or passphrase" in err
    assert not target.exists()

    tampered = tmp_path / "t.cwbak"
    body = bytearray(archive.read_bytes())
    body[len(body) // 2] ^= 0x01
    tampered.write_bytes(bytes(body))
    code, _, err = run(
        "restore", str(tampered), "--key-file", str(key_file), "--data-dir", str(target)
    )
    assert code == 2 and "damaged or was altered" in err
    assert not target.exists()

    cut = tmp_path / "cut.cwbak"
    cut.write_bytes(archive.read_bytes()[:-100])
    code, _, err = run("restore", str(cut), "--key-file", str(key_file), "--data-dir", str(target))
    assert code == 2 and ("truncated" in err or "altered" in err)

    # Without --include-keys, the KEK must be where the restored installation reads it.
    code, _, err = run(
        "restore", str(archive), "--key-file", str(key_file), "--data-dir", str(target)
    )
    assert code == 2 and "which" in err and "does not hold" in err and "target-keys/kek" in err
    assert not target.exists()

    target.mkdir()
    (target / "something").write_text("x")
    code, _, err = run(
        "restore", str(archive), "--key-file", str(key_file), "--data-dir", str(target)
    )
    assert code == 2 and "is not empty" in err
    assert sorted(p.name for p in target.iterdir()) == ["something"]


def test_restore_into_the_wrong_kind_of_database(
    populated: Path, run: Run, key_file: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "b.cwbak"
    assert backup(run, populated, archive, "--key-file", str(key_file))[0] == 0
    target = tmp_path / "target"
    copy_keys(populated, target)
    code, _, err = run(
        "restore",
        str(archive),
        "--key-file",
        str(key_file),
        "--data-dir",
        str(target),
        "--database-url",
        "postgresql://nobody@127.0.0.1:1/none",
    )
    assert code == 2 and "holds a sqlite database" in err
    assert not target.exists()


def test_archive_from_a_newer_schema_is_refused(
    populated: Path, run: Run, key_file: Path, tmp_path: Path
) -> None:
    con = sqlite3.connect(populated / "carewire.db")
    con.execute("UPDATE alembic_version SET version_num = '0999_from_the_future'")
    con.commit()
    con.close()
    archive = tmp_path / "future.cwbak"
    create(load(populated), archive, Secret.key_file(key_file))  # as a newer version would
    target = tmp_path / "target"
    copy_keys(populated, target)
    code, _, err = run(
        "restore", str(archive), "--key-file", str(key_file), "--data-dir", str(target)
    )
    assert code == 2 and "revision 0999_from_the_future, newer than" in err
    assert not target.exists()


def test_bad_requests(populated: Path, run: Run, key_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.cwbak"
    code, _, err = backup(run, populated, out)
    assert code == 2 and "give --key-file FILE or set $CAREWIRE_BACKUP_PASSPHRASE" in err
    out.write_bytes(b"")
    code, _, err = backup(run, populated, out, "--key-file", str(key_file))
    assert code == 2 and "exists already" in err
    code, _, err = backup(run, populated, tmp_path / "no" / "b.cwbak", "--key-file", str(key_file))
    assert code == 2 and "no such directory" in err
    code, _, err = run("restore", str(tmp_path / "none.cwbak"), "--key-file", str(key_file))
    assert code == 2 and "no such backup file" in err
    code, _, err = run(
        "restore", str(key_file), "--key-file", str(key_file), "--data-dir", str(tmp_path / "t")
    )
    assert code == 2 and "not a Carewire backup archive" in err
