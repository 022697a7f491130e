"""TLS context and tls-server-end-point channel binding (RFC 5929 §4.1)."""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from carewire.net.tls import server_context, tls_server_end_point
from carewire.security.certificates import create_self_signed


def test_context_is_tls12_plus(tmp_path: Path) -> None:
    create_self_signed("h.example", tmp_path / "c.pem", tmp_path / "k.pem")
    ctx = server_context(tmp_path / "c.pem", tmp_path / "k.pem", alpn=["xmpp-client"])
    assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2
    assert ctx.options & ssl.OP_NO_COMPRESSION


def test_end_point_hash_uses_the_signature_hash(tmp_path: Path) -> None:
    create_self_signed("h.example", tmp_path / "c.pem", tmp_path / "k.pem")
    der = x509.load_pem_x509_certificate((tmp_path / "c.pem").read_bytes()).public_bytes(
        Encoding.DER
    )
    assert tls_server_end_point(tmp_path / "c.pem") == hashlib.sha256(der).digest()
