"""The data platform's commands: dataset, records and token, against an initialised data dir."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from carewire.cli import build_parser
from carewire.security.tokens import Role, TokenInfo, token_digest
from tests.cli.conftest import OnPlatform, Run
from tests.serverproc import cli


@pytest.fixture
def domain() -> str:
    return "test.localhost"


@pytest.fixture
def ward(data: Path, run: Run) -> Path:
    """``data`` with facility Main (record 1) and its rooms 101 and 102 (records 1 and 2)."""
    d = ("--data-dir", str(data))
    assert run("records", "create", "FACILITIES", "--set", "name=Main", *d)[0] == 0
    for number in ("101", "102"):
        code, _, err = run(
            "records",
            "create",
            "ROOMS",
            "--set",
            f"room_number={number}",
            "--json-values",
            '{"facility": {"name": "Main"}}',
            *d,
        )
        assert code == 0, err
    return data


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_dataset_list(data: Path, run: Run) -> None:
    code, out, _ = run("dataset", "list", "--data-dir", str(data))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "ATTRIBUTES", "LINKS", "BUILT-IN", "DESCRIPTION"]
    assert len(lines) == 32  # the header and 31 built-in datasets
    beds = next(line for line in lines if line.startswith("BEDS "))
    assert beds.split()[:4] == ["BEDS", "1", "4", "yes"]
    assert "stores all information for beds" in beds


def test_dataset_show(data: Path, run: Run) -> None:
    code, out, _ = run("dataset", "show", "BEDS", "--data-dir", str(data))
    assert code == 0
    assert out.startswith("BEDS (built-in): stores all information for beds")
    rows = [line.split() for line in out.splitlines()]
    assert ["ATTRIBUTE", "TYPE", "KEY", "REQUIRED", "PHI", "DESCRIPTION"] in rows
    assert [
        "bed_number",
        "String",
        "yes",
        "yes",
        "the",
        "number",
        "of",
        "the",
        "bed.",
    ] in rows
    assert ["LINK", "CARDINALITY", "TARGET.REVERSE", "KEY", "DESCRIPTION"] in rows
    assert ["room", "n:1", "ROOMS.beds", "yes"] in rows
    assert ["locs", "m:n", "LOCATIONS.places"] in rows
    code, out, _ = run("dataset", "show", "PATIENTS", "--data-dir", str(data))
    mrn = next(line.split() for line in out.splitlines() if line.startswith("mrn "))
    assert mrn[:5] == ["mrn", "String", "yes", "yes", "yes"]  # key, required, PHI


def test_dataset_show_unknown(data: Path, run: Run) -> None:
    code, out, err = run("dataset", "show", "NOPE", "--data-dir", str(data))
    assert code == 2 and out == ""
    assert one_error_line(err) == "error: unknown dataset 'NOPE'"


def test_records_create(ward: Path, run: Run) -> None:
    d = ("--data-dir", str(ward))
    code, out, _ = run(
        "records",
        "create",
        "BEDS",
        "--set",
        "bed_number=A",
        "--json-values",
        '{"room": {"room_number": "101", "facility": 1}}',
        *d,
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "created BEDS record 1"
    assert lines[1].split() == ["FIELD", "VALUE"] and lines[2].split() == ["id", "1"]
    assert sorted(line.split() for line in lines[3:]) == [
        ["bed_number", "A"],
        ["room", "101", "(ROOMS", "1)"],  # the linked record's name, then its id
    ]


def test_records_create_typed_values_as_json(data: Path, run: Run) -> None:
    code, out, _ = run(
        "records",
        "create",
        "CALL_LOG_HISTORY",
        "--set",
        "played=yes",
        "--set",
        "timestamp=2026-01-31T08:00:00Z",
        "--json-values",
        '{"caller": "alice", "deleted": false}',
        "--json",
        "--data-dir",
        str(data),
    )
    assert code == 0
    record = json.loads(out)
    assert record["id"] == 1
    assert {k: v for k, v in record["values"].items() if v is not None} == {
        "caller": "alice",
        "deleted": False,
        "played": True,
        "timestamp": "2026-01-31T08:00:00+00:00",
    }


def test_records_list(ward: Path, run: Run) -> None:
    code, out, err = run("records", "list", "ROOMS", "--data-dir", str(ward))
    assert code == 0
    assert [line.split() for line in out.splitlines()] == [
        ["ID", "ROOM_NUMBER", "FACILITY", "UNIT"],
        ["1", "101", "Main"],  # the linked facility by its name, not its id
        ["2", "102", "Main"],
    ]
    assert err.strip() == "1–2 of 2 records"


def test_records_list_json_filter_sort_page(ward: Path, run: Run) -> None:
    d = ("--data-dir", str(ward))
    code, out, _ = run("records", "list", "ROOMS", "--sort=-room_number", "--json", *d)
    assert code == 0
    page = json.loads(out)
    assert (page["total"], page["offset"], page["limit"]) == (2, 0, 100)
    assert [r["values"]["room_number"] for r in page["records"]] == ["102", "101"]
    assert page["records"][0] == {
        "id": 2,
        "values": {"room_number": "102", "facility": 1, "unit": None},
    }
    code, out, _ = run(
        "records",
        "list",
        "ROOMS",
        "--filter",
        "room_number:in:101,102",
        "--filter",
        "facility:eq:1",
        "--limit",
        "1",
        "--offset",
        "1",
        "--json",
        *d,
    )
    page = json.loads(out)
    assert (page["total"], page["offset"], page["limit"]) == (2, 1, 1)
    assert [r["id"] for r in page["records"]] == [2]
    code, out, err = run("records", "list", "ROOMS", "--filter", "room_number=999", *d)
    assert code == 0 and out.split() == ["ID", "ROOM_NUMBER", "FACILITY", "UNIT"]
    assert err.strip() == "0 of 0 records"


def test_records_get(ward: Path, run: Run) -> None:
    d = ("--data-dir", str(ward))
    code, out, _ = run("records", "get", "ROOMS", "2", *d)
    assert code == 0
    assert [line.split() for line in out.splitlines()] == [
        ["FIELD", "VALUE"],
        ["id", "2"],
        ["room_number", "102"],
        ["facility", "Main", "(FACILITIES", "1)"],  # the linked record's name, then its id
        ["unit"],
    ]
    code, out, _ = run("records", "get", "ROOMS", "2", "--json", *d)
    assert json.loads(out) == {
        "id": 2,
        "values": {"room_number": "102", "facility": 1, "unit": None},
    }
    code, out, err = run("records", "get", "ROOMS", "99", *d)
    assert code == 2 and one_error_line(err) == "error: ROOMS record 99 does not exist"


def test_records_upsert_and_update(ward: Path, run: Run) -> None:
    d = ("--data-dir", str(ward))
    code, out, _ = run("records", "upsert", "FACILITIES", "--set", "name=Main", *d)
    assert code == 0 and out.splitlines()[0] == "saved FACILITIES record 1"
    code, out, _ = run("records", "upsert", "FACILITIES", "--set", "name=East", "--json", *d)
    assert code == 0 and json.loads(out)["id"] == 2
    code, out, _ = run("records", "update", "ROOMS", "1", "--set", "room_number=101A", *d)
    assert code == 0 and out.splitlines()[0] == "updated ROOMS record 1"
    code, out, _ = run(
        "records",
        "update",
        "ROOMS",
        "1",
        "--json-values",
        '{"facility": {"name": "East"}}',
        "--json",
        *d,
    )
    assert code == 0
    assert json.loads(out)["values"] == {"room_number": "101A", "facility": 2, "unit": None}
    code, _, err = run(
        "records",
        "update",
        "ROOMS",
        "2",
        "--set",
        "room_number=101A",
        "--set",
        "facility=2",
        *d,
    )
    assert code == 2 and "already has the key" in one_error_line(err)


def test_records_delete(ward: Path, run: Run) -> None:
    d = ("--data-dir", str(ward))
    code, _, err = run("records", "delete", "FACILITIES", "1", *d)
    assert code == 2 and "still linked from ROOMS.facility (2)" in one_error_line(err)
    for rid in ("1", "2"):
        code, out, _ = run("records", "delete", "ROOMS", rid, *d)
        assert code == 0 and out.strip() == f"deleted ROOMS record {rid}"
    assert run("records", "delete", "FACILITIES", "1", *d)[0] == 0
    code, _, err = run("records", "delete", "FACILITIES", "1", *d)
    assert code == 2 and "does not exist" in one_error_line(err)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("records", "list", "NOPE"), "unknown dataset 'NOPE'"),
        (("records", "get", "NOPE", "1"), "unknown dataset 'NOPE'"),
        (("records", "create", "NOPE", "--set", "a=1"), "unknown dataset 'NOPE'"),
        (("records", "list", "ROOMS", "--filter", "room_number:like:1"), "unknown operator"),
        (("records", "list", "ROOMS", "--sort", "colour"), "colour"),
        (("records", "list", "ROOMS", "--limit", "0"), "limit"),
        (("records", "create", "ROOMS", "--set", "room_number"), "expected field=value"),
        (("records", "create", "ROOMS"), "no values given"),
        (("records", "create", "ROOMS", "--json-values", "{bad"), "not valid JSON"),
        (("records", "create", "ROOMS", "--json-values", "[1]"), "JSON object"),
        (
            ("records", "create", "ROOMS", "--set", "unit=1", "--json-values", '{"unit": 1}'),
            "unit is given twice",
        ),
        (("records", "create", "ROOMS", "--set", "colour=red"), "unknown attribute or link"),
        (("records", "create", "ROOMS", "--set", "room_number=1"), "facility"),
        (
            ("records", "create", "ROOMS", "--set", "room_number=1", "--set", "facility=9"),
            "FACILITIES record 9 does not exist",
        ),
        (("records", "create", "CALL_LOG_HISTORY", "--set", "played=perhaps"), "played"),
        (("records", "upsert", "CALL_LOG_HISTORY", "--set", "caller=x"), "no key"),
    ],
)
def test_record_errors_are_one_line(
    ward: Path, run: Run, args: tuple[str, ...], message: str
) -> None:
    code, out, err = run(*args, "--data-dir", str(ward))
    assert code == 2 and out == ""
    assert message in one_error_line(err)


def test_no_traceback_from_the_real_command(data: Path) -> None:
    r = cli("records", "list", "NOPE", "--data-dir", str(data))
    assert r.returncode == 2 and r.stdout == ""
    assert one_error_line(r.stderr) == "error: unknown dataset 'NOPE'"


@pytest.fixture
def verify(on_platform: OnPlatform) -> Callable[[Path, str], TokenInfo]:
    """Checks a token on the platform of a data directory."""

    def check(data: Path, token: str) -> TokenInfo:
        return on_platform(data, lambda platform: platform.tokens.verify(token))

    return check


def test_tokens(data: Path, run: Run, verify: Callable[[Path, str], TokenInfo]) -> None:
    d = ("--data-dir", str(data))
    code, out, err = run("token", "create", "gateway", "--role", "admin", *d)
    assert code == 0
    token = out.strip()
    assert re.fullmatch(r"cw_[A-Za-z0-9_-]{43}", token)
    assert "cannot be shown again" in err and token not in err
    assert verify(data, token).role is Role.ADMIN
    code, out, _ = run("token", "create", "dashboard", *d)
    reader = out.strip()
    assert verify(data, reader).role is Role.READ_ONLY
    stored = b"".join(p.read_bytes() for p in data.rglob("carewire.db*"))
    assert token.encode() not in stored and token_digest(token).encode() in stored

    code, out, _ = run("token", "list", *d)
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["NAME", "ROLE", "CREATED", "LAST", "USED", "STATE"]
    assert [(r[0], r[1], r[-1]) for r in rows[1:]] == [
        ("dashboard", "read-only", "active"),
        ("gateway", "admin", "active"),
    ]
    assert token not in out

    code, out, _ = run("token", "revoke", "gateway", *d)
    assert code == 0 and out.strip() == "revoked API token 'gateway'"
    code, out, _ = run("token", "list", *d)
    assert "revoked" in next(line for line in out.splitlines() if line.startswith("gateway"))
    with pytest.raises(Exception, match="revoked"):
        verify(data, token)


def test_a_token_with_an_expiry(
    data: Path, run: Run, verify: Callable[[Path, str], TokenInfo]
) -> None:
    d = ("--data-dir", str(data))
    code, out, err = run("token", "create", "temp", "--role", "admin", "--expires", "90d", *d)
    assert code == 0 and "valid until" in err
    info = verify(data, out.strip())
    assert info.expires_at is not None
    assert timedelta(days=89) < info.expires_at - info.created_at <= timedelta(days=90)
    assert run("token", "create", "forever", *d)[0] == 0
    code, out, _ = run("token", "list", *d)
    rows = [line.split() for line in out.splitlines()]
    assert rows[0][-1] == "EXPIRES"
    assert rows[1][0] == "forever" and rows[1][-1] == "never"
    assert rows[2][0] == "temp" and rows[2][-3] == "active"  # the expiry is a date and a time
    code, _, err = run("token", "create", "bad", "--expires", "soon", *d)
    assert code == 2 and "--expires" in one_error_line(err)
    code, _, err = run("token", "create", "bad", "--expires", "30s", *d)
    assert code == 2 and "between 1 minute and 5 years" in one_error_line(err)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("token", "revoke", "ghost"), "no API token named 'ghost'"),
        (("token", "create", "dashboard"), "already exists"),
        (("token", "create", ""), "1 to 200 characters"),
        (("token", "create", "a\tb"), "printable"),
    ],
)
def test_token_errors(data: Path, run: Run, args: tuple[str, ...], message: str) -> None:
    assert run("token", "create", "dashboard", "--data-dir", str(data))[0] == 0
    code, _, err = run(*args, "--data-dir", str(data))
    assert code == 2 and message in one_error_line(err)


def test_commands_need_an_initialised_dir(tmp_path: Path, run: Run) -> None:
    code, _, err = run("token", "list", "--data-dir", str(tmp_path / "none"))
    assert code == 2 and "carewire init" in one_error_line(err)


def test_help_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for args in (
        ["dataset", "--help"],
        ["dataset", "show", "--help"],
        ["records", "--help"],
        ["records", "list", "--help"],
        ["records", "upsert", "--help"],
        ["token", "create", "--help"],
    ):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(args)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--json-values" in out and "read-only" in out and "field:op:value" in out


def test_records_reads_of_phi_are_audited(data: Path, run: Run) -> None:
    d = ("--data-dir", str(data))
    code, _, _ = run(
        "records", "create", "PATIENTS", "--set", "mrn=M-1", "--set", "last_name=Roe", *d
    )
    assert code == 0
    code, out, _ = run("records", "list", "PATIENTS", "--filter", "mrn:eq:M-1", *d)
    assert code == 0 and "Roe" in out
    code, out, _ = run("records", "get", "PATIENTS", "1", *d)
    assert code == 0 and "M-1" in out
    assert run("records", "list", "BEDS", *d)[0] == 0  # no PHI: no read entry
    code, out, _ = run("audit", "list", "--action", "phi", *d)
    assert code == 0
    reads = [line.split() for line in out.splitlines()]
    assert [(r[3], r[4], r[6], r[7]) for r in reads] == [
        ("success", "cli", "phi.read", "PATIENTS/1"),
        ("success", "cli", "phi.read", "PATIENTS/1"),
    ]
    assert all(r[5].startswith("cli") for r in reads)
    assert "Roe" not in out
