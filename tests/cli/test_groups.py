"""``carewire group``: create, list, rename, members, delete and CSV import."""

from __future__ import annotations

import re
from pathlib import Path

from carewire.cli.runtime import Services
from tests.cli.conftest import OnPlatform, Run

PASSWORD = "correct horse battery"


def setup_org(run: Run, data: Path) -> tuple[str, ...]:
    """Hospital 1 with users ann and bob, and hospital 2 with tom; the --data-dir option."""
    d = ("--data-dir", str(data))
    for name in ("General", "Other"):
        code, _, err = run(
            "org", "create-hospital", name, "--office", "555-123-4567",
            "--admin-email", f"chief@{name.lower()}.example",
            "--admin-first", "C", "--admin-last", "C", *d,
        )  # fmt: skip
        assert code == 0, err
    for login, org, last in (("ann", "1", "Zane"), ("bob", "1", "Able"), ("tom", "2", "Tee")):
        code, _, err = run(
            "user", "add", login, "--password", PASSWORD, "--organisation", org,
            "--email", f"{login}@staff.example", "--pin", "2580",
            "--first-name", login.title(), "--last-name", last, *d,
        )  # fmt: skip
        assert code == 0, err
    return d


def test_group_lifecycle(data: Path, run: Run, on_platform: OnPlatform) -> None:
    d = setup_org(run, data)
    code, out, err = run("group", "create", "Night Nurses", "--organisation", "1", *d)
    assert code == 0, err
    assert out.strip() == "created group 1: Night Nurses (night-nurses@groups)"
    code, _, err = run("group", "create", "night NURSES", "--organisation", "1", *d)
    assert code == 2 and "a group named 'night NURSES' exists in this organisation" in err
    code, _, err = run("group", "create", "x" * 65, "--organisation", "1", *d)
    assert code == 2 and "64 characters" in err
    assert (
        run("group", "add", "1", "ann", "bob", *d)[1].strip() == "group Night Nurses has 2 members"
    )
    code, _, err = run("group", "add", "1", "tom", *d)  # another organisation's user
    assert code == 2 and "tom" in err
    code, out, _ = run("group", "members", "1", *d)
    assert [line.split("\t")[0] for line in out.splitlines()] == ["bob", "ann"]
    assert run("group", "remove", "1", "bob", *d)[1].strip() == "group Night Nurses has 1 members"
    assert run("group", "rename", "1", "Nights", *d)[0] == 0
    code, out, _ = run("group", "list", "--organisation", "1", *d)
    assert re.search(r"^1\s+1\s+Nights$", out, re.MULTILINE), out
    code, out, _ = run("group", "list", "--organisation", "2", *d)
    assert out.splitlines()[1:] == []
    assert run("group", "delete", "1", *d)[1].strip() == "deleted group 1: Nights"
    code, _, err = run("group", "delete", "1", *d)
    assert code == 2 and "no group 1" in err

    async def actions(p: Services) -> list[str]:
        entries, _ = await p.audit.store.entries(limit=1000)
        return [e.event.action for e in entries if e.event.action.startswith("directory.group")]

    assert sorted(set(on_platform(data, actions))) == [
        "directory.group.create",
        "directory.group.delete",
        "directory.group.members.add",
        "directory.group.members.remove",
        "directory.group.update",
    ]


def test_import_reports_bad_rows_and_keeps_good_ones(data: Path, run: Run) -> None:
    d = setup_org(run, data)
    assert run("group", "create", "Cardiology", "--organisation", "1", *d)[0] == 0
    csv = data / "groups.csv"
    csv.write_text(
        "Email,Department\n"
        "ann@staff.example,Cardiology\n"
        ",ICU\n"
        "bob@staff.example,\n"
        "tom@staff.example,ICU\n"
        "bob@staff.example,icu\n"
    )
    code, out, err = run("group", "import", str(csv), "--organisation", "1", *d)
    assert code == 1
    assert "error: line 4: Department is empty." in err
    assert "error: line 5: tom@staff.example is not a user of this organisation." in err
    assert out.strip() == (
        "created 1 groups (ICU), 1 existed, 2 memberships added, 2 rows left out"
    )
    code, out, _ = run("group", "list", "--organisation", "1", *d)
    assert re.search(r"\s1\s+Cardiology$", out, re.MULTILINE), out
    assert re.search(r"\s1\s+ICU$", out, re.MULTILINE), out
    code, _, err = run("group", "import", str(data / "none.csv"), "--organisation", "1", *d)
    assert code == 2 and "no such file" in err
    csv.write_text("Email\nann@staff.example\n")
    code, _, err = run("group", "import", str(csv), "--organisation", "1", *d)
    assert code == 2 and "Department is required" in err
