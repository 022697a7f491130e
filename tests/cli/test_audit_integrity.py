"""``carewire audit verify|checkpoint|key`` against a database writer without the audit key.

The attacks are made with the sqlite3 module on the data directory's database,
as someone who can write the file would; the key stays where ``carewire
init`` put it, outside the data directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from carewire.security.audit_key import ENV_VAR
from tests.cli.conftest import Run


def _rows(data: Path) -> list[sqlite3.Row]:
    con = sqlite3.connect(data / "carewire.db")
    con.row_factory = sqlite3.Row
    try:
        return list(con.execute("SELECT * FROM audit_log ORDER BY id"))
    finally:
        con.close()


def _execute(data: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    con = sqlite3.connect(data / "carewire.db")
    try:
        for statement, params in statements:
            con.execute(statement, params)
        con.commit()
    finally:
        con.close()


def _sha(prev: str, row: sqlite3.Row) -> str:
    """The plain SHA-256 chain hash, as anyone can compute it from a row."""
    body = json.dumps(
        {
            "at": row["at_iso"],
            "actor": row["actor"],
            "channel": row["channel"],
            "action": row["action"],
            "target": row["target"],
            "outcome": row["outcome"],
            "remote_ip": row["remote_ip"],
            "details": json.loads(row["details"]),
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()


@pytest.fixture
def d(data: Path, run: Run) -> tuple[str, str]:
    args = ("--data-dir", str(data))
    for n in range(4):
        assert run("token", "create", f"t{n}", *args)[0] == 0
    return args


def test_init_puts_the_key_outside_the_data_dir(data: Path, run: Run, d: tuple[str, str]) -> None:
    key_file = data.parent / "data-keys" / "audit.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    code, out, _ = run("audit", "key", "--public", *d)
    assert code == 0 and f"read from {key_file}" in out
    assert "-----BEGIN PUBLIC KEY-----" in out
    key_id = out.split()[2]
    assert len(key_id) == 16
    # The secret itself never reaches the database.
    secret = next(ln for ln in key_file.read_text().splitlines() if not ln.startswith("#"))
    assert secret.encode() not in (data / "carewire.db").read_bytes()


def test_rechained_edit_fails_verify(data: Path, run: Run, d: tuple[str, str]) -> None:
    """Edit the second entry and recompute every later hash with SHA-256."""
    rows = _rows(data)
    con = sqlite3.connect(data / "carewire.db")
    con.row_factory = sqlite3.Row
    try:
        prev = rows[0]["hash"]
        for row in rows[1:]:
            values = dict(row)
            if row["id"] == rows[1]["id"]:
                values["target"] = "forged"
            # SQLite keeps the UTC time as text; the hash covers its ISO form with the offset.
            values["at_iso"] = datetime.fromisoformat(row["at"]).replace(tzinfo=UTC).isoformat()
            digest = _sha(prev, values)  # type: ignore[arg-type]
            con.execute(
                "UPDATE audit_log SET target = ?, prev_hash = ?, hash = ? WHERE id = ?",
                (values["target"], prev, digest, row["id"]),
            )
            prev = digest
        con.commit()
    finally:
        con.close()
    code, out, err = run("audit", "verify", *d)
    assert code == 1, (out, err)
    assert f"chain broken at entry {rows[1]['id']}: its MAC does not match" in out


def test_checkpoint_reveals_a_truncated_tail(data: Path, run: Run, d: tuple[str, str]) -> None:
    code, out, err = run("audit", "checkpoint", *d)
    assert code == 0, err
    rows = _rows(data)
    assert f"checkpoint: entry {rows[-1]['id']} ({len(rows)} entries)" in out
    file = data.parent / "data-audit" / "checkpoints.jsonl"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert run("audit", "verify", *d)[0] == 0
    # Remove the last two entries: what remains is a perfect chain with valid MACs.
    _execute(data, ("DELETE FROM audit_log WHERE id >= ?", (rows[-2]["id"],)))
    code, out, _ = run("audit", "verify", *d)
    assert code == 1 and "chain intact" in out
    assert f"checkpoint: the trail ends at entry {rows[-3]['id']}" in out
    assert "removed from the end" in out


def test_forged_checkpoint_line_is_reported(data: Path, run: Run, d: tuple[str, str]) -> None:
    assert run("audit", "checkpoint", *d)[0] == 0
    file = data.parent / "data-audit" / "checkpoints.jsonl"
    line = json.loads(file.read_text())
    line["entries"] = 1
    with file.open("a") as f:
        f.write(json.dumps(line) + "\n" + "not json\n")
    code, out, _ = run("audit", "verify", *d)
    assert code == 1
    assert "checkpoint line 2: the signature does not verify" in out
    assert "checkpoint line 3 is not a checkpoint" in out


def test_missing_key_is_a_clear_error(data: Path, run: Run, d: tuple[str, str]) -> None:
    key_file = data.parent / "data-keys" / "audit.key"
    key_file.rename(key_file.with_suffix(".bak"))
    code, out, err = run("audit", "verify", *d)
    assert code == 2 and out == "" and "audit key not found" in err
    assert not key_file.exists()  # a CLI command never replaces a lost key


def test_a_key_readable_by_others_is_refused(data: Path, run: Run, d: tuple[str, str]) -> None:
    os.chmod(data.parent / "data-keys" / "audit.key", 0o644)
    code, _, err = run("audit", "verify", *d)
    assert code == 2 and "chmod 600" in err


def test_key_from_the_environment(
    data: Path, run: Run, d: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, "bm90IGEga2V5")
    code, _, err = run("audit", "verify", *d)
    assert code == 2 and f"{ENV_VAR}: an audit key is 32 bytes" in err
    key_file = data.parent / "data-keys" / "audit.key"
    secret = next(ln for ln in key_file.read_text().splitlines() if not ln.startswith("#"))
    monkeypatch.setenv(ENV_VAR, secret)
    code, out, _ = run("audit", "key", *d)
    assert code == 0 and f"read from ${ENV_VAR}" in out
    assert run("audit", "verify", *d)[0] == 0
