"""A local stand-in for a browser's push service (RFC 8030), and the browser's side of RFC 8291.

A real TLS server (HTTP/1.1 with ``h11`` on asyncio) on 127.0.0.1, port 0,
that does what a push service must before it accepts a push message:

- the VAPID token (RFC 8292 §2, §3): ``Authorization: vapid t=<JWT>, k=<key>``
  whose ``k`` is the application server key the browser subscribed with, the
  JWT's ES256 signature verifies with that key, ``aud`` is this server's
  origin, ``exp`` lies in the next 24 hours and ``sub`` is a ``mailto:`` or
  ``https:`` URI;
- ``TTL`` present (RFC 8030 §5.2), ``Content-Encoding: aes128gcm``;

and answers ``201 Created`` with a ``Location`` (RFC 8030 §5), or what a test
scripted for the subscription path (410 Gone, 404, 429 with ``Retry-After``,
500). A request that fails a check gets 400/401/403 and is recorded with its
problems.

:class:`Browser` is the subscriber: it makes the P-256 key pair and the
16-byte authentication secret a user agent makes, and decrypts a push
message body itself (RFC 8291 §3.4, RFC 8188 §2), written here from the RFC
with ``cryptography`` so the server's encryption is checked by a second,
independent implementation.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import ssl
import struct
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import h11
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tests.push.pushserver import make_certificate


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


@dataclass
class Browser:
    """A user agent's push subscription keys (RFC 8291 §2), and decryption of what arrives."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def public(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    @property
    def p256dh(self) -> str:
        return b64url(self.public)

    @property
    def auth_b64(self) -> str:
        return b64url(self.auth)

    def decrypt(self, body: bytes) -> bytes:
        """The plaintext of an ``aes128gcm`` push message body (one record).

        Raises:
            ValueError: Not a well-formed single-record body for our keys.
            cryptography.exceptions.InvalidTag: Encrypted for someone else, or altered.
        """
        # RFC 8188 §2.1: salt (16) | rs (uint32) | idlen (1) | keyid (idlen) | records.
        salt, rs, idlen = body[:16], struct.unpack("!I", body[16:20])[0], body[20]
        sender = body[21 : 21 + idlen]
        records = body[21 + idlen :]
        # RFC 8291 §4: "the 'keyid' parameter MUST contain the sender's public key".
        if idlen != 65 or sender[0] != 4:
            raise ValueError("keyid is not the sender's uncompressed P-256 key")
        if len(records) > rs:
            raise ValueError("more than one record")
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender)
        ecdh = self.key.exchange(ec.ECDH(), peer)
        # RFC 8291 §3.4: key_info = "WebPush: info" || 0x00 || ua_public || as_public.
        ikm = _hkdf(self.auth, ecdh, b"WebPush: info\x00" + self.public + sender, 32)
        cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
        nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
        padded = AESGCM(cek).decrypt(nonce, records, None)
        # RFC 8188 §2: the last record's padding is a 0x02 delimiter and then zeros.
        stripped = padded.rstrip(b"\x00")
        if not stripped.endswith(b"\x02"):
            raise ValueError("no last-record delimiter")
        return stripped[:-1]


