"""The push app server's assembly (docs/push.md): its store, providers, device policy; Web Push.

Kept apart from :mod:`carewire.assembly` so that module stays within its size bound.
"""

from __future__ import annotations

from carewire.clock import Clock
from carewire.push.appserver import PushAppServer
from carewire.push.devices import DirectoryDevicePolicy
from carewire.push.providers import build_providers
from carewire.push.settings import PushSettings
from carewire.push.webpush import WebPushService
from carewire.security.audit import AuditTrail
from carewire.storage.push import SqlPushStore
from carewire.storage.webpush import SqlWebPushStore


def push_app_server(
    settings: PushSettings | None,
    store: SqlPushStore,
    clock: Clock,
    *,
    audit: AuditTrail,
    devices: DirectoryDevicePolicy,
) -> PushAppServer | None:
    """The push app server when ``[push]`` is enabled, else None (its workers start later)."""
    if settings is None:
        return None
    return PushAppServer(
        store, build_providers(settings), settings, clock, devices=devices, audit=audit
    )


def web_push_service(
    settings: PushSettings | None,
    store: SqlWebPushStore,
    attempts: SqlPushStore,
    clock: Clock,
    *,
    audit: AuditTrail,
) -> WebPushService | None:
    """Web Push when ``[push] webpush`` is on, else None (its VAPID key made if missing)."""
    if settings is None or settings.webpush is None:
        return None
    return WebPushService(store, settings, clock, attempts=attempts, audit=audit)
