"""TLS for server streams in memory: two real OpenSSL engines handshake through their buffers.

Checks what the kernel is told about a peer's certificate: the identities it
names (dNSName, SRVName, xmppAddr), its fingerprint, and OpenSSL's verdict
(trusted through the hospital CA, self-signed, expired, unknown CA), with the
handshake completing in every case so dialback or a pin can still decide.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL

from carewire.core.s2s_policy import PeerCertificate, certificate_verdict
from carewire.net.s2s_tls import ID_ON_DNSSRV, ID_ON_XMPPADDR, TlsEngine, identities, s2s_context
from tests.security.pki import NOW, Issued, Pki, issue


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return bytes([0x0C, len(raw)]) + raw


def _ia5(text: str) -> bytes:
    raw = text.encode()
    return bytes([0x16, len(raw)]) + raw


def test_identities_from_dns_srv_and_xmppaddr_names() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "ignored.test")])
    san = x509.SubjectAlternativeName(
        [
            x509.DNSName("A.Test"),
            x509.OtherName(ID_ON_DNSSRV, _ia5("_xmpp-server.b.test")),
            x509.OtherName(ID_ON_XMPPADDR, _utf8("c.test")),
            x509.OtherName(ID_ON_XMPPADDR, _utf8("user@d.test")),  # a user, not a domain
            x509.OtherName(ID_ON_DNSSRV, _ia5("_xmpp-client.e.test")),  # another service
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(san, critical=False)
        .sign(key, hashes.SHA256())
    )
    assert identities(cert) == frozenset({"a.test", "b.test", "c.test"})


def _files(tmp: Path, name: str, issued: Issued, chain: str) -> tuple[Path, Path]:
    cert, key = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert.write_text(chain)
    key.write_text(issued.key_pem())
    return cert, key


def handshake(server: TlsEngine, client: TlsEngine) -> None:
    for _ in range(10):
        client_done = client.is_handshaking is False or client.handshake()
        server.feed(client.outgoing())
        server_done = server.is_handshaking is False or server.handshake()
        client.feed(server.outgoing())
        if client_done and server_done and not client.is_handshaking:
            return
    raise AssertionError("the handshake did not finish")


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


@pytest.mark.parametrize(
    ("kind", "trusted", "expired", "error"),
    [
        ("hospital CA", True, False, ""),
        ("self-signed", False, False, "self-signed"),
        ("expired", False, True, "expired"),
        ("other CA", False, False, "signature"),  # its CAs have our CAs' names
    ],
)
def test_the_receiving_side_learns_the_peers_certificate_and_its_verdict(
    tmp_path: Path, pki: Pki, kind: str, trusted: bool, expired: bool, error: str
) -> None:
    root = tmp_path / "root.pem"
    root.write_text(pki.root.cert_pem())
    ours = pki.leaf(["b.test"], subject="b.test")
    server_ctx = s2s_context(
        *_files(tmp_path, "b", ours, pki.chain_pem(ours, with_key=False)), root
    )
    if kind == "hospital CA":
        peer = pki.leaf(["a.test"], subject="a.test")
        chain = pki.chain_pem(peer, with_key=False)
    elif kind == "self-signed":
        peer = issue("a.test", names=["a.test"])
        chain = peer.cert_pem()
    elif kind == "expired":
        peer = pki.leaf(["a.test"], subject="a.test", not_after=NOW + timedelta(days=1))
        chain = pki.chain_pem(peer, with_key=False)
    else:
        other = Pki()
        peer = other.leaf(["a.test"], subject="a.test")
        chain = other.chain_pem(peer, with_key=False)
    client_ctx = s2s_context(*_files(tmp_path, "a", peer, chain), root)
    server = TlsEngine(server_ctx, server_side=True)
    client = TlsEngine(client_ctx, server_side=False, server_name="b.test")
    handshake(server, client)
    got = server.peer()
    assert isinstance(got, PeerCertificate)
    assert got.fingerprint == hashlib.sha256(peer.cert.public_bytes(Encoding.DER)).hexdigest()
    assert got.identities == frozenset({"a.test"})
    assert (got.is_trusted, got.is_expired) == (trusted, expired)
    assert error in got.error
    assert server.version in ("TLSv1.2", "TLSv1.3")
    verdict = certificate_verdict(got, "a.test", frozenset())
    assert verdict.is_ok is trusted
    pinned = certificate_verdict(got, "a.test", frozenset({got.fingerprint}))
    assert pinned.is_ok is not expired  # a pin vouches for any certificate but an expired one
    # The initiating side sees ours, trusted through the same CA.
    theirs = client.peer()
    assert theirs is not None and theirs.is_trusted and theirs.names("b.test")
    # Data flows both ways after the handshake.
    client.write(b"<stream:stream>")
    server.feed(client.outgoing())
    assert server.read() == (b"<stream:stream>", False)


def test_a_peer_without_a_certificate_completes_the_handshake(tmp_path: Path, pki: Pki) -> None:
    ours = pki.leaf(["b.test"], subject="b.test")
    server_ctx = s2s_context(
        *_files(tmp_path, "b", ours, pki.chain_pem(ours, with_key=False)), None
    )

    bare = SSL.Context(SSL.TLS_METHOD)
    server = TlsEngine(server_ctx, server_side=True)
    client = TlsEngine(bare, server_side=False, server_name="b.test")
    handshake(server, client)
    assert server.peer() is None
    assert not certificate_verdict(None, "a.test", frozenset()).is_ok
