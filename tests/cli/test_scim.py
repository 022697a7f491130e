"""``carewire scim token``: create (shown once), list (never the token), revoke — and scope."""

from __future__ import annotations

from pathlib import Path

from carewire.assembly_scim import scim_provisioning
from carewire.cli.runtime import Services
from carewire.identity.scim.model import ScimTokenError
from tests.cli.conftest import OnPlatform, Run


def _hospital(run: Run, d: tuple[str, ...]) -> None:
    code, _, err = run(
        "org", "create-hospital", "General", "--office", "555-123-4567",
        "--admin-email", "chief@general.example", "--admin-first", "C", "--admin-last", "C", *d,
    )  # fmt: skip
    assert code == 0, err


def test_token_lifecycle(data: Path, run: Run, on_platform: OnPlatform) -> None:
    d = ("--data-dir", str(data))
    _hospital(run, d)
    code, out, err = run("scim", "token", "create", "1", "entra", *d)
    assert code == 0, err
    token = out.strip()
    assert token.startswith("cwscim_") and len(token) == 50
    assert "cannot be shown again" in err
    code, _, err = run("scim", "token", "create", "1", "entra", *d)
    assert code != 0 and "entra" in err
    code, _, err = run("scim", "token", "create", "99", "x", *d)
    assert code != 0 and "99" in err
    assert run("scim", "token", "create", "1", "ldap", "--no-invite", *d)[0] == 0

    async def verify(p: Services) -> str:
        return (await scim_provisioning(p).tokens.verify(token)).actor

    assert on_platform(data, verify) == "scim:1/entra"
    code, out, _ = run("scim", "token", "list", "1", *d)
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("ORG\tNAME")
    rows = {line.split("\t")[1]: line.split("\t") for line in lines[1:]}
    assert rows["entra"][2] == "yes" and rows["ldap"][2] == "no" and rows["entra"][6] == "-"
    assert token not in out
    assert run("scim", "token", "revoke", "1", "entra", *d)[1].strip() == (
        "SCIM token 'entra' of organisation 1 revoked"
    )
    code, _, err = run("scim", "token", "revoke", "1", "nope", *d)
    assert code != 0 and "nope" in err

    async def refused(p: Services) -> str:
        try:
            await scim_provisioning(p).tokens.verify(token)
        except ScimTokenError as exc:
            return exc.message
        return "accepted"

    assert "revoked" in on_platform(data, refused)
    rows = {
        ln.split("\t")[1]: ln.split("\t")
        for ln in run("scim", "token", "list", *d)[1].splitlines()[1:]
    }
    assert rows["entra"][6] != "-"

    async def audited(p: Services) -> list[str]:
        entries, _ = await p.audit.store.entries(limit=50)
        return [e.event.action for e in entries if e.event.action.startswith("scim.token")]

    assert sorted(on_platform(data, audited)) == [
        "scim.token.create",
        "scim.token.create",
        "scim.token.revoke",
    ]
