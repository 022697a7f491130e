"""HTTP/2 clients of the push providers: APNs (certificate or token) and FCM HTTP v1.

Each client turns one push into one request and the answer into an
:class:`~carewire.push.model.Outcome`; a request that takes longer than the
configured timeout, or whose connection fails, is an outcome with status 0
(retried like a 5xx). Classifying outcomes and retrying is the app server's
business (:mod:`.appserver`). Tokens and payloads are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from carewire.errors import ConfigError
from carewire.push import jwt
from carewire.push.h2client import H2Client, Request, Response
from carewire.push.model import (
    Decision,
    Notification,
    Outcome,
    PushService,
    apns_request,
    classify_apns,
    classify_fcm,
    fcm_request,
)
from carewire.push.settings import (
    APNS_DEVELOPMENT,
    APNS_PRODUCTION,
    TOKEN,
    ApnsSettings,
    FcmSettings,
    PushSettings,
)

log = logging.getLogger(__name__)

#: Apple: refresh the provider token no more than once every 20 minutes, at least every 60.
APNS_TOKEN_LIFETIME = 50 * 60
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


#: One push of a batch: device token, notification, topic ('' for the configured one).
Push = tuple[str, Notification, str]


class Provider(Protocol):
    """One push service as the app server uses it."""

    @property
    def service(self) -> PushService:
        """Which service."""

    async def send(self, token: str, note: Notification, *, topic: str) -> Outcome:
        """Send one push; never raises for network trouble (status 0 instead)."""

    async def send_many(self, pushes: Sequence[Push]) -> list[Outcome]:
        """Send many pushes side by side (an alert's); one outcome each, in order."""

    def classify(self, outcome: Outcome) -> Decision:
        """What the answer means."""

    async def close(self) -> None:
        """Release connections."""


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own back-off


def _client(base: ssl.SSLContext, timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(http2=True, verify=base, timeout=timeout, trust_env=False)


def _tls(ca_file: Path | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class ApnsProvider:
    """Apple's HTTP/2 provider API (``POST /3/device/<token>``)."""

    service = PushService.APNS

    def __init__(self, apns: ApnsSettings, settings: PushSettings) -> None:
        self.apns = apns
        self.settings = settings
        self._token: tuple[str, float] | None = None  # (jwt, monotonic issue time)
        self._key: ec.EllipticCurvePrivateKey | None = None
        self._cert_mtime: float | None = None
        self._client: H2Client | None = None
        self._retired: list[H2Client] = []  # clients of replaced certificates
        self._endpoint = apns.endpoint
        if apns.auth == TOKEN:
            self._key = self._load_key()
            self._endpoint = apns.endpoint or APNS_PRODUCTION

    def _load_key(self) -> ec.EllipticCurvePrivateKey:
        if self.apns.key_file is None or not self.apns.key_id or not self.apns.team_id:
            raise ConfigError(
                "push.apns_auth = token needs apns_key_file, apns_key_id, apns_team_id"
            )
        try:
            pem = self.apns.key_file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"push.apns_key_file: {exc.strerror}") from None
        key = jwt.load_key(pem, "push.apns_key_file")
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError("push.apns_key_file: APNs signing keys are P-256 (ES256)")
        return key

    def _certificate(self) -> Path:
        folder = self.apns.certificate_dir
        if folder is None:
            raise ConfigError("push: certificate auth without the certificate manager's folder")
        return folder / f"{self.apns.certificate_slot}.pem"

    def _http(self) -> H2Client:
        """The client; in certificate mode rebuilt when the uploaded certificate changes."""
        if self._key is not None:
            if self._client is None:
                self._client = H2Client(self._endpoint, _tls(self.settings.ca_file))
            return self._client
        pem = self._certificate()
        mtime = pem.stat().st_mtime
        if self._client is None or mtime != self._cert_mtime:
            ctx = _tls(self.settings.ca_file)
            ctx.load_cert_chain(pem)
            if not self.apns.endpoint:
                info = json.loads(pem.with_suffix(".json").read_text(encoding="utf-8"))
                self._endpoint = APNS_PRODUCTION if info.get("production") else APNS_DEVELOPMENT
            if self._client is not None:
                self._retired.append(self._client)  # requests in flight finish on it
            self._client, self._cert_mtime = H2Client(self._endpoint, ctx), mtime
        return self._client

    def bearer(self, now: float) -> str:
        """The provider token, reused for :data:`APNS_TOKEN_LIFETIME` seconds."""
        assert self._key is not None
        if self._token is None or now - self._token[1] >= APNS_TOKEN_LIFETIME:
            claims = {"iss": self.apns.team_id, "iat": int(time.time())}
            self._token = (jwt.es256(self._key, key_id=self.apns.key_id, claims=claims), now)
        return self._token[0]

    def _request(self, token: str, note: Notification, topic: str) -> Request:
        headers, body = apns_request(
            note,
            topic=topic or self.apns.topic,
            urgent_level=self.apns.urgent_level,
            expiration=int(time.time()) + self.settings.ttl,
        )
        if self._key is not None:
            headers["authorization"] = f"bearer {self.bearer(time.monotonic())}"
        headers["content-type"] = "application/json"
        return f"/3/device/{token}", list(headers.items()), json.dumps(body).encode()

    async def send(self, token: str, note: Notification, *, topic: str) -> Outcome:
        """POST the push; status 0 when it times out or the connection fails."""
        (outcome,) = await self.send_many([(token, note, topic)])
        return outcome

    async def send_many(self, pushes: Sequence[Push]) -> list[Outcome]:
        """POST the pushes over one connection, all at once; status 0 for those that failed."""
        try:
            client = self._http()
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.error("APNs: the push certificate cannot be used: %s", type(exc).__name__)
            return [Outcome(status=403, reason="CertificateUnavailable")] * len(pushes)
        answers = await client.request_many(
            "POST", [self._request(*p) for p in pushes], timeout=self.settings.timeout
        )
        return [_apns_outcome(a) for a in answers]

    def classify(self, outcome: Outcome) -> Decision:
        """Apple's status codes and reasons."""
        return classify_apns(outcome)

    async def close(self) -> None:
        """Close the connections."""
        clients, self._retired = self._retired, []
        if self._client is not None:
            clients.append(self._client)
            self._client = None
        for client in clients:
            await client.aclose()


def _apns_outcome(answer: Response | Exception) -> Outcome:
    if isinstance(answer, Exception):
        log.info("APNs request failed: %s", type(answer).__name__)
        return Outcome(status=0, reason=type(answer).__name__)
    return Outcome(
        status=answer.status,
        reason=_json_field(answer.body, "reason") if answer.status != 200 else "",
        provider_id=answer.headers.get("apns-id", ""),
        retry_after=_retry_after(answer.headers),
    )


class FcmProvider:
    """Firebase Cloud Messaging HTTP v1 (``POST /v1/projects/<id>/messages:send``)."""

    service = PushService.FCM

    def __init__(self, fcm: FcmSettings, settings: PushSettings) -> None:
        self.fcm = fcm
        self.settings = settings
        try:
            account = json.loads(fcm.service_account_file.read_text(encoding="utf-8"))
            self.project = str(account["project_id"])
            self.client_email = str(account["client_email"])
            self.token_uri = str(account["token_uri"])
            key = jwt.load_key(str(account["private_key"]).encode(), "push.fcm_service_account")
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"push.fcm_service_account: unusable ({type(exc).__name__})"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError("push.fcm_service_account: the private key must be RSA")
        self._key = key
        self._access: tuple[str, float] | None = None  # (token, monotonic expiry)
        self._lock = asyncio.Lock()
        self._client = _client(_tls(settings.ca_file), settings.timeout)  # the token endpoint
        self._sender = H2Client(fcm.endpoint, _tls(settings.ca_file))  # the sends
        self._path = f"{urlsplit(fcm.endpoint).path.rstrip('/')}/v1/projects/{self.project}"

    async def access_token(self) -> str:
        """An OAuth 2.0 access token (RFC 7523 JWT-bearer grant), renewed a minute early.

        Raises:
            httpx.HTTPError, TimeoutError, ValueError: the token endpoint failed.
        """
        async with self._lock:
            now = time.monotonic()
            if self._access is not None and now < self._access[1]:
                return self._access[0]
            issued = int(time.time())
            claims = {
                "iss": self.client_email,
                "scope": FCM_SCOPE,
                "aud": self.token_uri,
                "iat": issued,
                "exp": issued + 3600,
            }
            assertion = jwt.rs256(self._key, claims=claims)
            async with asyncio.timeout(self.settings.timeout):
                response = await self._client.post(
                    self.token_uri, data={"grant_type": JWT_BEARER, "assertion": assertion}
                )
            response.raise_for_status()
            answer = response.json()
            token, lifetime = str(answer["access_token"]), float(answer.get("expires_in", 3600))
            self._access = (token, now + max(0.0, lifetime - 60))
            return token

    async def send(self, token: str, note: Notification, *, topic: str) -> Outcome:
        """POST the push; status 0 when it times out or the connection fails."""
        try:
            bearer = await self.access_token()
        except httpx.HTTPStatusError as exc:
            log.error(
                "FCM: the token endpoint refused the service account (%d)", exc.response.status_code
            )
            return Outcome(status=401, reason="UNAUTHENTICATED")
        except (TimeoutError, httpx.HTTPError, ValueError, KeyError, OSError) as exc:
            log.info("FCM token request failed: %s", type(exc).__name__)
            return Outcome(status=0, reason=type(exc).__name__)
        body = fcm_request(note, token, ttl=self.settings.ttl)
        try:
            async with asyncio.timeout(self.settings.timeout):
                response = await self._sender.request(
                    "POST",
                    f"{self._path}/messages:send",
                    headers=[
                        ("authorization", f"Bearer {bearer}"),
                        ("content-type", "application/json"),
                    ],
                    body=json.dumps(body).encode(),
                )
        except (TimeoutError, ssl.SSLError, OSError) as exc:  # ConnectionError is an OSError
            log.info("FCM request failed: %s", type(exc).__name__)
            return Outcome(status=0, reason=type(exc).__name__)
        if response.status == 200:
            name = _json_field(response.body, "name")
            return Outcome(status=200, provider_id=name)
        if response.status == 401:
            self._access = None  # the token may have been revoked: fetch a new one next time
        return Outcome(
            status=response.status,
            reason=_fcm_error(response.body),
            retry_after=_retry_after(response.headers),
        )

    async def send_many(self, pushes: Sequence[Push]) -> list[Outcome]:
        """The pushes side by side (their requests share the connection's writes)."""
        return list(await asyncio.gather(*(self.send(t, n, topic=p) for t, n, p in pushes)))

    def classify(self, outcome: Outcome) -> Decision:
        """FCM's status codes and error codes."""
        return classify_fcm(outcome)

    async def close(self) -> None:
        """Close the connections."""
        await self._sender.aclose()
        await self._client.aclose()


def _json_field(content: bytes, name: str) -> str:
    try:
        data = json.loads(content)
    except ValueError:
        return ""
    value = data.get(name) if isinstance(data, dict) else None
    return str(value)[:128] if value is not None else ""


def _fcm_error(content: bytes) -> str:
    """The FcmError ``errorCode`` of an error answer, else its ``status``."""
    try:
        error = json.loads(content).get("error", {})
    except (ValueError, AttributeError):
        return ""
    if not isinstance(error, Mapping):
        return ""
    for detail in error.get("details", ()):
        if isinstance(detail, Mapping) and "errorCode" in detail:
            return str(detail["errorCode"])[:128]
    return str(error.get("status", ""))[:128]


def build_providers(settings: PushSettings) -> dict[PushService, Provider]:
    """The configured providers.

    Raises:
        ConfigError: A provider's key or service account cannot be used.
    """
    found: dict[PushService, Provider] = {}
    if settings.apns is not None:
        found[PushService.APNS] = ApnsProvider(settings.apns, settings)
    if settings.fcm is not None:
        found[PushService.FCM] = FcmProvider(settings.fcm, settings)
    return found
