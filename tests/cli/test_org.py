"""``carewire org``: organisations, members, communities, affiliations; organisation tokens."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from carewire.cli.runtime import Services
from carewire.security.audit import AuditEntry
from carewire.security.tokens import Role
from tests.cli.conftest import OnPlatform, Run

HOSPITAL = ("--office", "(408) 882-5830", "--admin-first", "Cora", "--admin-last", "Chief")


def mails_to(data: Path, address: str) -> list[str]:
    """The bodies of the outbox's messages to ``address``, oldest first."""
    bodies = []
    for path in sorted(data.rglob("*.eml")):
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        if msg["To"] == address:
            part = msg.get_body(("plain",))
            assert part is not None
            bodies.append(str(part.get_content()))
    return bodies


def hospital(run: Run, data: Path, name: str, admin: str) -> int:
    code, out, err = run(
        "org", "create-hospital", name, *HOSPITAL, "--admin-email", admin, "--data-dir", str(data)
    )
    assert code == 0, err
    found = re.search(r"created hospital (\d+): ", out)
    assert found, out
    return int(found.group(1))


def audit(on_platform: OnPlatform, data: Path, action: str) -> list[AuditEntry]:
    async def work(p: Services) -> list[AuditEntry]:
        entries, _ = await p.audit.store.entries(action=action)
        return entries

    return on_platform(data, work)


def test_create_show_update_and_list(data: Path, run: Run, on_platform: OnPlatform) -> None:
    d = ("--data-dir", str(data))
    h = hospital(run, data, "General", "chief@general.example")
    assert len(mails_to(data, "chief@general.example")) == 1
    code, _, err = run(
        "org", "create-hospital", "GENERAL", *HOSPITAL, "--admin-email", "x@y.example", *d
    )
    assert code == 2 and "an organisation named 'GENERAL' exists" in err
    code, _, err = run(
        "org",
        "create-hospital",
        "Bad",
        "--office",
        "call me",
        "--admin-email",
        "x@y.example",
        "--admin-first",
        "A",
        "--admin-last",
        "B",
        *d,
    )
    assert code == 2 and "Office number" in err
    code, out, err = run(
        "org",
        "update",
        str(h),
        "--whole-org-messaging",
        "yes",
        "--retention",
        "7",
        "years",
        "--pin-length",
        "6",
        *d,
    )
    assert code == 0, err
    assert re.search(r"message retention\s+7 years", out) and re.search(r"PIN length\s+6", out)
    code, out, _ = run("org", "show", str(h), *d)
    assert re.search(r"whole-organisation messaging\s+yes", out)
    assert re.search(r"message expiration\s+7 Days", out)
    code, _, err = run("org", "update", str(h), "--retention", "7", "aeons", *d)
    assert code == 2 and "--retention" in err
    code, _, err = run("org", "show", "99", *d)
    assert code == 2 and "no organisation 99" in err
    code, out, _ = run("org", "list", *d)
    assert [line.split()[:3] for line in out.splitlines()[1:]] == [[str(h), "hospital", "General"]]
    (entry, *_) = audit(on_platform, data, "directory.organisation.update")
    assert entry.event.actor.startswith("cli") and entry.event.channel.value == "cli"


def test_a_practice_members_and_admins(data: Path, run: Run) -> None:
    d = ("--data-dir", str(data))
    h = hospital(run, data, "General", "chief@general.example")
    practice = (
        "org", "create-practice", str(h), "Clinic", "--office", "555-123-4567",
        "--admin-email", "boss@clinic.example", "--admin-first", "Bo", "--admin-last", "Ss",
    )  # fmt: skip
    code, _, err = run(*practice, "--emails", "ok@clinic.example", "bad@", *d)
    assert code == 2 and "Invalid email address: bad@. No invitations were sent." in err
    assert not mails_to(data, "ok@clinic.example")
    code, out, err = run(*practice, "--emails", "ok@clinic.example", *d)
    assert code == 0, err
    assert "Practice Clinic was created (id 2)." in out and "invited 1 initial users" in out
    code, out, _ = run("org", "affiliations", "list", str(h), *d)
    assert re.search(r"2\s+boss@clinic\.example\s+active\s+organisation", out), out
    for login, last, admin in (("zoe", "Zed", "--admin"), ("abe", "Able", None)):
        args = [
            "user",
            "add",
            login,
            "--password",
            "correct horse battery",
            "--organisation",
            str(h),
        ]
        args += ["--email", f"{login}@general.example", "--pin", "2580", "--last-name", last]
        args += ["--first-name", login.title()]
        code, _, err = run(*args, *([admin] if admin else []), *d)
        assert code == 0, err
    code, out, _ = run("org", "admins", str(h), *d)
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["zoe"]
    code, out, err = run("org", "members", str(h), "--limit", "1", *d)
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["abe"]
    assert "1–1 of 2 members" in err


