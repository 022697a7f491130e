"""The push app server's settings (``[push]`` in carewire.toml, docs/configuration.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

APNS_PRODUCTION: Final = "https://api.push.apple.com"
APNS_DEVELOPMENT: Final = "https://api.sandbox.push.apple.com"
FCM_ENDPOINT: Final = "https://fcm.googleapis.com"
CERTIFICATE: Final = "certificate"
TOKEN: Final = "token"
URGENT_LEVELS: Final = ("time-sensitive", "critical")


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
class PushSettings:
    """Everything the app server needs.

    Attributes:
        apns: APNs, or None when not configured (registrations for it are refused).
        fcm: FCM, or None when not configured.
        ca_file: Extra trust anchors for the providers' TLS (tests); None: the system's.
        timeout: Seconds each request (and each OAuth token request) may take.
        max_attempts: Tries per push before it is given up.
        retry_base: The first retry's longest delay (seconds); doubled each time …
        retry_cap: … up to this; also the most of a ``Retry-After`` we wait.
        workers: Pushes in flight at once.
        ttl: Seconds a provider should keep trying to reach the device.
    """

    apns: ApnsSettings | None = None
    fcm: FcmSettings | None = None
    ca_file: Path | None = None
    timeout: float = 10.0
    max_attempts: int = 5
    retry_base: float = 1.0
    retry_cap: float = 300.0
    workers: int = 16
    ttl: int = 86_400
