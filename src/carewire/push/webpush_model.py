"""Web Push's sans-IO core: subscriptions checked, payloads without PHI, answers classified.

RFC 8030 (the push protocol: ``TTL``, ``Urgency``, ``Topic``; 201 Created),
RFC 8291 (the subscription's ``p256dh`` and ``auth`` keys), RFC 8292 (the
VAPID claims). A browser subscribes with its push service and hands the
server the subscription (:func:`check_subscription`); a push says only
"new alert" or "new message", a count and an opaque id
(:func:`web_payload`), never a sender, a body or a patient. The answer of
the push service becomes a :class:`~carewire.push.model.Decision`
(:func:`classify_webpush`) like an APNs or FCM answer.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final, Protocol
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from carewire.errors import ValidationError
from carewire.push.model import Decision, Notification, Outcome, PushPriority

__all__ = [
    "VAPID_LIFETIME",
    "NewWebSubscription",
    "WebKind",
    "WebPushStore",
    "WebSubscription",
    "b64url_decode",
    "check_subscription",
    "classify_webpush",
    "origin",
    "push_headers",
    "vapid_claims",
    "web_payload",
]

#: The longest endpoint URL accepted (browsers' are well under 1 KiB).
MAX_ENDPOINT: Final = 2048
#: RFC 8292 §2: "The 'exp' (expiry) claim MUST be included with the time after which the
#: token expires. [...] MUST NOT be more than 24 hours from the time of the request."
VAPID_LIFETIME: Final = 12 * 3600


class WebKind(StrEnum):
    """What a web push announces (the service worker's notification title follows it)."""

    ALERT = "alert"
    MESSAGE = "message"


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSubscription:
    """A browser's push subscription (RFC 8030 §4): where to POST and the keys to encrypt to.

    The endpoint is a capability URL and the keys are the browser's: all three are secrets,
    stored sealed and never logged.
    """

    id: int
    login: str
    endpoint: str
    p256dh: bytes  # the browser's P-256 public key, uncompressed (65 bytes)
    auth: bytes  # the authentication secret (16 bytes)
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class NewWebSubscription:
    """A checked subscription to store."""

    login: str
    endpoint: str
    p256dh: bytes
    auth: bytes
    at: datetime


class WebPushStore(Protocol):
    """Web Push subscriptions, per account (implemented in storage/webpush.py)."""

    async def add(self, new: NewWebSubscription) -> WebSubscription:
        """Store a subscription, replacing any with the same endpoint (of any account).

        Raises:
            NotFoundError: ``new.login`` has no account.
        """

    async def remove(self, login: str, endpoint: str) -> bool:
        """Remove the account's subscription at ``endpoint``; False if it had none."""

    async def remove_id(self, sub_id: int) -> None:
        """Remove a subscription the push service said is gone."""

    async def of(self, login: str) -> list[WebSubscription]:
        """The account's subscriptions, oldest first."""


def b64url_decode(value: str) -> bytes:
    """Base64url with or without padding (browsers send it without).

    Raises:
        ValueError: Not base64url.
    """
    text = value.strip()
    if not text or any(c not in _B64URL for c in text.rstrip("=")):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


_B64URL: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _host_allowed(host: str, *, hosts: tuple[str, ...], allow_loopback: bool) -> str | None:
    """Why ``host`` may not be a push service (None: it may)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    is_loopback = host == "localhost" or (ip is not None and ip.is_loopback)
    if is_loopback and not allow_loopback:
        return "the endpoint may not be a loopback address"
    if ip is not None and not ip.is_global and not is_loopback:
        return "the endpoint may not be a private or reserved address"
    if hosts and not any(
        host == h or (h.startswith("*.") and (host == h[2:] or host.endswith(h[1:]))) for h in hosts
    ):
        return f"push service {host[:64]!r} is not allowed here (push.webpush_hosts)"
    return None


def check_subscription(
    endpoint: str, p256dh: str, auth: str, *, hosts: tuple[str, ...], allow_loopback: bool
) -> tuple[str, bytes, bytes]:
    """The endpoint and the decoded keys of a well-formed subscription.

    Args:
        endpoint: The push resource URL (``PushSubscription.endpoint``).
        p256dh: The browser's public key, base64url (``getKey('p256dh')``).
        auth: The authentication secret, base64url (``getKey('auth')``).
        hosts: Allowed push service hosts (``*.`` for a domain and its subdomains); empty:
            any public host.
        allow_loopback: Whether loopback endpoints are accepted (tests).

    Raises:
        ValidationError: ``bad-endpoint`` or ``bad-key`` (``code``), naming the fault.
    """
    if not endpoint or len(endpoint) > MAX_ENDPOINT:
        raise ValidationError(
            f"the endpoint must be 1 to {MAX_ENDPOINT} characters", code="bad-endpoint"
        )
    try:
        url = urlsplit(endpoint)
        host = (url.hostname or "").lower()
        _ = url.port  # a malformed port raises here
    except ValueError:
        raise ValidationError("the endpoint is not a URL", code="bad-endpoint") from None
    # RFC 8030 §8: "A push service MUST use [...] HTTP over TLS"; the server posts only there.
    if url.scheme != "https" or not host:
        raise ValidationError("the endpoint must be an https:// URL", code="bad-endpoint")
    if url.username is not None or url.password is not None or url.fragment:
        raise ValidationError(
            "the endpoint may not carry credentials or a fragment", code="bad-endpoint"
        )
    refused = _host_allowed(host, hosts=hosts, allow_loopback=allow_loopback)
    if refused is not None:
        raise ValidationError(refused, code="bad-endpoint")
    try:
        key = b64url_decode(p256dh)
        # RFC 8291 §3.2: the key is "an uncompressed point [...] on the P-256 curve".
        if len(key) != 65 or key[0] != 4:
            raise ValueError("not an uncompressed point")
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key)
    except ValueError:
        raise ValidationError(
            "p256dh must be an uncompressed P-256 public key: 65 bytes, base64url",
            code="bad-key",
        ) from None
    try:
        secret = b64url_decode(auth)
    except ValueError:
        secret = b""
    # RFC 8291 §3.2: "the user agent [...] generates a 16-octet authentication secret".
    if len(secret) != 16:
        raise ValidationError("auth must be a 16-byte secret, base64url", code="bad-key")
    return endpoint, key, secret


def origin(endpoint: str) -> str:
    """The endpoint's origin (RFC 8292 §2: the ``aud`` claim), ``https://host[:port]``."""
    url = urlsplit(endpoint)
    return f"{url.scheme}://{url.netloc.rpartition('@')[2]}"


def vapid_claims(endpoint: str, *, subject: str, now: int) -> dict[str, object]:
    """The JWT claims of a VAPID token for ``endpoint`` (RFC 8292 §2), valid 12 hours."""
    return {"aud": origin(endpoint), "exp": now + VAPID_LIFETIME, "sub": subject}


def web_payload(kind: WebKind, note: Notification) -> bytes:
    """The push message (encrypted before it leaves): what happened, how often, an opaque id.

    No sender, no body, no patient: the service worker shows "New alert" or
    "New message" and the web client fetches the rest over TLS once opened.
    """
    data = {"type": kind.value, "count": note.count, "id": note.opaque_id}
    return json.dumps(data, separators=(",", ":")).encode()


def push_headers(kind: WebKind, note: Notification, *, ttl: int) -> dict[str, str]:
    """RFC 8030 headers: ``TTL`` (§5.2), ``Urgency`` (§5.3), ``Topic`` (§5.4).

    Alerts ask for ``high`` urgency; messages ``normal``. The topic per kind lets a
    push still waiting at the push service be replaced by the next one of its kind (it
    carries the newer count), as the phones' collapse id does.
    """
    urgent = kind is WebKind.ALERT or note.priority is PushPriority.URGENT
    return {
        "ttl": str(max(0, ttl)),
        "urgency": "high" if urgent else "normal",
        "topic": f"carewire-{kind.value}",
        "content-encoding": "aes128gcm",
        "content-type": "application/octet-stream",
    }


def classify_webpush(outcome: Outcome) -> Decision:
    """What a push service's answer means (RFC 8030 §5, §6.2, §8.4; RFC 8292 §4)."""
    s = outcome.status
    if s in (200, 201, 202):
        return Decision.DELIVERED
    if outcome.is_timeout or s == 429 or s >= 500:
        return Decision.RETRY
    # RFC 8030 §7.3: "A push service [...] returns a 404 (Not Found) status code" for an
    # expired subscription; 410 (Gone) is what the push services send for one unsubscribed.
    if s in (404, 410):
        return Decision.INVALID_TOKEN
    if s in (401, 403):
        return Decision.PROVIDER_AUTH  # our VAPID token was refused
    return Decision.GIVE_UP