def test_communities_and_affiliations(data: Path, run: Run, on_platform: OnPlatform) -> None:
    d = ("--data-dir", str(data))
    a = hospital(run, data, "Alpha", "chief@alpha.example")
    b = hospital(run, data, "Beta", "chief@beta.example")
    c = hospital(run, data, "Gamma", "chief@gamma.example")
    add = ["user", "add", "bob", "--password", "correct horse battery", "--organisation", str(b)]
    add += ["--first-name", "Bob", "--last-name", "Beta", "--email", "bob@beta.example"]
    assert run(*add, "--pin", "2580", "--admin", *d)[0] == 0
    code, out, err = run("org", "communities", "--add", str(a), str(c), *d)
    assert code == 0, err
    assert "added Gamma to the community of Alpha" in out and f"{a}  Alpha: Gamma" in out
    code, _, err = run("org", "communities", "--add", str(a), str(a), *d)
    assert code == 2 and "A community holds organisations, never other communities" in err

    code, out, err = run("org", "affiliations", "invite", str(a), str(b), *d)
    assert code == 0, err
    aff = int(re.search(r"\(affiliation (\d+)\)", out).group(1))  # type: ignore[union-attr]
    (body,) = mails_to(data, "bob@beta.example")
    token = re.search(r"invite\?token=([A-Za-z0-9_-]+)", body).group(1)  # type: ignore[union-attr]
    code, out, _ = run("org", "affiliations", "list", str(b), *d)
    assert re.search(rf"{aff}\s+{a}\s+Alpha \(pending\)\s+incoming", out), out
    code, _, err = run("org", "affiliations", "accept", str(aff), "--token", "x" * 22, *d)
    assert code == 2 and "not valid any more" in err
    code, out, err = run(
        "org", "affiliations", "accept", str(aff), f"--token={token}", "--new-group", "Liaisons", *d
    )
    assert code == 0, err
    assert "is active for the group Liaisons" in out
    code, _, err = run("org", "affiliations", "accept", str(aff), f"--token={token}", *d)
    assert code == 2 and "not valid any more" in err
    code, out, _ = run("org", "affiliations", "list", str(b), *d)
    assert re.search(r"Alpha\s+active\s+groups:\d+", out), out
    assert run("org", "affiliations", "permissions", str(a), str(b), "--none", *d)[0] == 0
    code, out, _ = run("org", "affiliations", "list", str(a), *d)
    assert re.search(r"Beta\s+active\s+none", out), out
    code, _, err = run("org", "affiliations", "permissions", str(a), str(b), "--groups", "x", *d)
    assert code == 2 and "--groups" in err
    assert run("org", "affiliations", "delete", str(b), str(a), *d)[0] == 0
    code, out, _ = run("org", "affiliations", "list", str(a), *d)
    assert "Beta" not in out
    code, _, err = run("org", "affiliations", "delete", str(b), str(a), *d)
    assert code == 2
    actions = [e.event.action for e in audit(on_platform, data, "directory.affiliation.delete")]
    assert actions == ["directory.affiliation.delete"]


def test_a_token_for_one_organisation(data: Path, run: Run, on_platform: OnPlatform) -> None:
    d = ("--data-dir", str(data))
    h = hospital(run, data, "General", "chief@general.example")
    code, _, err = run(
        "token", "create", "ghost-org", "--role", "admin", "--organisation", "99", *d
    )
    assert code == 2 and "no organisation 99" in err
    code, out, err = run(
        "token", "create", "general", "--role", "admin", "--organisation", str(h), *d
    )
    assert code == 0 and f"for organisation {h}" in err
    info = on_platform(data, lambda p: p.tokens.verify(out.strip()))
    assert (info.role, info.organisation_id) == (Role.ADMIN, h)
    assert run("token", "create", "everything", "--role", "admin", *d)[0] == 0
    code, out, _ = run("token", "list", *d)
    rows = [line.split() for line in out.splitlines()]
    assert rows[0][-1] == "ORGANISATION"
    assert {r[0]: r[-1] for r in rows[1:]} == {"everything": "all", "general": str(h)}


@pytest.mark.parametrize("command", [("org", "list"), ("group", "list", "--organisation", "1")])
def test_commands_need_an_initialised_dir(
    tmp_path: Path, run: Run, command: tuple[str, ...]
) -> None:
    code, _, err = run(*command, "--data-dir", str(tmp_path / "none"))
    assert code == 2 and "carewire init" in err
