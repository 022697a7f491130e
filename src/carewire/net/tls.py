"""TLS for XMPP listeners (RFC 7590): TLS 1.2+ only, and channel-binding data (RFC 5929).

``tls-server-end-point`` binds SCRAM-*-PLUS to our certificate: the hash of
the DER certificate with its signature's hash algorithm, where MD5 and SHA-1
are replaced by SHA-256 (RFC 5929 §4.1).
"""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

ALPN_XMPP_CLIENT = "xmpp-client"  # XEP-0368


def server_context(
    cert_file: Path, key_file: Path, *, alpn: list[str] | None = None
) -> ssl.SSLContext:
    """A server context: TLS 1.2 minimum, no compression, our certificate chain."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.load_cert_chain(str(cert_file), str(key_file))
    # One TLS 1.3 session ticket (OpenSSL sends two): enough for a reconnecting
    # phone to resume (a new ticket comes with each connection, resumed or not),
    # and one ticket less to mint on every login. The ticket keys are OpenSSL's,
    # random per context and only in this process's memory (a certificate reload
    # makes a new context: older tickets then get a full handshake); a TLS 1.3
    # resumption still makes an (EC)DHE exchange (OpenSSL refuses PSK-only
    # resumption unless told otherwise), so it keeps forward secrecy.
    ctx.num_tickets = 1
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def tls_server_end_point(cert_file: Path) -> bytes:
    """RFC 5929 §4 channel-binding data for the first certificate in ``cert_file``."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    algo = cert.signature_hash_algorithm
    name = algo.name if algo is not None else "sha256"
    if name in ("md5", "sha1") or not isinstance(algo, hashes.HashAlgorithm):
        name = "sha256"
    der = cert.public_bytes(Encoding.DER)
    return hashlib.new(name, der).digest()
