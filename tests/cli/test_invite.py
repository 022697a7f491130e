"""``carewire user invite`` and ``user invitations``; ``user add --organisation``."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from carewire.cli.runtime import Services
from carewire.directory.model import CLI_CALLER, DirectoryUser, InvitationFilter, PageRequest
from tests.cli.conftest import OnPlatform, Run

PASSWORD = "correct horse battery"


def hospital(run: Run, data: Path, name: str = "General") -> None:
    code, _, err = run(
        "org", "create-hospital", name, "--office", "555-123-4567",
        "--admin-email", f"chief@{name.lower()}.example", "--admin-first", "C", "--admin-last", "C",
        "--data-dir", str(data),
    )  # fmt: skip
    assert code == 0, err


def invited(on_platform: OnPlatform, data: Path, email: str = "") -> list[str]:
    """The addresses of organisation 1's invitations (matching ``email``)."""

    async def work(p: Services) -> list[str]:
        page = await p.directory.invitations.find(
            CLI_CALLER, 1, InvitationFilter(email=email), PageRequest(limit=500)
        )
        return sorted(i.email for i in page.items)

    return on_platform(data, work)


def test_invite_typed_addresses(data: Path, run: Run, on_platform: OnPlatform) -> None:
    d = ("--data-dir", str(data))
    code, _, err = run("user", "invite", "a@gen.example", *d)
    assert code == 2 and "name the organisation with --organisation (0 exist)" in err
    hospital(run, data)
    code, _, err = run("user", "invite", "a@gen.example", "oops@", *d)
    assert code == 2 and "Invalid email address: oops@. No invitations were sent." in err
    assert invited(on_platform, data) == ["chief@general.example"]
    code, out, err = run("user", "invite", "a@gen.example", "b@gen.example", "A@GEN.example", *d)
    assert code == 0, err
    assert out.strip() == "invited 2, resent 0, 0 users skipped, 1 duplicates, 0 rows left out"
    code, out, _ = run("user", "invite", "b@gen.example", *d)
    assert out.strip() == "invited 0, resent 1, 0 users skipped, 0 duplicates, 0 rows left out"
    code, out, err = run("user", "invitations", "--email", "gen.example", *d)
    lines = [line.split("\t") for line in out.splitlines()]
    assert sorted((cells[1], cells[3]) for cells in lines) == [
        ("a@gen.example", "Email Sent"),
        ("b@gen.example", "Email Sent"),
    ]
    assert "2 of 2 invitations" in err
    hospital(run, data, "Other")
    code, _, err = run("user", "invitations", *d)
    assert code == 2 and "(2 exist)" in err
    code, _, err = run("user", "invite", *d)
    assert code == 2 and "--csv FILE" in err


def test_a_big_csv_with_a_progress_bar_and_problems_by_line(
    data: Path, run: Run, on_platform: OnPlatform
) -> None:
    d = ("--data-dir", str(data))
    hospital(run, data)
    add = ("user", "add", "taken", "--password", PASSWORD, "--organisation", "1", "--pin", "2580")
    code, _, err = run(
        *add, "--email", "taken@gen.example", "--first-name", "T", "--last-name", "K", *d
    )
    assert code == 0, err
    rows = ["Department,Last Name,Email,First Name"]
    rows += [f"Ward {i % 3},Last{i},user{i}@gen.example,First{i}" for i in range(240)]
    rows[3] = "Ward 0,Bad,not-an-address,Row"  # line 4
    rows.append(",,user1@GEN.example,")  # line 242: a duplicate of line 3, three batches later
    rows.append("ICU,Dup,user3@gen.example,")  # line 243: a duplicate naming another group
    rows.append(",,taken@gen.example,")  # line 244: a user already
    rows.append(f"Ward 1,{'L' * 65},long@gen.example,")  # line 245
    csv = data / "staff.csv"
    csv.write_text("\n".join(rows) + "\n")
    code, out, err = run("user", "invite", "--csv", str(csv), *d)
    assert code == 1
    assert "inviting" in err and "241/241" in err  # the progress bar: rows to invite
    assert "mailing" in err and "239/239" in err  # then the mail they were sent
    assert "error: line 4: Invalid email address: not-an-address" in err
    assert "error: line 245: Last Name is longer than 64 characters." in err
    assert "skipped: taken@gen.example is a user already" in err
    summary, groups = out.strip().splitlines()
    assert summary == "invited 239, resent 0, 1 users skipped, 2 duplicates, 2 rows left out"
    assert groups == "groups created: Ward 0, Ward 1, Ward 2, ICU"
    assert invited(on_platform, data, "user1@") == ["user1@gen.example"]
    assert len(invited(on_platform, data)) == 240  # and the hospital's administrator
    mailed = sum("user1@gen.example" in p.read_text() for p in data.rglob("*.eml"))
    assert mailed == 1

    quiet = data / "quiet.csv"
    quiet.write_text("Email\n" + "".join(f"q{i}@gen.example\n" for i in range(150)))
    code, out, err = run("user", "invite", "--csv", str(quiet), "--quiet", *d)
    assert code == 0 and "inviting" not in err
    assert out.strip().startswith("invited 150, ")
    code, _, err = run("user", "invite", "--csv", str(data / "none.csv"), *d)
    assert code == 2 and "no such file" in err


def test_user_add_with_an_organisation_makes_a_directory_user(
    data: Path, run: Run, on_platform: OnPlatform
) -> None:
    d = ("--data-dir", str(data))
    hospital(run, data)
    code, _, err = run("user", "add", "jane", "--password", PASSWORD, "--organisation", "1", *d)
    assert code == 2 and "needs --email, --pin, --first-name, --last-name" in err
    args = ("user", "add", "jane", "--password", PASSWORD, "--organisation", "1")
    more = ("--email", "Jane@Gen.example", "--first-name", "Jane", "--last-name", "Doe")
    code, _, err = run(*args, *more, "--pin", "1234", *d)
    assert code == 2 and "PIN" in err
    code, out, err = run(*args, *more, "--pin", "2580", *d)
    assert code == 0, err
    assert out.strip() == "created jane@h.example in organisation 1"

    async def get(p: Services) -> DirectoryUser:
        return await p.directory.users.get(CLI_CALLER, "jane")

    user = on_platform(data, get)
    assert (user.organisation_id, user.profile.email, user.is_registered) == (
        1,
        "jane@gen.example",
        True,
    )
    assert run("user", "add", "plain", "--password", "pw1", *d)[0] == 0  # today's accounts still
    code, out, _ = run("user", "list", *d)
    assert "jane@h.example\t" in out and "plain@h.example\t" in out


def test_invitations_whose_mail_fails_are_reported(
    data: Path, run: Run, on_platform: OnPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = ("--data-dir", str(data))
    hospital(run, data)
    with socket.socket() as s:  # a loopback port nothing listens on: every connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("CAREWIRE_MAIL_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CAREWIRE_MAIL_SMTP_PORT", str(port))
    csv = data / "staff.csv"
    csv.write_text("Email\n" + "".join(f"s{i}@gen.example\n" for i in range(150)))
    code, out, err = run("user", "invite", "--csv", str(csv), *d)
    assert code == 0, err
    assert "mailing" in err and "150/150" in err
    assert out.strip().startswith("invited 150 (150 could not be mailed), ")

    async def statuses(p: Services) -> set[str]:
        page = await p.directory.invitations.find(
            CLI_CALLER, 1, InvitationFilter(email="s1"), PageRequest(limit=500)
        )
        return {i.status.value for i in page.items}

    assert on_platform(data, statuses) == {"Failure"}
