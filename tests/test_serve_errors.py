"""`carewire serve` refuses bad TLS material with one clear line, never a traceback."""

from __future__ import annotations

import os
import socket
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


#: Each listener: the environment that turns it on (all others on port 0), the variable
#: holding its port, and the setting the one-line error names.
LISTENERS = {
    "c2s": ({}, "CAREWIRE_SERVER_C2S_PORT", "[server] c2s_port"),
    "direct-tls": ({}, "CAREWIRE_SERVER_C2S_TLS_PORT", "[server] c2s_tls_port"),
    "https": ({}, "CAREWIRE_SERVER_HTTPS_PORT", "[server] https_port"),
    "s2s": ({"CAREWIRE_S2S_ENABLED": "true"}, "CAREWIRE_SERVER_S2S_PORT", "[server] s2s_port"),
    "s2s-tls": ({"CAREWIRE_S2S_ENABLED": "true"}, "CAREWIRE_S2S_TLS_PORT", "[s2s] tls_port"),
    "components": ({}, "CAREWIRE_COMPONENTS_PORT", "[components] port"),
}
ALL_FREE = {
    "CAREWIRE_SERVER_BIND": "127.0.0.1",
    "CAREWIRE_SERVER_C2S_PORT": "0",
    "CAREWIRE_SERVER_C2S_TLS_PORT": "0",
    "CAREWIRE_SERVER_HTTPS_PORT": "0",
    "CAREWIRE_SERVER_S2S_PORT": "0",
    "CAREWIRE_S2S_TLS_PORT": "0",
    "CAREWIRE_COMPONENTS_PORT": "0",
}


@pytest.mark.parametrize("listener", list(LISTENERS))
def test_busy_port_is_one_line_naming_the_setting(tmp_path: Path, listener: str) -> None:
    data = init(tmp_path)
    with (data / "carewire.toml").open("a") as f:  # a component, so its listener starts
        f.write('\n[components.secrets]\n"gw.bad.test" = "component-secret-0123456789"\n')
    extra, variable, setting = LISTENERS[listener]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, **ALL_FREE, **extra, variable: str(port)}
        r = cli("serve", "--data-dir", str(data), env=env)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert lines == [f"error: port {port} is in use: set {setting} or {variable}"], r.stderr
    assert "Traceback" not in r.stderr
    assert not (data / "run/ports.json").exists()


def test_address_not_on_this_machine_names_the_bind_setting(tmp_path: Path) -> None:
    data = init(tmp_path)
    env = {**os.environ, **ALL_FREE, "CAREWIRE_SERVER_BIND": "192.0.2.1"}  # TEST-NET-1
    r = cli("serve", "--data-dir", str(data), env=env)
    assert r.returncode == 2, r.stderr
    assert "error: address 192.0.2.1 is not one of this machine's: set [server] bind or " in (
        r.stderr
    )
    assert "CAREWIRE_SERVER_BIND" in r.stderr and "Traceback" not in r.stderr


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


#: Nothing listens on port 1 of the loopback address: the connection is refused at once.
REFUSED_URL = "postgresql://carewire:sekret-pw@127.0.0.1:1/carewire"


def test_a_database_that_cannot_be_reached_is_one_line(tmp_path: Path) -> None:
    """`serve` (and `init`) say which database and which setting, never the password."""
    data = init(tmp_path)
    env = {**os.environ, "CAREWIRE_STORAGE_URL": REFUSED_URL}
    r = cli("serve", "--data-dir", str(data), *PORTS, env=env)
    assert r.returncode == 2, r.stderr
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert line.startswith("error: cannot open the database postgresql+asyncpg://carewire:***@")
    assert "refused" in line.lower() and "CAREWIRE_STORAGE_URL" in line
    assert "sekret-pw" not in r.stderr and "Traceback" not in r.stderr
    fresh = tmp_path / "fresh"
    r = cli("init", "--data-dir", str(fresh), "--domain", "bad.test", env=env)
    assert r.returncode == 2, r.stderr
    assert "error: cannot open the database" in r.stderr and "Traceback" not in r.stderr
    assert "sekret-pw" not in r.stderr + r.stdout


@pytest.mark.skipif(not os.environ.get("CAREWIRE_TEST_PG_URL"), reason="needs PostgreSQL")
def test_a_database_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    data = init(tmp_path)
    base = os.environ["CAREWIRE_TEST_PG_URL"].rsplit("/", 1)[0]
    env = {**os.environ, "CAREWIRE_STORAGE_URL": f"{base}/carewire_no_such_database"}
    r = cli("serve", "--data-dir", str(data), *PORTS, env=env)
    assert r.returncode == 2, r.stderr
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert 'database "carewire_no_such_database" does not exist' in line
    assert "Traceback" not in r.stderr
