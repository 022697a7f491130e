"""``carewire audit`` and the CLI's own records, through the real CLI on SQLite."""

from __future__ import annotations

import csv
import getpass
import io
import json
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml

from carewire.cli.audit import period
from carewire.cli.audit_trail import cli_actor
from carewire.errors import ValidationError
from tests.cli.conftest import Run

RULE: dict[str, object] = {
    "name": "bed-alert",
    "dataset": "BEDS",
    "adapter": "XMPP",
    "action": "Send Alert",
    "settings": {"recipients": "nurse", "subject": "Bed", "message": "Check", "ttl": 10},
}
SECRET_VALUE = "Distinctive-Facility-Value-4711"
PASSWORD = "Sup3r-Secret-Passw0rd"


def rows(data: Path, where: str = "1 = 1") -> list[sqlite3.Row]:
    con = sqlite3.connect(data / "carewire.db")
    con.row_factory = sqlite3.Row
    try:
        return list(con.execute(f"SELECT * FROM audit_log WHERE {where} ORDER BY id"))
    finally:
        con.close()


def execute(data: Path, statement: str) -> None:
    con = sqlite3.connect(data / "carewire.db")
    try:
        con.execute(statement)
        con.commit()
    finally:
        con.close()


def test_cli_actor_is_the_os_user() -> None:
    assert cli_actor() == f"cli:{getpass.getuser()}"


def test_period() -> None:
    today = date(2026, 3, 31)
    assert period(None, None, today) == (
        datetime(2026, 3, 2, tzinfo=UTC),
        datetime(2026, 4, 1, tzinfo=UTC),
    )
    assert period("2026-01-01", "2026-01-01", today) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 2, tzinfo=UTC),
    )
    with pytest.raises(ValidationError, match="--from"):
        period("2026-13-01", None, today)
    with pytest.raises(ValidationError, match="after"):
        period("2026-02-02", "2026-02-01", today)


def test_cli_acts_are_recorded(data: Path, tmp_path: Path, run: Run) -> None:
    d = ("--data-dir", str(data))
    actor = cli_actor()
    assert run("user", "add", "nurse.joy", "--password", PASSWORD, *d)[0] == 0
    assert run("user", "passwd", "nurse.joy", "--password", PASSWORD + "2", *d)[0] == 0
    assert run("user", "unlock", "nurse.joy", *d)[0] == 0
    assert run("user", "remove", "ghost", *d)[0] == 1
    csv_file = tmp_path / "staff.csv"
    csv_file.write_text(f"login,password\nann,{PASSWORD}\nbob,{PASSWORD}\n")
    assert run("user", "import", str(csv_file), "--quiet", *d)[0] == 0
    assert run("user", "remove", "bob", *d)[0] == 0
    code, token, _ = run("token", "create", "gateway", "--role", "admin", *d)
    assert code == 0
    assert run("token", "revoke", "gateway", *d)[0] == 0
    code, out, err = run("records", "create", "FACILITIES", "--set", f"name={SECRET_VALUE}", *d)
    assert code == 0, err
    rec_id = int(out.split("record ")[1].split()[0])
    assert run("records", "update", "FACILITIES", str(rec_id), "--set", "name=X", *d)[0] == 0
    assert run("records", "delete", "FACILITIES", str(rec_id), *d)[0] == 0
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"rules": [RULE]}))
    assert run("rules", "import", str(rules_file), *d)[0] == 0
    assert run("rules", "deactivate", "bed-alert", *d)[0] == 0
    assert run("rules", "delete", "bed-alert", *d)[0] == 0

    got = [(r["action"], r["target"], r["outcome"]) for r in rows(data)]
    assert got == [
        ("console.user.create", "admin", "success"),  # carewire init: the console's first admin
        ("user.add", "nurse.joy", "success"),
        ("user.passwd", "nurse.joy", "success"),
        ("user.unlock", "nurse.joy", "success"),
        ("user.remove", "ghost", "failure"),
        ("user.import", "staff.csv", "success"),
        ("user.remove", "bob", "success"),
        ("token.create", "gateway", "success"),
        ("token.revoke", "gateway", "success"),
        ("record.create", f"FACILITIES/{rec_id}", "success"),
        ("record.update", f"FACILITIES/{rec_id}", "success"),
        ("record.delete", f"FACILITIES/{rec_id}", "success"),
        ("rule.import", "bed-alert", "success"),
        ("rule.deactivate", "bed-alert", "success"),
        ("rule.delete", "bed-alert", "success"),
    ]
    assert {(r["actor"], r["channel"]) for r in rows(data)[1:]} == {(actor, "cli")}
    by_action = {r["action"]: json.loads(r["details"]) for r in rows(data)}
    assert by_action["user.import"] == {"created": ["ann", "bob"], "existing": 0, "rejected": 0}
    assert by_action["token.create"] == {"role": "admin"}
    assert by_action["record.create"] == {"dataset": "FACILITIES", "id": rec_id}
    assert by_action["rule.import"]["before"] is None
    assert by_action["rule.import"]["after"]["settings"]["ttl"] == 10
    assert by_action["rule.deactivate"]["before"]["active"] is True
    assert by_action["rule.deactivate"]["after"]["active"] is False
    assert by_action["rule.delete"]["after"] is None
    everything = json.dumps([dict(r) for r in rows(data)])
    for secret in (SECRET_VALUE, PASSWORD, token.strip()):
        assert secret not in everything

    code, out, err = run("audit", "verify", *d)
    assert code == 0 and out.startswith("15 entries, chain intact (15 authenticated"), (out, err)
    code, out, err = run("audit", "list", "--action", "rule", "--limit", "2", *d)
    assert code == 0 and "2 of 3 entries" in err
    assert "rule.delete" in out.splitlines()[0] and "rule.deactivate" in out.splitlines()[1]
    code, out, err = run("audit", "list", "--actor", "cli", "--outcome", "failure", *d)
    assert code == 0 and "user.remove" in out and "ghost" in out and "1 of 1" in err


