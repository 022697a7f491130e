"""The push app server's sans-IO core: registrations, payloads, provider answers, attempts.

Theory of operation
-------------------
A device registers a provider token (:func:`check_registration`); the app
server gives it a node and a secret. When the XMPP server publishes a
XEP-0357 summary for the node, the app server builds the provider request
(:func:`apns_request`, :func:`fcm_request`) from a :class:`Notification`,
which by construction holds no PHI: a message count, a priority and an
opaque id. Nothing else reaches the provider: the app connects over TLS and
fetches the messages itself.

Each provider answer (or timeout) is an :class:`Outcome`;
:func:`classify_apns` / :func:`classify_fcm` turn it into a :class:`Decision`
and :func:`advance` moves the attempt through its states by the
:data:`TRANSITIONS` table; a pair not in the table is a
:class:`PushStateError` (a bug of ours). :func:`backoff` gives the delay
before a retry (the jitter is an argument, so the function stays pure).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from carewire.errors import CarewireError, ValidationError

__all__ = [
    "TRANSITIONS",
    "AttemptState",
    "Decision",
    "Notification",
    "Outcome",
    "PushPriority",
    "PushService",
    "PushStateError",
    "RegistrationState",
    "advance",
    "apns_request",
    "backoff",
    "check_registration",
    "classify_apns",
    "classify_fcm",
    "fcm_request",
]

#: The generic text a device shows: never a sender, a body or a patient.
ALERT_KEY: Final = "CAREWIRE_NEW_MESSAGES"
_APNS_TOKEN = re.compile(r"[0-9a-fA-F]{64,200}")
_FCM_TOKEN = re.compile(r"[A-Za-z0-9_:\-.]{20,4096}")
_TOPIC = re.compile(r"[A-Za-z0-9.\-]{1,255}")
#: APNs tokens whose rejection means the token is bad for good (Apple's reasons).
_APNS_BAD_TOKEN: Final = frozenset({"BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic"})
#: FCM error codes that mean the token is bad for good.
_FCM_BAD_TOKEN: Final = frozenset({"UNREGISTERED", "INVALID_ARGUMENT"})


class PushStateError(CarewireError):
    """A transition not in :data:`TRANSITIONS` (our bug: the attempt goes to FAILED)."""

    code = "push-state"


class PushService(StrEnum):
    """The push services a device may register with."""

    APNS = "apns"
    FCM = "fcm"


class RegistrationState(StrEnum):
    """A registration is active until its provider rejects its token."""

    ACTIVE = "active"
    INVALID = "invalid"


class PushPriority(StrEnum):
    """How a push asks to be delivered (alerts: Urgent and Critical are urgent)."""

    NORMAL = "normal"
    URGENT = "urgent"


class AttemptState(StrEnum):
    """Where one push is (``push_attempts.state``)."""

    QUEUED = "queued"  # waiting for its first or next try
    SENT = "sent"  # the provider accepted it (terminal)
    FAILED = "failed"  # gave up: attempts exhausted, provider refused us, or our bug (terminal)
    REJECTED = "rejected"  # the token is bad for good; the registration is invalid (terminal)
    SKIPPED = "skipped"  # not sent: notifications disabled for the device (terminal)


class Decision(StrEnum):
    """What an answer (or a check) means for the attempt."""

    DELIVERED = "delivered"
    RETRY = "retry"
    INVALID_TOKEN = "invalid-token"
    PROVIDER_AUTH = "provider-auth"  # 403/401: our certificate or key is refused
    GIVE_UP = "give-up"  # a permanent error that is not the token's
    EXHAUSTED = "exhausted"  # a retry was due, but the attempts are used up
    DISABLED = "disabled"  # Disable Notification, or a wipe pending, for the device


#: (state, decision) → next state. Every pair not listed is a :class:`PushStateError`.
TRANSITIONS: Final[dict[tuple[AttemptState, Decision], AttemptState]] = {
    (AttemptState.QUEUED, Decision.DELIVERED): AttemptState.SENT,
    (AttemptState.QUEUED, Decision.RETRY): AttemptState.QUEUED,
    (AttemptState.QUEUED, Decision.INVALID_TOKEN): AttemptState.REJECTED,
    (AttemptState.QUEUED, Decision.PROVIDER_AUTH): AttemptState.FAILED,
    (AttemptState.QUEUED, Decision.GIVE_UP): AttemptState.FAILED,
    (AttemptState.QUEUED, Decision.EXHAUSTED): AttemptState.FAILED,
    (AttemptState.QUEUED, Decision.DISABLED): AttemptState.SKIPPED,
}


def advance(state: AttemptState, decision: Decision) -> AttemptState:
    """The attempt's next state.

    Raises:
        PushStateError: ``decision`` is not allowed in ``state`` (a terminal state).
    """
    try:
        return TRANSITIONS[(state, decision)]
    except KeyError:
        raise PushStateError(f"no transition from {state} on {decision}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    """What a push says: no sender, no body, no patient — only these three facts."""

    count: int
    priority: PushPriority
    opaque_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """A provider's answer to one request (``status`` 0: no answer in time)."""

    status: int
    reason: str = ""
    provider_id: str = ""  # APNs ``apns-id`` or the FCM message name
    retry_after: float | None = None

    @property
    def is_timeout(self) -> bool:
        """Whether the request got no answer in time (or the connection failed)."""
        return self.status == 0


