"""``carewire rules`` and ``carewire adapter``: rules as code through the real CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from tests.cli.conftest import Run

ALERT_RULE: dict[str, object] = {
    "name": "bed-alert",
    "purpose": "Tell the assigned nurses",
    "dataset": "BEDS",
    "adapter": "XMPP",
    "action": "Send Alert",
    "settings": {
        "recipients": "#{locs.assignments.usr.login}",
        "subject": "Bed #{bed_number}",
        "message": "Room #{room.room_number}",
        "ttl": 10,
    },
}


def _write(path: Path, rules: list[Any]) -> str:
    path.write_text(yaml.safe_dump({"rules": rules}))
    return str(path)


def test_adapter_list_shows_the_default_adapters(data: Path, run: Run) -> None:
    code, out, _ = run("adapter", "list", "--all", "--data-dir", str(data))
    assert code == 0
    assert "XMPP" in out and "DataUpdate" in out and "Assignment Manager" in out and "3 of 3" in out
    code, out, _ = run("adapter", "list", "--search", "data", "--data-dir", str(data))
    assert "DataUpdate" in out and "XMPP " not in out and "1 of 3" in out


def test_import_export_round_trip(data: Path, tmp_path: Path, run: Run) -> None:
    path = _write(tmp_path / "rules.yaml", [ALERT_RULE])
    code, out, err = run("rules", "validate", path, "--data-dir", str(data))
    assert code == 0, err
    assert "1 of 1 rule(s) valid" in out
    code, out, _ = run("rules", "import", path, "--data-dir", str(data))
    assert code == 0 and "1 rule(s) created, 0 updated" in out
    code, out, _ = run("rules", "import", path, "--data-dir", str(data))
    assert "0 rule(s) created, 1 updated" in out

    exported = tmp_path / "out.yaml"
    code, out, _ = run("rules", "export", "-o", str(exported), "--data-dir", str(data))
    assert code == 0 and "1 rule(s) written" in out
    [rule] = yaml.safe_load(exported.read_text())["rules"]
    assert rule["name"] == "bed-alert" and rule["settings"]["ttl"] == 10
    assert rule["trigger"] == {"create": True, "update": False, "attributes": []}

    code, out, _ = run("rules", "list", "--data-dir", str(data))
    assert "bed-alert" in out and "Send Alert" in out and "yes" in out
    assert run("rules", "deactivate", "bed-alert", "--data-dir", str(data))[0] == 0
    code, out, _ = run("rules", "show", "bed-alert", "--data-dir", str(data))
    assert "active: false" in out
    assert run("rules", "delete", "bed-alert", "--data-dir", str(data))[0] == 0
    code, out, _ = run("rules", "list", "--data-dir", str(data))
    assert "no rules" in out


def test_invalid_rules_are_reported_and_nothing_is_saved(
    data: Path, tmp_path: Path, run: Run
) -> None:
    broken: dict[str, object] = {
        "name": "leave",
        "dataset": "BEDS",
        "adapter": "XMPP",
        "action": "Leave Conversation",
    }
    bad_path = {**ALERT_RULE, "name": "bad-path", "settings": {**ALERT_RULE["settings"]}}  # type: ignore[dict-item]
    bad_path["settings"]["subject"] = "#{room.nope}"  # type: ignore[index]
    path = _write(tmp_path / "rules.yaml", [ALERT_RULE, broken, bad_path])

    code, out, err = run("rules", "validate", path, "--data-dir", str(data))
    assert code == 1
    assert "1 of 3 rule(s) valid" in out
    assert "Required: Recipients" in err and "Required: Conversation" in err
    assert "nope" in err

    code, _, err = run("rules", "import", path, "--data-dir", str(data))
    assert code == 2
    assert "#2" in err and "#3" in err and "Traceback" not in err
    assert "no rules" in run("rules", "list", "--data-dir", str(data))[1]


def test_unreadable_or_malformed_files(data: Path, tmp_path: Path, run: Run) -> None:
    code, _, err = run("rules", "import", str(tmp_path / "missing.yaml"), "--data-dir", str(data))
    assert code == 2 and "cannot read" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [unclosed")
    code, _, err = run("rules", "import", str(bad), "--data-dir", str(data))
    assert code == 2 and "not valid YAML" in err
    bad.write_text("just: a mapping")
    code, _, err = run("rules", "import", str(bad), "--data-dir", str(data))
    assert code == 2 and "expected a list of rules" in err
    code, _, err = run("rules", "show", "nothing", "--data-dir", str(data))
    assert code == 2 and "no rule is named 'nothing'" in err


def test_adapter_show_without_a_server_says_health_is_unknown(data: Path, run: Run) -> None:
    code, out, err = run("adapter", "show", "Assignment Manager", "--data-dir", str(data))
    assert code == 0, err
    assert "location_prefix" in out and '"am-bed-"' in out
    assert "health: unknown (no server is running on this data directory)" in out


def test_adapter_show_reads_a_running_servers_status(data: Path, run: Run) -> None:
    status = {
        "pid": os.getpid(),  # a live process, as the server's own would be
        "at": "2026-12-06T09:00:00+00:00",
        "adapters": {
            "Assignment Manager": {
                "state": "running",
                "restarts": 1,
                "last_error": "database is locked",
                "note": "queue 3/10000 (66/s), 7 applied",
                "counters": {"queued": 3, "applied": 7},
            }
        },
    }
    (data / "run").mkdir(exist_ok=True)
    (data / "run" / "adapters.json").write_text(json.dumps(status))
    code, out, _ = run("adapter", "show", "Assignment Manager", "--data-dir", str(data))
    assert code == 0
    assert "health (as of 2026-12-06T09:00:00+00:00): running queue 3/10000" in out
    assert "last error: database is locked (1 restarts)" in out
    assert "applied" in out and "7" in out
    status["pid"] = 2**22 + 1  # no such process: a stale file of a server that died
    (data / "run" / "adapters.json").write_text(json.dumps(status))
    code, out, _ = run("adapter", "show", "Assignment Manager", "--data-dir", str(data))
    assert "health: unknown" in out