def test_verify_names_the_first_bad_entry(data: Path, run: Run) -> None:
    d = ("--data-dir", str(data))
    for n in range(4):
        assert run("token", "create", f"t{n}", *d)[0] == 0
    [_, second, *_] = rows(data)
    execute(data, f"UPDATE audit_log SET target = 'other' WHERE id = {second['id']}")
    code, out, err = run("audit", "verify", *d)
    assert code == 1
    assert f"chain broken at entry {second['id']}" in out and "edited" in out
    assert "2 entries checked" in err


def test_export(data: Path, tmp_path: Path, run: Run) -> None:
    d = ("--data-dir", str(data))
    for n in range(3):
        assert run("token", "create", f"t{n}", *d)[0] == 0
    today = datetime.now(UTC).date().isoformat()
    target = tmp_path / "report.csv"
    code, out, err = run("audit", "export", "--from", today, "--to", today, "-o", str(target), *d)
    assert code == 0, err
    # carewire init created the console's first administrator: the first entry
    assert out.strip() == f"4 entries from {today} to {today} written to {target}"
    exported = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [r["target"] for r in exported] == ["admin", "t0", "t1", "t2"]
    assert exported[1]["actor"] == cli_actor() and exported[1]["hash"] == rows(data)[1]["hash"]

    code, out, _ = run("audit", "export", "--format", "json", *d)  # the last 30 days
    lines = [json.loads(line) for line in out.splitlines()]
    actions = [x["action"] for x in lines]
    assert code == 0 and actions == ["console.user.create", *["token.create"] * 3, "audit.export"]
    assert lines[-1]["details"] == {"format": "csv", "entries": 4}

    code, out, _ = run("audit", "export", "--from", "2020-01-01", "--to", "2020-01-31", *d)
    assert (
        code == 0
        and out.strip() == "id,at,actor,channel,action,target,outcome,remote_ip,details,hash"
    )
    exports = rows(data, "action = 'audit.export'")
    assert len(exports) == 3
    assert exports[-1]["target"].startswith("2020-01-01T00:00:00+00:00/2020-02-01")
    assert run("audit", "verify", *d)[0] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("audit", "export", "--from", "yesterday"), "--from: expected a date as YYYY-MM-DD"),
        (("audit", "export", "--to", "2026-02-30"), "--to: expected a date as YYYY-MM-DD"),
        (("audit", "export", "--from", "2026-02-02", "--to", "2026-02-01"), "is after --to"),
        (("audit", "export", "-o", "/nonexistent/dir/x.csv"), "cannot write"),
        (("audit", "list", "--limit", "0"), "--limit"),
    ],
)
def test_errors_are_one_line(data: Path, run: Run, args: tuple[str, ...], message: str) -> None:
    code, out, err = run(*args, "--data-dir", str(data))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err


def test_audit_needs_an_initialised_data_dir(tmp_path: Path, run: Run) -> None:
    code, _, err = run("audit", "verify", "--data-dir", str(tmp_path / "none"))
    assert code == 2 and "carewire init" in err
