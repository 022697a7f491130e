"""``carewire s2s``: status, allow/disallow, policy, pin/pins/unpin — and their refusals."""

from __future__ import annotations

from pathlib import Path

from carewire.cli.runtime import Services
from carewire.core.federation import DomainStatus, FederationPolicy
from tests.cli.conftest import OnPlatform, Run
from tests.federation.peers import PEER, der, peer, sha256


def test_policy_and_allow_list(data: Path, run: Run, on_platform: OnPlatform) -> None:
    d = ("--data-dir", str(data))
    assert run("s2s", "policy", *d)[1] == "policy: open to any domain; dialback allowed\n"
    assert run("s2s", "allow", "B.Example", *d)[1] == f"{PEER} allowed\n"
    assert run("s2s", "allow", PEER, *d)[1] == f"{PEER} was allowed already\n"
    assert run("s2s", "allow", "c.example", *d)[0] == 0
    code, out, _ = run("s2s", "policy", "--certificates-only", *d)
    assert code == 0
    assert out == f"policy: partner domains only ({PEER}, c.example); certificates only\n"
    assert run("s2s", "disallow", "c.example", *d)[1] == "c.example is no longer allowed\n"
    code, _, err = run("s2s", "disallow", PEER, *d)
    assert code == 2 and "last partner domain" in err
    code, _, err = run("s2s", "disallow", "x.example", *d)
    assert code == 2 and "not on the allow-list" in err
    code, _, err = run("s2s", "allow", "*.b.example", *d)
    assert code == 2 and "wildcard" in err
    code, _, err = run("s2s", "allow", "h.example", *d)  # this server's own domain
    assert code == 2 and "own domain" in err

    async def policy(p: Services) -> FederationPolicy:
        return p.federation.trust.policy()

    assert on_platform(data, policy) == FederationPolicy(
        allow=frozenset({PEER}), certificates_only=True
    )
    out = run("s2s", "policy", "--dialback-allowed", "--open", *d)[1]
    assert out == "policy: open to any domain; dialback allowed\n"


def test_pin_pins_unpin(data: Path, run: Run, tmp_path: Path) -> None:
    d = ("--data-dir", str(data))
    cert = peer()
    pem = tmp_path / "b.pem"
    pem.write_text(cert.cert_pem())
    code, out, err = run("s2s", "pin", PEER, str(pem), *d)
    assert code == 0, err
    assert out.startswith(f"{sha256(cert)}\t{PEER}\tCN={PEER}\texpires ")
    other = peer("other.example")
    der_file = tmp_path / "other.der"
    der_file.write_bytes(der(other))
    code, _, err = run("s2s", "pin", PEER, str(der_file), *d)
    assert code == 0 and "warning: the certificate does not name b.example" in err
    lines = run("s2s", "pins", *d)[1].splitlines()
    assert lines[0].startswith("DOMAIN\tSHA256") and len(lines) == 3
    assert {line.split("\t")[1] for line in lines[1:]} == {sha256(cert), sha256(other)}
    assert len(run("s2s", "pins", "c.example", *d)[1].splitlines()) == 1
    colons = bytes.fromhex(sha256(other)).hex(":")
    assert run("s2s", "unpin", PEER, colons, *d)[1] == (
        f"{sha256(other)} is no longer pinned for {PEER}\n"
    )
    code, _, err = run("s2s", "unpin", PEER, sha256(other), *d)
    assert code == 2 and "no certificate with SHA-256" in err
    key = tmp_path / "key.pem"
    key.write_text(cert.cert_pem() + cert.key_pem())
    code, _, err = run("s2s", "pin", PEER, str(key), *d)
    assert code == 2 and "private key" in err
    garbage = tmp_path / "notes.txt"
    garbage.write_text("not a certificate")
    code, _, err = run("s2s", "pin", PEER, str(garbage), *d)
    assert code == 2 and "not a certificate" in err
    code, _, err = run("s2s", "pin", PEER, str(tmp_path / "missing.pem"), *d)
    assert code == 2 and "cannot read" in err


def test_status_table(data: Path, run: Run, on_platform: OnPlatform) -> None:
    d = ("--data-dir", str(data))

    async def report(p: Services) -> None:
        p.federation.status.update(
            DomainStatus(
                domain="c.example",
                direction="out",
                connected=False,
                node="n1",
                last_error="remote-server-timeout",
                queued=4,
            )
        )

    on_platform(data, report)  # written behind: on close at the latest
    assert run("s2s", "allow", PEER, *d)[0] == 0
    code, out, _ = run("s2s", "status", *d)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"policy: partner domains only ({PEER}); dialback allowed"
    assert lines[1].startswith("DOMAIN\tALLOWED\tPINS\tDIR")
    rows = [line.split("\t") for line in lines[2:]]
    assert [r[:6] for r in rows] == [
        [PEER, "yes", "0", "-", "-", "no"],
        ["c.example", "no", "0", "out", "n1", "no"],
    ]
    assert rows[1][10] == "4" and rows[1][11].startswith("remote-server-timeout (")
