"""The push app server's settings (``[push]`` in carewire.toml, docs/configuration.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from carewire.config import Config, parse_duration
from carewire.errors import ConfigError

APNS_PRODUCTION: Final = "https://api.push.apple.com"
APNS_DEVELOPMENT: Final = "https://api.sandbox.push.apple.com"
FCM_ENDPOINT: Final = "https://fcm.googleapis.com"
CERTIFICATE: Final = "certificate"
TOKEN: Final = "token"
URGENT_LEVELS: Final = ("time-sensitive", "critical")
#: Where the certificate manager keeps uploaded push certificates (security/cert_manager.py).
APNS_CERTIFICATE_DIR: Final = "certs/apns"
#: The VAPID signing key (RFC 8292), made by ``carewire init`` or at the first start.
VAPID_KEY_FILE: Final = "keys/vapid.pem"


@dataclass(frozen=True, slots=True, kw_only=True)
class ApnsSettings:
    """APNs: where, for which app, and how the server authenticates.

    Attributes:
        endpoint: The provider API's base URL; empty: production or development as the
            uploaded certificate is flagged (token auth: production).
        topic: The app's bundle id (``apns-topic``) unless a registration names its own.
        auth: ``certificate`` (the certificate uploaded in the certificate manager) or
            ``token`` (an ES256 signing key, ``key_id`` and ``team_id``).
        certificate_dir: Where the certificate manager keeps the uploaded certificates.
        certificate_slot: Which of them: ``legacy`` or ``next-gen``.
        key_file: The ``.p8`` signing key (token auth).
        key_id: Its key id (token auth).
        team_id: The developer team id (token auth).
        urgent_level: ``interruption-level`` of urgent pushes: ``time-sensitive`` or
            ``critical`` (the latter needs Apple's critical-alerts entitlement).
    """

    endpoint: str = ""
    topic: str = ""
    auth: str = CERTIFICATE
    certificate_dir: Path | None = None
    certificate_slot: str = "next-gen"
    key_file: Path | None = None
    key_id: str = ""
    team_id: str = ""
    urgent_level: str = "time-sensitive"


@dataclass(frozen=True, slots=True, kw_only=True)
class FcmSettings:
    """FCM HTTP v1: the service account (its JSON names the project and the token URI)."""

    service_account_file: Path
    endpoint: str = FCM_ENDPOINT


@dataclass(frozen=True, slots=True, kw_only=True)
class WebPushSettings:
    """Web Push (RFC 8030, RFC 8291, RFC 8292) to the clinicians' browsers.

    Attributes:
        key_file: The VAPID key (P-256 PEM, 0600), created when missing.
        subject: The VAPID ``sub`` claim: a ``mailto:`` or ``https:`` contact.
        hosts: The push service hosts subscriptions may name (``*.example`` for a domain
            and its subdomains); empty: any public host.
        allow_loopback: Whether endpoints on loopback addresses are accepted (tests).
    """

    key_file: Path
    subject: str
    hosts: tuple[str, ...] = ()
    allow_loopback: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PushSettings:
    """Everything the app server needs.

    Attributes:
        apns: APNs, or None when not configured (registrations for it are refused).
        fcm: FCM, or None when not configured.
        webpush: Web Push, or None when not configured.
        ca_file: Extra trust anchors for the providers' TLS (tests); None: the system's.
        timeout: Seconds each request (and each OAuth token request) may take.
        max_attempts: Tries per push before it is given up.
        retry_base: The first retry's longest delay (seconds); doubled each time …
        retry_cap: … up to this; also the most of a ``Retry-After`` we wait.
        workers: Retries in flight at once (first tries leave in batches as they are raised).
        ttl: Seconds a provider should keep trying to reach the device.
    """

    apns: ApnsSettings | None = None
    fcm: FcmSettings | None = None
    webpush: WebPushSettings | None = None
    ca_file: Path | None = None
    timeout: float = 10.0
    max_attempts: int = 5
    retry_base: float = 1.0
    retry_cap: float = 300.0
    workers: int = 16
    ttl: int = 86_400


def settings_from_config(cfg: Config) -> PushSettings | None:
    """The app server's settings from ``[push]``; None when push is not enabled.

    Raises:
        ConfigError: A setting out of range or a required one missing.
    """
    p = cfg.push
    if not p.enabled:
        return None
    if not (p.apns or p.fcm or p.webpush):
        raise ConfigError("push.enabled: enable push.apns, push.fcm, push.webpush or several")
    apns = None
    if p.apns:
        if p.apns_auth not in (CERTIFICATE, TOKEN):
            raise ConfigError(f"push.apns_auth: 'certificate' or 'token', got {p.apns_auth!r}")
        if p.apns_urgent_level not in URGENT_LEVELS:
            raise ConfigError("push.apns_urgent_level: 'time-sensitive' or 'critical'")
        if p.apns_certificate not in ("legacy", "next-gen"):
            raise ConfigError("push.apns_certificate: 'legacy' or 'next-gen'")
        if not p.apns_topic:
            raise ConfigError("push.apns_topic: the app's bundle id is required")
        apns = ApnsSettings(
            endpoint=p.apns_endpoint.rstrip("/"),
            topic=p.apns_topic,
            auth=p.apns_auth,
            certificate_dir=cfg.data_dir / APNS_CERTIFICATE_DIR,
            certificate_slot=p.apns_certificate,
            key_file=cfg.data_dir / p.apns_key_file if p.apns_key_file else None,
            key_id=p.apns_key_id,
            team_id=p.apns_team_id,
            urgent_level=p.apns_urgent_level,
        )
    fcm = None
    if p.fcm:
        if not p.fcm_service_account:
            raise ConfigError("push.fcm_service_account: the service account JSON is required")
        fcm = FcmSettings(
            service_account_file=cfg.data_dir / p.fcm_service_account,
            endpoint=p.fcm_endpoint.rstrip("/"),
        )
    webpush = None
    if p.webpush:
        subject = p.webpush_subject or f"mailto:admin@{cfg.server.domain}"
        if not subject.startswith(("mailto:", "https://")):
            raise ConfigError("push.webpush_subject: a mailto: or https:// contact (RFC 8292 §2.1)")
        webpush = WebPushSettings(
            key_file=cfg.data_dir / VAPID_KEY_FILE,
            subject=subject,
            hosts=tuple(h.lower() for h in p.webpush_hosts),
            allow_loopback=p.webpush_allow_loopback,
        )
    if not 1 <= p.max_attempts <= 20:
        raise ConfigError("push.max_attempts: must be between 1 and 20")
    if not 1 <= p.workers <= 256:
        raise ConfigError("push.workers: must be between 1 and 256")
    return PushSettings(
        apns=apns,
        fcm=fcm,
        webpush=webpush,
        ca_file=cfg.data_dir / p.ca_file if p.ca_file else None,
        timeout=parse_duration(p.timeout, "push.timeout").total_seconds(),
        max_attempts=p.max_attempts,
        retry_base=parse_duration(p.retry_base, "push.retry_base").total_seconds(),
        retry_cap=parse_duration(p.retry_cap, "push.retry_cap").total_seconds(),
        workers=p.workers,
        ttl=int(parse_duration(p.ttl, "push.ttl").total_seconds()),
    )