def check_registration(service: str, token: str, topic: str = "") -> PushService:
    """The service of a registration request whose token (and APNs topic) are well-formed.

    Raises:
        ValidationError: ``unknown-service`` or ``bad-token`` (``code``), naming the fault.
    """
    try:
        known = PushService(service)
    except ValueError:
        raise ValidationError(
            f"unknown push service {service[:32]!r} (apns or fcm)", code="unknown-service"
        ) from None
    pattern = _APNS_TOKEN if known is PushService.APNS else _FCM_TOKEN
    if not pattern.fullmatch(token) or (known is PushService.APNS and len(token) % 2):
        raise ValidationError(f"malformed {known.value} device token", code="bad-token")
    if topic and not _TOPIC.fullmatch(topic):
        raise ValidationError("malformed app id (APNs topic)", code="bad-token")
    return known


def apns_request(
    note: Notification, *, topic: str, urgent_level: str, expiration: int
) -> tuple[dict[str, str], dict[str, object]]:
    """The APNs headers and JSON body of a push (Apple's provider API, ``/3/device/<token>``).

    Args:
        note: What to say.
        topic: The app's bundle id (``apns-topic``).
        urgent_level: ``time-sensitive`` or ``critical`` for urgent pushes.
        expiration: ``apns-expiration`` (UNIX seconds; 0: try once only).
    """
    is_urgent = note.priority is PushPriority.URGENT
    aps: dict[str, object] = {
        "alert": {"loc-key": ALERT_KEY, "loc-args": [str(note.count)]},
        "badge": note.count,
        "sound": "default",
        "mutable-content": 1,
        "interruption-level": urgent_level if is_urgent else "active",
    }
    if is_urgent and urgent_level == "critical":
        aps["sound"] = {"critical": 1, "name": "default", "volume": 1.0}
    headers = {
        "apns-topic": topic,
        "apns-push-type": "alert",
        "apns-priority": "10" if is_urgent else "5",
        "apns-expiration": str(expiration),
        "apns-collapse-id": "carewire",
    }
    body: dict[str, object] = {
        "aps": aps,
        "carewire": {"id": note.opaque_id, "count": note.count, "priority": note.priority.value},
    }
    return headers, body


def fcm_request(note: Notification, token: str, *, ttl: int) -> dict[str, object]:
    """The FCM HTTP v1 ``messages:send`` body: a data message (the app shows the alert)."""
    return {
        "message": {
            "token": token,
            "data": {
                "id": note.opaque_id,
                "count": str(note.count),
                "priority": note.priority.value,
            },
            "android": {
                "priority": "HIGH" if note.priority is PushPriority.URGENT else "NORMAL",
                "ttl": f"{ttl}s",
                "collapse_key": "carewire",
            },
        }
    }


def classify_apns(outcome: Outcome) -> Decision:
    """What an APNs answer means (Apple: "Handling notification responses from APNs")."""
    s = outcome.status
    if s == 200:
        return Decision.DELIVERED
    if outcome.is_timeout or s == 429 or s >= 500:
        return Decision.RETRY
    if s == 410 or (s == 400 and outcome.reason in _APNS_BAD_TOKEN):
        return Decision.INVALID_TOKEN
    if s == 403:
        return Decision.PROVIDER_AUTH
    return Decision.GIVE_UP


def classify_fcm(outcome: Outcome) -> Decision:
    """What an FCM v1 answer means (``reason``: the FcmError ``errorCode`` or the error status)."""
    s = outcome.status
    if s == 200:
        return Decision.DELIVERED
    if outcome.is_timeout or s == 429 or s >= 500:
        return Decision.RETRY
    if outcome.reason in _FCM_BAD_TOKEN or s == 404:
        return Decision.INVALID_TOKEN
    if s in (401, 403):
        return Decision.PROVIDER_AUTH
    return Decision.GIVE_UP


def backoff(
    attempt: int, *, base: float, cap: float, jitter: float, retry_after: float | None
) -> float:
    """Seconds before try ``attempt + 1``: exponential with full jitter, or the provider's wish.

    Args:
        attempt: Tries made so far (1 after the first).
        base: The first delay's ceiling.
        cap: The longest delay.
        jitter: A number in [0, 1) (random in the server, fixed in tests).
        retry_after: The provider's ``Retry-After`` in seconds, honoured when given (capped).
    """
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, cap)
    ceiling = min(cap, base * 2.0 ** max(0, attempt - 1))
    return ceiling / 2 + ceiling / 2 * jitter
