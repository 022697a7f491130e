"""``carewire cert``: the certificate manager through the real CLI."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.cli.conftest import Run
from tests.security.pki import Pki, issue, p12

DOMAIN = "h.example"
#: The CLI runs on the system clock: certificates valid around the real now.
START = datetime.now(UTC) - timedelta(days=1)
END = datetime.now(UTC) + timedelta(days=90)


@pytest.fixture
def domain() -> str:
    return DOMAIN


def cert_rows(data: Path) -> list[tuple[str, str, str, str]]:
    con = sqlite3.connect(data / "carewire.db")
    try:
        rows = con.execute("SELECT actor, channel, action, outcome FROM audit_log ORDER BY id")
        return [tuple(r) for r in rows.fetchall() if r[2].startswith("certificate.")]
    finally:
        con.close()


def test_show_and_download(data: Path, tmp_path: Path, run: Run) -> None:
    code, out, _ = run("cert", "show", "--data-dir", str(data))
    assert code == 0
    assert f"Domain:       {DOMAIN}" in out and "Status:       Good" in out
    assert "Self-signed:  yes" in out and "CSR:          No CSR in progress" in out
    code, out, _ = run("cert", "download", "--data-dir", str(data))
    assert code == 0 and out == (data / "certs/xmpp.pem").read_text()
    target = tmp_path / "out.pem"
    code, out, _ = run("cert", "download", "-o", str(target), "--data-dir", str(data))
    assert code == 0 and target.read_text() == (data / "certs/xmpp.pem").read_text()


def test_csr_then_upload(data: Path, tmp_path: Path, run: Run) -> None:
    code, _, err = run("cert", "csr", "--country", "US", "--data-dir", str(data))
    assert code == 2
    assert "The information provided is either invalid or incomplete." in err
    assert "- Required: City" in err and "- Required: Organizational Unit" in err
    csr_file = tmp_path / "req.csr"
    fields = ["--country", "US", "--city", "Fort Wayne", "--state", "Indiana"]
    fields += ["--organization", "General Hospital", "--unit", "Engineering"]
    code, out, err = run("cert", "csr", *fields, "-o", str(csr_file), "--data-dir", str(data))
    assert code == 0, err
    csr = x509.load_pem_x509_csr(csr_file.read_bytes())
    code, out, _ = run("cert", "show", "--data-dir", str(data))
    assert "CSR:          US, Indiana, Fort Wayne, General Hospital, Engineering" in out

    # The CA signs the CSR's public key; the certificate is uploaded without a key.
    pki = Pki()
    key = serialization.load_pem_private_key((data / "certs/csr/key.pem").read_bytes(), None)
    assert key.public_key() == csr.public_key()
    leaf = pki.leaf(
        [DOMAIN, f"chat.{DOMAIN}", f"patients.{DOMAIN}"], key=key, not_before=START, not_after=END
    )
    signed = tmp_path / "signed.pem"
    signed.write_text(pki.chain_pem(leaf, with_key=False))
    code, out, err = run("cert", "upload", str(signed), "--federating", "--data-dir", str(data))
    assert code == 0, err
    assert "certificate installed: CN=h.example, issued by CN=Test Intermediate CA" in out
    code, out, _ = run("cert", "show", "--data-dir", str(data))
    assert "Self-signed:  no" in out and "No CSR in progress" in out
    assert cert_rows(data) == [
        ("cli", "cli", "certificate.csr", "success"),
        ("cli", "cli", "certificate.upload", "success"),
    ]


def test_upload_refused(data: Path, tmp_path: Path, run: Run) -> None:
    leaf = Pki().leaf(not_before=START, not_after=END)
    bad = tmp_path / "bad.pem"
    bad.write_text(leaf.key_pem() + leaf.cert_pem())
    code, _, err = run("cert", "upload", str(bad), "--data-dir", str(data))
    assert code == 2
    assert "the certificate must come first; the private key, if included, goes last" in err
    code, _, err = run("cert", "upload", str(tmp_path / "nope"), "--data-dir", str(data))
    assert code == 2 and "cannot read" in err
    assert cert_rows(data) == [("cli", "cli", "certificate.upload", "failure")]


def test_delete_needs_yes(data: Path, run: Run) -> None:
    before = (data / "certs/xmpp.pem").read_text()
    code, _, err = run("cert", "delete", "--data-dir", str(data))
    assert code == 2 and "--yes" in err
    assert (data / "certs/xmpp.pem").read_text() == before
    code, out, err = run("cert", "delete", "--yes", "--data-dir", str(data))
    assert code == 0, err
    assert "new self-signed" in out and (data / "certs/xmpp.pem").read_text() != before
    assert [r[2] for r in cert_rows(data)] == ["certificate.delete", "certificate.generate"]


def test_apns(data: Path, tmp_path: Path, run: Run) -> None:
    push = tmp_path / "push.p12"
    push.write_bytes(
        p12(issue("Push Services: org.example.app", not_before=START, not_after=END), b"s3cret")
    )
    password = tmp_path / "pw.txt"
    password.write_text("wrong\n")
    args = ["cert", "apns", str(push), "--password-file", str(password), "--data-dir", str(data)]
    code, _, err = run(*args)
    assert code == 2 and "the password is wrong" in err
    password.write_text("s3cret\n")
    code, out, err = run(*args, "--production", "--next-gen")
    assert code == 0, err
    assert "push certificate (next-gen) stored" in out
    code, out, _ = run("cert", "show", "--data-dir", str(data))
    assert "Push (next-gen): CN=Push Services: org.example.app, production" in out
    assert cert_rows(data) == [
        ("cli", "cli", "certificate.apns.upload", "failure"),
        ("cli", "cli", "certificate.apns.upload", "success"),
    ]
