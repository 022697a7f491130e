"""TLS for server-to-server streams (RFC 7590, XEP-0178): contexts, engine, peer identities.

Client streams use :mod:`ssl`; server streams need what it cannot do: ask the
peer for a certificate *without* failing the handshake when it does not
validate (a self-signed peer may still use dialback, or be pinned). OpenSSL's
verification runs with a callback that records its verdict instead of
aborting (pyOpenSSL), and the kernel decides what the certificate proves
(:func:`carewire.core.s2s_policy.certificate_verdict`).
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ObjectIdentifier
from OpenSSL import SSL, crypto

from carewire.core.s2s_policy import PeerCertificate

ID_ON_XMPPADDR = ObjectIdentifier("1.3.6.1.5.5.7.8.5")  # RFC 6120 §13.7.1.4
ID_ON_DNSSRV = ObjectIdentifier("1.3.6.1.5.5.7.8.7")  # RFC 4985 SRVName
_EXPIRED = {9, 10}  # X509_V_ERR_CERT_NOT_YET_VALID, X509_V_ERR_CERT_HAS_EXPIRED


class TlsFailed(Exception):
    """The handshake or the TLS session failed."""


@dataclass(slots=True)
class _Verdict:
    errors: list[tuple[int, int]] = field(default_factory=list)  # (depth, X509 error)


def _record(conn: SSL.Connection, _cert: crypto.X509, errnum: int, depth: int, ok: int) -> bool:
    """OpenSSL's verify callback: note the error, let the handshake go on."""
    if not ok:
        verdict = conn.get_app_data()
        if isinstance(verdict, _Verdict):
            verdict.errors.append((depth, errnum))
    return True


def s2s_context(cert_file: Path, key_file: Path, ca_file: Path | None) -> SSL.Context:
    """A context for both directions: TLS 1.2+, our chain, the system store plus ``ca_file``."""
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION)
    ctx.use_certificate_chain_file(str(cert_file))
    ctx.use_privatekey_file(str(key_file))
    ctx.check_privatekey()
    ctx.set_default_verify_paths()
    if ca_file is not None:
        ctx.load_verify_locations(str(ca_file))
    # VERIFY_PEER without FAIL_IF_NO_PEER_CERT: the server asks for a certificate, the
    # peer may send none (dialback), and the callback keeps the handshake going.
    ctx.set_verify(SSL.VERIFY_PEER, _record)
    return ctx


def identities(cert: x509.Certificate) -> frozenset[str]:
    """The domains a certificate names (RFC 6120 §13.7.1.2, XEP-0178 §3): DNS, SRV, xmppAddr."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset()
    names = {n.lower().rstrip(".") for n in san.get_values_for_type(x509.DNSName)}
    for other in san.get_values_for_type(x509.OtherName):
        value = _der_string(other.value)
        if value is None:
            continue
        if other.type_id == ID_ON_XMPPADDR and "@" not in value and "/" not in value:
            names.add(value.lower())
        elif other.type_id == ID_ON_DNSSRV and value.startswith("_xmpp-server."):
            names.add(value.split(".", 1)[1].lower())
    return frozenset(names)


def _der_string(der: bytes) -> str | None:
    """The text of a DER UTF8String or IA5String (short form or one length byte)."""
    if len(der) < 2 or der[0] not in (0x0C, 0x16):
        return None
    length, start = der[1], 2
    if length == 0x81 and len(der) > 2:
        length, start = der[2], 3
    try:
        return der[start : start + length].decode("utf-8")
    except UnicodeDecodeError:
        return None


def peer_certificate(cert: x509.Certificate, errors: list[tuple[int, int]]) -> PeerCertificate:
    """What the kernel needs of a peer's certificate and OpenSSL's verdict on its chain."""
    fingerprint = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
    expired = any(err in _EXPIRED for depth, err in errors if depth == 0)
    error = ""
    if errors:
        depth, err = errors[0]
        error = f"{_reason(err)} (depth {depth})"
    return PeerCertificate(
        fingerprint=fingerprint,
        identities=identities(cert),
        is_trusted=not errors,
        is_expired=expired,
        error=error,
        not_after=cert.not_valid_after_utc.astimezone(UTC),
    )


def _reason(err: int) -> str:
    return {
        2: "unable to get issuer certificate",
        9: "certificate is not yet valid",
        10: "certificate has expired",
        18: "self-signed certificate",
        19: "self-signed certificate in chain",
        20: "unable to get local issuer certificate",
        21: "unable to verify the first certificate",
    }.get(err, f"verify error {err}")


class TlsEngine:
    """One TLS session over memory buffers (STARTTLS is a mode switch, as for clients)."""

    def __init__(
        self, ctx: SSL.Context, *, server_side: bool, server_name: str | None = None
    ) -> None:
        self._verdict = _Verdict()
        self.conn = SSL.Connection(ctx, None)
        self.conn.set_app_data(self._verdict)
        if server_side:
            self.conn.set_accept_state()
        else:
            if server_name:
                self.conn.set_tlsext_host_name(server_name.encode("idna"))
            self.conn.set_connect_state()
        self.is_handshaking = True

    def feed(self, data: bytes) -> None:
        """Bytes from the network."""
        self.conn.bio_write(data)

    def handshake(self) -> bool:
        """Advance the handshake; True once complete.

        Raises:
            TlsFailed: the peer's TLS is unacceptable (version, alert, garbage).
        """
        try:
            self.conn.do_handshake()
        except SSL.WantReadError:
            return False
        except SSL.Error as exc:
            raise TlsFailed(str(exc) or "handshake failed") from None
        self.is_handshaking = False
        return True

    def read(self) -> tuple[bytes, bool]:
        """The plaintext available now, and whether the peer closed TLS after it."""
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self.conn.recv(65536)
            except SSL.WantReadError:
                return b"".join(chunks), False
            except SSL.ZeroReturnError:
                return b"".join(chunks), True
            except SSL.Error as exc:
                raise TlsFailed(str(exc) or "TLS error") from None
            chunks.append(chunk)

    def write(self, data: bytes) -> None:
        """Plaintext to encrypt."""
        self.conn.sendall(data)

    def outgoing(self) -> bytes:
        """Ciphertext to send."""
        chunks: list[bytes] = []
        while True:
            try:
                chunks.append(self.conn.bio_read(65536))
            except SSL.WantReadError:
                return b"".join(chunks)

    def shutdown(self) -> None:
        """Send close_notify (best effort)."""
        with contextlib.suppress(SSL.Error):
            self.conn.shutdown()

    def peer(self) -> PeerCertificate | None:
        """The peer's certificate and the verdict on it (None: it sent none)."""
        cert = self.conn.get_peer_certificate()
        if cert is None:
            return None
        return peer_certificate(cert.to_cryptography(), self._verdict.errors)

    @property
    def version(self) -> str:
        """The negotiated protocol (``TLSv1.3``)."""
        return self.conn.get_protocol_version_name()
