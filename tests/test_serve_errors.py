"""`carewire serve` refuses bad TLS material with one clear line, never a traceback."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from carewire.security.certificates import create_self_signed
from tests.serverproc import cli, init_data_dir

PORTS = ("--c2s-port", "0", "--c2s-tls-port", "0", "--https-port", "0", "--bind", "127.0.0.1")


def init(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    init_data_dir(data, accounts=0, env={**os.environ}, domain="bad.test")
    return data


def serve(data: Path) -> tuple[int, str]:
    r = cli("serve", "--data-dir", str(data), *PORTS, env={**os.environ})
    return r.returncode, r.stderr


def expired_ca_signed(cert_file: Path, key_file: Path) -> None:
    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bad.test")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hospital CA")]))
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now - timedelta(days=400))
        .not_valid_after(now - timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.mark.parametrize("case", ["garbage", "wrong-key", "expired-ca"])
def test_bad_tls_material(tmp_path: Path, case: str) -> None:
    data = init(tmp_path)
    cert, key = data / "certs/xmpp.pem", data / "certs/xmpp.key"
    if case == "garbage":
        cert.write_text("this is not a certificate\n")
        expected = "tls.cert:"
    elif case == "wrong-key":
        other = tmp_path / "other"
        create_self_signed("bad.test", other / "c.pem", other / "k.pem")
        key.write_bytes((other / "k.pem").read_bytes())
        expected = "tls.key:"
    else:
        expired_ca_signed(cert, key)
        expected = "expired on"
    code, err = serve(data)
    assert code == 2, err
    assert expected in err
    assert "Traceback" not in err


def test_schema_newer_than_the_code(tmp_path: Path) -> None:
    """A database a newer version migrated: one line naming the revision, nothing changed."""
    import sqlite3

    data = init(tmp_path)
    con = sqlite3.connect(data / "carewire.db")
    con.execute("UPDATE alembic_version SET version_num = '0999_from_the_future'")
    con.commit()
    con.close()
    code, err = serve(data)
    assert code == 2, err
    assert "Traceback" not in err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert "schema is at revision 0999_from_the_future, newer than this Carewire" in line
    con = sqlite3.connect(data / "carewire.db")
    try:
        assert con.execute("SELECT version_num FROM alembic_version").fetchone() == (
            "0999_from_the_future",
        )
    finally:
        con.close()
