"""The self-signed XMPP certificate: creation, description, expiry handling."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from carewire.security.certificates import create_self_signed, describe, ensure_certificate

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_created_for_the_domain_and_subdomains(tmp_path: Path) -> None:
    info = ensure_certificate("hospital.example", tmp_path / "c.pem", tmp_path / "k.pem", now=NOW)
    assert info.names == ("hospital.example", "chat.hospital.example", "patients.hospital.example")
    assert info.is_self_signed and info.subject == "CN=hospital.example"
    assert info.not_after - NOW > timedelta(days=360)
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600


def test_existing_valid_certificate_is_kept(tmp_path: Path) -> None:
    first = ensure_certificate("h.example", tmp_path / "c.pem", tmp_path / "k.pem", now=NOW)
    again = ensure_certificate(
        "h.example", tmp_path / "c.pem", tmp_path / "k.pem", now=NOW + timedelta(days=10)
    )
    assert again == first


def test_expired_self_signed_is_replaced(tmp_path: Path) -> None:
    old = create_self_signed("h.example", tmp_path / "c.pem", tmp_path / "k.pem", days=1, now=NOW)
    later = NOW + timedelta(days=2)
    new = ensure_certificate("h.example", tmp_path / "c.pem", tmp_path / "k.pem", now=later)
    assert new.not_after > later and new.not_after != old.not_after


def test_expired_ca_signed_is_never_replaced(tmp_path: Path) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hospital CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "h.example")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=30))
        .not_valid_after(NOW - timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    from cryptography.hazmat.primitives import serialization

    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    info = ensure_certificate("h.example", tmp_path / "c.pem", tmp_path / "k.pem", now=NOW)
    assert not info.is_self_signed and info.not_after < NOW  # reported, left for the administrator
    assert describe(tmp_path / "c.pem").issuer == "CN=Hospital CA"


def test_unreadable_certificates_are_config_errors(tmp_path: Path) -> None:
    import pytest

    from carewire.errors import ConfigError

    (tmp_path / "c.pem").write_text("garbage")
    with pytest.raises(ConfigError, match=r"tls\.cert: .*not a PEM certificate"):
        describe(tmp_path / "c.pem")
    with pytest.raises(ConfigError, match=r"tls\.cert: .*No such file"):
        describe(tmp_path / "missing.pem")
