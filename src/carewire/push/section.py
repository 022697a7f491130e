"""The ``[push]`` section of carewire.toml (here because carewire.config is near its size bound).

Read by :func:`carewire.push.settings.settings_from_config`; documented in
docs/configuration.md and docs/push.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class PushSection:
    """[push]: the server's own push app server, APNs, FCM and Web Push (docs/push.md)."""

    enabled: bool = False
    apns: bool = False
    apns_endpoint: str = ""  # empty: production or development as the certificate is flagged
    apns_topic: str = ""  # the app's bundle id
    apns_auth: str = "certificate"  # or "token" (apns_key_file, apns_key_id, apns_team_id)
    apns_certificate: str = "next-gen"  # which uploaded certificate: "legacy" or "next-gen"
    apns_key_file: str = ""  # the .p8 signing key (token auth), relative to the data directory
    apns_key_id: str = ""
    apns_team_id: str = ""
    apns_urgent_level: str = "time-sensitive"  # or "critical" (needs Apple's entitlement)
    fcm: bool = False
    fcm_endpoint: str = "https://fcm.googleapis.com"
    fcm_service_account: str = ""  # the service account JSON, relative to the data directory
    ca_file: str = ""  # extra trust anchors for the providers' TLS; empty: the system's
    timeout: str = "10s"  # each provider request
    max_attempts: int = 5
    retry_base: str = "1s"
    retry_cap: str = "5m"
    workers: int = 16
    ttl: str = "1d"  # how long the provider keeps trying to reach the device
    webpush: bool = False  # Web Push (RFC 8030/8291/8292) to the clinicians' browsers
    webpush_subject: str = ""  # VAPID ``sub``: mailto: or https:; empty: mailto:admin@DOMAIN
    webpush_hosts: tuple[str, ...] = ()  # allowed push service hosts ("*.x" too); empty: any
    webpush_allow_loopback: bool = False  # endpoints on 127.0.0.1/::1 (tests' stand-in)
