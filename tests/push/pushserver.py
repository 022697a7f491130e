"""A local HTTP/2 stand-in for APNs and FCM HTTP v1, speaking their documented contracts.

A real TLS server (``h2`` on asyncio, ALPN ``h2``) on 127.0.0.1, port 0:

- APNs ``POST /3/device/<token>``: checks ``apns-topic``, ``apns-push-type``,
  ``apns-priority`` and the authentication (a client certificate, or an
  ES256 ``authorization: bearer`` token signed by the expected key and key id);
  answers 200 with an ``apns-id`` header, or Apple's error statuses with a
  JSON ``reason`` (400 BadDeviceToken, 410 Unregistered with a timestamp,
  429 TooManyRequests, 500 InternalServerError, 503 ServiceUnavailable,
  403 InvalidProviderToken / MissingProviderToken), or never answers (``hang``).
- FCM ``POST /token`` (the service account's ``token_uri``: the RFC 7523
  JWT-bearer grant, the RS256 assertion checked) and
  ``POST /v1/projects/<id>/messages:send`` (a Bearer token from /token;
  200 with the message ``name``, or Google's error JSON with ``status`` and
  an FcmError ``errorCode``: UNREGISTERED, INVALID_ARGUMENT, QUOTA_EXCEEDED,
  UNAVAILABLE, INTERNAL).

What each device token gets is set per token (:meth:`PushServer.script`), a
list consumed one answer per request (the last one repeats). Every request is
recorded (:attr:`PushServer.requests`) for the tests to assert on.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import time
import urllib.parse
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

OK = "ok"
BAD_TOKEN = "bad-token"  # APNs 400 BadDeviceToken / FCM 400 INVALID_ARGUMENT
UNREGISTERED = "unregistered"  # APNs 410 / FCM 404 UNREGISTERED
THROTTLE = "throttle"  # 429
ERROR = "error"  # 500
UNAVAILABLE = "unavailable"  # 503
HANG = "hang"  # no answer at all

#: The connection-level receive window this server opens (bytes of request bodies in flight).
CONNECTION_WINDOW = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    has_client_cert: bool
    at: float  # time.monotonic() when the read that completed it returned (its arrival)
    parsed_at: float = 0.0  # time.monotonic() once this server had parsed it (HPACK, frames)

    def json(self) -> dict[str, object]:
        """The body as JSON."""
        data = json.loads(self.body)
        assert isinstance(data, dict)
        return data


def _b64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_certificate(
    folder: Path, cn: str, *, issuer: tuple[object, object] | None = None
) -> tuple[Path, Path]:
    """A key and certificate (self-signed, or signed by ``issuer``: (key, cert)); PEM paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=2))
    )
    if issuer is None:
        builder = (
            builder.issuer_name(_name(cn))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        )
        cert = builder.sign(key, hashes.SHA256())
    else:
        issuer_key, issuer_cert = issuer
        assert isinstance(issuer_key, ec.EllipticCurvePrivateKey)
        assert isinstance(issuer_cert, x509.Certificate)
        cert = builder.issuer_name(issuer_cert.subject).sign(issuer_key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_file, key_file = folder / f"{cn}.crt", folder / f"{cn}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key_pem)
    return cert_file, key_file


@dataclass
class PushServer:
    """The fixture server (start with :meth:`start`, stop with :meth:`close`)."""

    folder: Path
    apns_key: ec.EllipticCurvePublicKey | None = None  # token auth: the expected signer
    apns_key_id: str = ""
    client_ca: Path | None = None  # certificate auth: client certificates signed by this
    fcm_key: rsa.RSAPublicKey | None = None
    fcm_project: str = "carewire-test"
    requests: list[Recorded] = field(default_factory=list)
    scripts: dict[str, list[str]] = field(default_factory=dict)
    retry_after: str | None = None
    max_streams: int = 1000  # SETTINGS_MAX_CONCURRENT_STREAMS
    port: int = 0
    cert_file: Path = field(init=False)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _connections: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _closing: asyncio.Event = field(default_factory=asyncio.Event)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    _access_tokens: set[str] = field(default_factory=set)
    _verified_bearers: dict[str, int] = field(default_factory=dict)  # bearer → iat

    @property
    def url(self) -> str:
        """The base URL (``https://127.0.0.1:<port>``)."""
        return f"https://127.0.0.1:{self.port}"

    def script(self, token: str, *answers: str) -> None:
        """What ``token`` gets, one answer per request (the last repeats)."""
        self.scripts[token] = list(answers)

    def _answer(self, token: str) -> str:
        answers = self.scripts.get(token)
        if not answers:
            return OK
        return answers.pop(0) if len(answers) > 1 else answers[0]

    async def start(self) -> None:
        """Listen on 127.0.0.1, port 0."""
        self.cert_file, key_file = make_certificate(self.folder, "pushserver")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_file, key_file)
        ctx.set_alpn_protocols(["h2"])
        if self.client_ca is not None:
            ctx.verify_mode = ssl.CERT_OPTIONAL
            ctx.load_verify_locations(self.client_ca)
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0, ssl=ctx)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening, drop connections, end hanging requests."""
        self._closing.set()
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()  # each connection's read loop ends by itself
        for task in list(self._tasks):
            if task not in self._connections:
                task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        for task in list(self._tasks):
            task.cancel()  # pragma: no cover - a connection that did not notice the close
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Recorded]:
        """Wait until ``count`` push requests (not OAuth) arrived; them."""
        async with asyncio.timeout(timeout):
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(self.pushes()) >= count)
        return self.pushes()

    def pushes(self) -> list[Recorded]:
        """The APNs and FCM send requests, in order."""
        return [r for r in self.requests if r.path != "/token"]

    # -- the HTTP/2 connection --------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._connections.add(task)
        self._writers.add(writer)
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        # APNs allows many streams per connection (h2's default here would be 100).
        conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.max_streams},
        )
        conn.initiate_connection()
        # A connection-level receive window far above HTTP/2's initial 64 KiB, as production
        # servers open (a burst of a few hundred pushes would otherwise wait for this
        # server's WINDOW_UPDATE, i.e. for its own parsing of the burst's first part).
        conn.increment_flow_control_window(CONNECTION_WINDOW)
        writer.write(conn.data_to_send())
        has_cert = writer.get_extra_info("peercert") not in (None, {})
        streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        try:
            while not self._closing.is_set():
                data = await reader.read(1 << 20)  # all that has arrived, at once
                if not data:
                    break
                # A request arrived when the bytes that complete it were read; parsing the
                # chunk (HPACK decoding of up to hundreds of requests, in Python) is this
                # stand-in's own work, so its time is kept apart (``parsed_at``).
                arrived = time.monotonic()
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        streams[event.stream_id] = (
                            {str(k): str(v) for k, v in event.headers or ()},
                            bytearray(),
                        )
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id][1].extend(event.data or b"")
                        conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    elif isinstance(event, h2.events.StreamEnded):
                        # Complete now: the times are taken here, not when its task runs
                        # (after the answers to the requests before it were made).
                        headers, body = streams.pop(event.stream_id)
                        record = Recorded(
                            headers.get(":method", ""),
                            headers.get(":path", ""),
                            headers,
                            bytes(body),
                            has_cert,
                            arrived,
                            time.monotonic(),
                        )
                        self._spawn(self._request(conn, writer, event.stream_id, record))
                writer.write(conn.data_to_send())
        except (
            ConnectionError,
            ssl.SSLError,
            asyncio.IncompleteReadError,
            h2.exceptions.ProtocolError,
        ):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._tasks.discard(task)
            self._connections.discard(task)

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _request(
        self,
        conn: h2.connection.H2Connection,
        writer: asyncio.StreamWriter,
        stream_id: int,
        record: Recorded,
    ) -> None:
        path = record.path
        self.requests.append(record)
        async with self._arrived:
            self._arrived.notify_all()
        answer: dict[str, object] | None
        if path == "/token":
            status, extra, answer = self._token(record.body)
        elif path.startswith("/3/device/"):
            status, extra, answer = self._apns(record)
        elif path.startswith("/v1/projects/"):
            status, extra, answer = self._fcm(record)
        else:
            status, extra, answer = 404, {}, {"reason": "BadPath"}
        if status == 0:
            await self._closing.wait()  # hang: never answer
            return
        payload = json.dumps(answer).encode() if answer is not None else b""
        response = [(":status", str(status)), ("content-type", "application/json"), *extra.items()]
        response.append(("content-length", str(len(payload))))
        conn.send_headers(stream_id, response, end_stream=not payload)
        if payload:
            conn.send_data(stream_id, payload, end_stream=True)
        writer.write(conn.data_to_send())

    # -- APNs ---------------------------------------------------------------------------

    def _apns(self, r: Recorded) -> tuple[int, dict[str, str], dict[str, object] | None]:
        apns_id = r.headers.get("apns-id") or str(uuid.uuid4()).upper()
        ids = {"apns-id": apns_id}
        token = r.path.removeprefix("/3/device/")
        if r.headers.get(":method") != "POST":
            return 405, ids, {"reason": "MethodNotAllowed"}
        auth = self._apns_auth(r)
        if auth:
            return 403, ids, {"reason": auth}
        if not r.headers.get("apns-topic"):
            return 400, ids, {"reason": "MissingTopic"}
        if r.headers.get("apns-push-type") not in ("alert", "background", "voip"):
            return 400, ids, {"reason": "InvalidPushType"}
        if r.headers.get("apns-priority", "10") not in ("1", "5", "10"):
            return 400, ids, {"reason": "BadPriority"}
        if len(r.body) > 4096:
            return 413, ids, {"reason": "PayloadTooLarge"}
        try:
            aps = r.json()["aps"]
        except (ValueError, KeyError, AssertionError):
            return 400, ids, {"reason": "PayloadEmpty"}
        assert isinstance(aps, dict)
        if not all(c in "0123456789abcdefABCDEF" for c in token) or len(token) < 64:
            return 400, ids, {"reason": "BadDeviceToken"}
        answer = self._answer(token)
        if answer == OK:
            return 200, ids, None
        if answer == BAD_TOKEN:
            return 400, ids, {"reason": "BadDeviceToken"}
        if answer == UNREGISTERED:
            return 410, ids, {"reason": "Unregistered", "timestamp": int(time.time() * 1000)}
        extra = dict(ids)
        if self.retry_after is not None:
            extra["retry-after"] = self.retry_after
        if answer == THROTTLE:
            return 429, extra, {"reason": "TooManyRequests"}
        if answer == UNAVAILABLE:
            return 503, extra, {"reason": "ServiceUnavailable"}
        if answer == HANG:
            return 0, {}, None
        return 500, extra, {"reason": "InternalServerError"}

    def _apns_auth(self, r: Recorded) -> str:
        """The 403 reason, or '' when authenticated."""
        if self.apns_key is None:
            return "" if r.has_client_cert else "MissingProviderToken"
        bearer = r.headers.get("authorization", "")
        if not bearer.startswith("bearer "):
            return "MissingProviderToken"
        issued = self._verified_bearers.get(bearer)
        if issued is not None:  # as APNs, a provider token's signature is checked once
            return "ExpiredProviderToken" if abs(time.time() - issued) > 3600 else ""
        try:
            head, claims, sig = bearer.removeprefix("bearer ").split(".")
            header = json.loads(_b64(head))
            raw = _b64(sig)
            der = encode_dss_signature(
                int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
            )
            self.apns_key.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
        except (ValueError, InvalidSignature):
            return "InvalidProviderToken"
        if header.get("alg") != "ES256" or header.get("kid") != self.apns_key_id:
            return "InvalidProviderToken"
        issued = int(json.loads(_b64(claims)).get("iat", 0))
        if abs(time.time() - issued) > 3600:
            return "ExpiredProviderToken"
        self._verified_bearers[bearer] = issued
        return ""

    # -- FCM ----------------------------------------------------------------------------

    def _token(self, body: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
        form = dict(urllib.parse.parse_qsl(body.decode()))
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {}, {"error": "unsupported_grant_type"}
        try:
            head, claims, sig = form.get("assertion", "").split(".")
            assert self.fcm_key is not None
            self.fcm_key.verify(
                _b64(sig), f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            scope = json.loads(_b64(claims)).get("scope", "")
        except (ValueError, InvalidSignature, AssertionError):
            return 400, {}, {"error": "invalid_grant"}
        if "firebase.messaging" not in scope:
            return 400, {}, {"error": "invalid_scope"}
        access = f"ya29.{uuid.uuid4().hex}"
        self._access_tokens.add(access)
        return 200, {}, {"access_token": access, "expires_in": 3599, "token_type": "Bearer"}

    def _fcm(self, r: Recorded) -> tuple[int, dict[str, str], dict[str, object] | None]:
        if r.headers.get("authorization", "").removeprefix("Bearer ") not in self._access_tokens:
            return 401, {}, _fcm_error(401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR")
        if r.path != f"/v1/projects/{self.fcm_project}/messages:send":
            return 404, {}, _fcm_error(404, "NOT_FOUND", None)
        try:
            message = r.json()["message"]
            assert isinstance(message, dict)
            token = str(message["token"])
        except (ValueError, KeyError, AssertionError):
            return 400, {}, _fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT")
        answer = self._answer(token)
        if answer == OK:
            return (
                200,
                {},
                {"name": f"projects/{self.fcm_project}/messages/{uuid.uuid4().int % 10**16}"},
            )
        if answer == BAD_TOKEN:
            return 400, {}, _fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT")
        if answer == UNREGISTERED:
            return 404, {}, _fcm_error(404, "NOT_FOUND", "UNREGISTERED")
        extra = {} if self.retry_after is None else {"retry-after": self.retry_after}
        if answer == THROTTLE:
            return 429, extra, _fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED")
        if answer == UNAVAILABLE:
            return 503, extra, _fcm_error(503, "UNAVAILABLE", "UNAVAILABLE")
        if answer == HANG:
            return 0, {}, None
        return 500, extra, _fcm_error(500, "INTERNAL", "INTERNAL")


def _fcm_error(code: int, status: str, error_code: str | None) -> dict[str, object]:
    error: dict[str, object] = {"code": code, "message": status.lower(), "status": status}
    if error_code is not None:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": error_code,
            }
        ]
    return {"error": error}