@dataclass(frozen=True, slots=True)
class Received:
    """One request the push service received, and what its checks found."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    problems: tuple[str, ...]
    claims: dict[str, object]
    status: int


def _verify_vapid(
    header: str, expected_key: bytes | None, audience: str
) -> tuple[list[str], dict[str, object]]:
    problems: list[str] = []
    if not header.startswith("vapid "):
        return ["authorization is not the vapid scheme"], {}
    params = dict(
        p.strip().split("=", 1) for p in header.removeprefix("vapid ").split(",") if "=" in p
    )
    token, k = params.get("t", ""), params.get("k", "")
    if expected_key is None or unb64url(k) != expected_key:
        problems.append("k is not the application server key the browser subscribed with")
    parts = token.split(".")
    if len(parts) != 3:
        return [*problems, "t is not a compact JWS"], {}
    head = json.loads(unb64url(parts[0]))
    claims: dict[str, object] = json.loads(unb64url(parts[1]))
    if head.get("alg") != "ES256":
        problems.append("alg is not ES256")
    signature = unb64url(parts[2])
    try:
        assert expected_key is not None and len(signature) == 64
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), expected_key)
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        public.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
    except (AssertionError, InvalidSignature, ValueError):
        problems.append("the ES256 signature does not verify with the application server key")
    if claims.get("aud") != audience:
        problems.append(f"aud {claims.get('aud')!r} is not {audience!r}")
    exp = claims.get("exp")
    now = time.time()
    if not isinstance(exp, int) or not now < exp <= now + 24 * 3600:
        problems.append("exp is not within the next 24 hours")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
        problems.append("sub is not a mailto: or https: URI")
    return problems, claims


@dataclass
class WebPushServer:
    """The push service (start with :meth:`start`, stop with :meth:`close`)."""

    folder: Path
    #: The application server key (65 bytes) subscriptions were made with; set by the test.
    application_server_key: bytes | None = None
    received: list[Received] = field(default_factory=list)
    port: int = 0
    cert_file: Path = field(init=False)
    _scripts: dict[str, list[int]] = field(default_factory=dict)
    _server: asyncio.Server | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def endpoint(self, name: str | None = None) -> str:
        """A new push resource URL (what a browser's subscription names)."""
        return f"{self.origin}/push/{name or uuid.uuid4().hex}"

    def script(self, endpoint: str, *statuses: int) -> None:
        """Answer the next requests to ``endpoint`` with these statuses (the last repeats)."""
        self._scripts[endpoint.removeprefix(self.origin)] = list(statuses)

    def _status(self, path: str) -> int:
        answers = self._scripts.get(path)
        if not answers:
            return 201
        return answers.pop(0) if len(answers) > 1 else answers[0]

    async def start(self) -> None:
        """Listen on 127.0.0.1, port 0."""
        self.cert_file, key_file = make_certificate(self.folder, "webpushserver")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_file, key_file)
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0, ssl=ctx)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait until ``count`` requests arrived; all of them."""
        async with asyncio.timeout(timeout):
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(self.received) >= count)
        return list(self.received)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    conn.receive_data(data)
                    if not data:
                        return
                    continue
                if not isinstance(event, h11.Request):
                    return
                request, body = event, b""
                while True:
                    part = conn.next_event()
                    if part is h11.NEED_DATA:
                        conn.receive_data(await reader.read(65536))
                    elif isinstance(part, h11.Data):
                        body += part.data
                    else:
                        break
                status, extra = await self._handle(request, body)
                headers = [("content-length", "0"), *extra]
                writer.write(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
                writer.write(conn.send(h11.EndOfMessage()) or b"")
                await writer.drain()
                conn.start_next_cycle()
        except (ConnectionError, ssl.SSLError, h11.ProtocolError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _handle(self, request: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]]]:
        headers = {k.decode().lower(): v.decode() for k, v in request.headers}
        path = request.target.decode()
        problems, claims = _verify_vapid(
            headers.get("authorization", ""), self.application_server_key, self.origin
        )
        if request.method != b"POST" or not path.startswith("/push/"):
            problems.append("not a POST to a push resource")
        if "ttl" not in headers:
            problems.append("no TTL header (RFC 8030 §5.2)")
        if headers.get("content-encoding") != "aes128gcm":
            problems.append("content-encoding is not aes128gcm")
        status = 400 if problems else self._status(path)
        extra: list[tuple[str, str]] = []
        if status == 201:
            extra.append(("location", f"{self.origin}/message/{uuid.uuid4().hex}"))
        elif status == 429:
            extra.append(("retry-after", "0"))
        async with self._arrived:
            self.received.append(
                Received(
                    method=request.method.decode(),
                    path=path,
                    headers=headers,
                    body=body,
                    problems=tuple(problems),
                    claims=claims,
                    status=status,
                )
            )
            self._arrived.notify_all()
        return status, extra
