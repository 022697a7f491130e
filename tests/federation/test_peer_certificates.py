"""Uploaded peer certificates (federation/peer_certificates.py) and remote domains (domains.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from carewire.errors import ValidationError
from carewire.federation.domains import lookup_key, remote_domain
from carewire.federation.peer_certificates import normalize_fingerprint, parse_peer_certificate
from carewire.security.certificates import CertificateError
from tests.federation.peers import LOCAL, PEER, der, peer, sha256
from tests.security.pki import NOW, Pki


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("b.example", "b.example"),
        ("  Hospital-B.Example. ", "hospital-b.example"),
        ("BÜCHER.example", "bücher.example"),
        ("xn--bcher-kva.example", "bücher.example"),
        ("partner", "partner"),
    ],
)
def test_remote_domains_are_normalised(given: str, expected: str) -> None:
    assert remote_domain(given, local=LOCAL) == expected
    assert lookup_key(given.strip()) == expected


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("", "required"),
        ("*.b.example", "wildcard"),
        ("nurse@b.example", "address"),
        ("b.example/desk", "address"),
        ("b..example", "not a valid domain"),
        ("-b.example", "not a valid domain"),
        ("a" * 64 + ".example", "not a valid domain"),
        ("b_example.org", "not a valid domain"),
        ("192.0.2.7", "IP address"),
        ("[2001:db8::1]", "IP address"),
        ("H.Example", "own domain"),
        ("chat.h.example", "own domain"),
    ],
)
def test_bad_domains_are_refused_saying_why(given: str, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        remote_domain(given, local=LOCAL)
    assert caught.value.code == "invalid-domain" and says in caught.value.message
    assert lookup_key("b..example") is None


def test_a_self_signed_certificate_is_accepted_pem_or_der() -> None:
    cert = peer()
    for upload in (cert.cert_pem(), cert.cert_pem().encode(), der(cert)):
        got = parse_peer_certificate(upload, domain=PEER, now=NOW)
        assert got.sha256 == sha256(cert) and got.subject == f"CN={PEER}"
        assert got.pem == cert.cert_pem() and got.names == (PEER,) and got.warnings == ()
        assert got.not_after == NOW + timedelta(days=365)


def test_warnings_chain_names_and_dates() -> None:
    pki = Pki()
    leaf = pki.leaf(["other.example"], subject="other.example")
    got = parse_peer_certificate(pki.chain_pem(leaf, with_key=False), domain=PEER, now=NOW)
    assert got.sha256 == sha256(leaf)  # the server's own certificate, never its issuer
    assert got.warnings == (
        "the file held 2 certificates: the first, the server's own, is pinned",
        "the certificate does not name b.example (its names: other.example)",
    )
    soon = parse_peer_certificate(peer(days=5).cert_pem(), domain=PEER, now=NOW)
    assert soon.warnings == ("the certificate expires on 2026-06-06 00:00 UTC",)
    later = parse_peer_certificate(peer(starts_in=3).cert_pem(), domain=PEER, now=NOW)
    assert later.warnings == ("the certificate is not valid before 2026-06-04 00:00 UTC",)
    idn = parse_peer_certificate(
        peer("xn--bcher-kva.example").cert_pem(), domain="bücher.example", now=NOW
    )
    assert idn.warnings == ()


@pytest.mark.parametrize(
    ("upload", "says"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"hello, this is not a certificate", "not a certificate"),
        (b"\x30\x82\x01\x00garbage", "not a certificate"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a valid X.509"),
        (
            b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            "'CERTIFICATE REQUEST'",
        ),
        (b"x" * (64 * 1024 + 1), "larger than 64 KiB"),
    ],
)
def test_garbage_is_refused_saying_why(upload: bytes, says: str) -> None:
    with pytest.raises(CertificateError) as caught:
        parse_peer_certificate(upload, domain=PEER, now=NOW)
    assert caught.value.code == "invalid-certificate" and says in caught.value.message


def test_a_private_key_is_refused_and_not_echoed() -> None:
    cert = peer()
    for upload in (cert.cert_pem() + cert.key_pem(), cert.key_pem()):
        with pytest.raises(CertificateError) as caught:
            parse_peer_certificate(upload, domain=PEER, now=NOW)
        assert "private key" in caught.value.message and "BEGIN" not in caught.value.message


def test_an_expired_certificate_is_refused() -> None:
    with pytest.raises(CertificateError) as caught:
        parse_peer_certificate(peer(days=-1).cert_pem(), domain=PEER, now=NOW)
    assert "expired on 2026-05-31" in caught.value.message


def test_fingerprints_are_normalised() -> None:
    sha = sha256(peer())
    assert normalize_fingerprint(sha.upper()) == sha
    assert normalize_fingerprint(bytes.fromhex(sha).hex(":").upper()) == sha
    for bad in ("", "abc", "g" * 64, sha + "00"):
        with pytest.raises(CertificateError) as caught:
            normalize_fingerprint(bad)
        assert caught.value.code == "invalid-fingerprint"
