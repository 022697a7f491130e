"""Record tables that fit a terminal: ``--columns``, linked records by name, widths and marks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from carewire.cli.runtime import Services
from carewire.cli.tables import MARK, cut, fit, render
from tests.cli.conftest import OnPlatform, Run

LONG = "a bed by the window with a view of the car park and the hills beyond them"


@pytest.fixture
def ward(data: Path, run: Run) -> Path:
    """Facility Main and two of its locations (one with a long name)."""
    d = ("--data-dir", str(data))
    assert run("records", "create", "FACILITIES", "--set", "name=Main", *d)[0] == 0
    for location, name in (("L1", LONG), ("L2", "Lobby")):
        code, _, err = run(
            "records",
            "create",
            "LOCATIONS",
            "--set",
            f"location_id={location}",
            "--set",
            f"name={name}",
            "--json-values",
            '{"facility": {"name": "Main"}}',
            *d,
        )
        assert code == 0, err
    return data


def test_cut_and_fit() -> None:
    assert cut("abcdef", 6) == "abcdef" and cut("abcdefg", 6) == "abcde" + MARK
    assert fit([2, 40, 10], 40) == [2, 24, 10]  # the widest gives way first
    assert fit([30, 30], 40) == [19, 19]
    assert fit([8, 8, 8], 10) == [6, 6, 6]  # never below the minimum
    lines = render([(1, "x" * 100)], ("ID", "TEXT"), 30)
    assert all(len(line) <= 30 for line in lines) and lines[1].endswith(MARK)
    assert render([(1, "x" * 100)], ("ID", "TEXT"), None)[1].endswith("x" * 100)


def test_records_list_fits_80_columns(
    ward: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run("records", "list", "LOCATIONS", "--data-dir", str(ward))
    assert code == 0
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[0].split() == ["ID", "LOCATION_ID", "NAME", "FACILITY"]
    first = lines[1]
    assert MARK in first and LONG not in first and LONG[:40] in first
    assert first.endswith("  Main")  # the facility by its name, not its id
    assert lines[2].split() == ["2", "L2", "Lobby", "Main"]


def test_records_list_columns(ward: Path, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    cmd = ("records", "list", "LOCATIONS", "--data-dir", str(ward), "--columns")
    code, out, _ = run(*cmd, "location_id,facility,id")
    assert code == 0
    assert [line.split() for line in out.splitlines()] == [
        ["LOCATION_ID", "FACILITY", "ID"],
        ["L1", "Main", "1"],
        ["L2", "Main", "2"],
    ]
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(*cmd, "ID,Name")  # any case
    assert code == 0 and out.splitlines()[1].startswith("1   a bed by the window")
    assert all(len(line) <= 80 for line in out.splitlines())
    code, _, err = run(*cmd, "name,colour")
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (
        "error: --columns: LOCATIONS has no column 'colour'; "
        "its columns: id, location_id, name, facility"
    )
    code, _, err = run(*cmd, ",")
    assert code == 2 and "LOCATIONS needs at least one column" in err


def test_deliveries_say_who_was_notified(data: Path, run: Run, on_platform: OnPlatform) -> None:
    at = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)

    async def fill(p: Services) -> tuple[int, int]:
        ds = p.datasets
        message = await ds.create("MESSAGES", {"uuid": "m-1", "received_at": at, "sent_at": at})
        for name, extra in (
            ("nurse.adams@h.example", {"acknowledged": at}),
            ("nurse.baker@h.example", {}),
        ):
            who = await ds.create("IDENTITIES", {"name": name})
            values = {"message": message.id, "recipient": who.id, "sent_at": at} | extra
            await ds.create("MESSAGE_DELIVERIES", values)
        base = {"status": "Delivered", "triggered_at": at, "rule": "Nurse call"}
        sent = await ds.create("DELIVERIES", base | {"message": message.id})
        quiet = await ds.create("DELIVERIES", base | {"rule": "Mark seen"})
        return sent.id, quiet.id

    sent, quiet = on_platform(data, fill)
    d = ("--data-dir", str(data))
    code, out, _ = run("records", "list", "DELIVERIES", "--columns", "id,rule,notified", *d)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "RULE", "NOTIFIED"]
    row = next(line for line in lines if line.startswith(f"{sent} "))
    assert "nurse.adams@h.example (Acknowledged), nurse.baker@h.example (Sent)" in row
    code, out, _ = run("records", "get", "DELIVERIES", str(sent), *d)
    assert code == 0
    table = out[out.index("NOTIFIED") :].splitlines()
    assert table[0].split() == [
        "NOTIFIED",
        "STATE",
        "SENT",
        "RECEIVED",
        "DISPLAYED",
        "ACKNOWLEDGED",
        "FAILURE",
    ]
    assert table[1].split()[:2] == ["nurse.adams@h.example", "Acknowledged"]
    assert table[2].split() == ["nurse.baker@h.example", "Sent", "2026-03-04T09:00:00+00:00"]
    code, out, _ = run("records", "get", "DELIVERIES", str(quiet), *d)
    assert code == 0 and "notified: nobody (this delivery sent no message)" in out
