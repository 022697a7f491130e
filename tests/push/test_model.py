"""The push core without an event loop: registrations, payloads, answers, states, back-off."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carewire.errors import ValidationError
from carewire.push.model import (
    TRANSITIONS,
    AttemptState,
    Decision,
    Notification,
    Outcome,
    PushPriority,
    PushService,
    PushStateError,
    advance,
    apns_request,
    backoff,
    check_registration,
    classify_apns,
    classify_fcm,
    fcm_request,
)

NOTE = Notification(count=3, priority=PushPriority.NORMAL, opaque_id="9f1c")


def test_registration_checks() -> None:
    assert check_registration("apns", "ab" * 32) is PushService.APNS
    assert check_registration("fcm", "d1:APA91b" + "x" * 30) is PushService.FCM
    with pytest.raises(ValidationError, match="unknown push service 'gcm'") as err:
        check_registration("gcm", "ab" * 32)
    assert err.value.code == "unknown-service"
    for service, token in [
        ("apns", "zz" * 32),  # not hex
        ("apns", "ab" * 31 + "a"),  # odd length
        ("apns", "ab" * 8),  # too short
        ("fcm", "short"),
        ("fcm", "has space" * 5),
        ("fcm", "x" * 4097),
    ]:
        with pytest.raises(ValidationError, match=f"malformed {service} device token") as bad:
            check_registration(service, token)
        assert bad.value.code == "bad-token"
    with pytest.raises(ValidationError, match="malformed app id"):
        check_registration("apns", "ab" * 32, "bad topic!")


def test_payloads_hold_only_count_priority_and_id() -> None:
    headers, body = apns_request(NOTE, topic="org.x", urgent_level="critical", expiration=7)
    assert headers == {
        "apns-topic": "org.x",
        "apns-push-type": "alert",
        "apns-priority": "5",
        "apns-expiration": "7",
        "apns-collapse-id": "carewire",
    }
    assert body["carewire"] == {"id": "9f1c", "count": 3, "priority": "normal"}
    aps = body["aps"]
    assert isinstance(aps, dict) and aps["interruption-level"] == "active" and aps["badge"] == 3
    urgent = Notification(count=1, priority=PushPriority.URGENT, opaque_id="x")
    headers, body = apns_request(urgent, topic="org.x", urgent_level="critical", expiration=0)
    aps = body["aps"]
    assert isinstance(aps, dict)
    assert headers["apns-priority"] == "10" and aps["interruption-level"] == "critical"
    assert aps["sound"] == {"critical": 1, "name": "default", "volume": 1.0}
    fcm = fcm_request(urgent, "tok", ttl=60)
    assert json.loads(json.dumps(fcm))["message"]["android"]["priority"] == "HIGH"


def test_apns_answers() -> None:
    def c(status: int, reason: str = "") -> Decision:
        return classify_apns(Outcome(status=status, reason=reason))

    assert c(200) is Decision.DELIVERED
    assert c(400, "BadDeviceToken") is Decision.INVALID_TOKEN
    assert c(400, "DeviceTokenNotForTopic") is Decision.INVALID_TOKEN
    assert c(410, "Unregistered") is Decision.INVALID_TOKEN
    assert c(400, "BadPriority") is Decision.GIVE_UP
    assert c(413, "PayloadTooLarge") is Decision.GIVE_UP
    assert c(403, "InvalidProviderToken") is Decision.PROVIDER_AUTH
    for status in (0, 429, 500, 503):
        assert c(status) is Decision.RETRY


def test_fcm_answers() -> None:
    def c(status: int, reason: str = "") -> Decision:
        return classify_fcm(Outcome(status=status, reason=reason))

    assert c(200) is Decision.DELIVERED
    assert c(404, "UNREGISTERED") is Decision.INVALID_TOKEN
    assert c(400, "INVALID_ARGUMENT") is Decision.INVALID_TOKEN
    assert c(401, "THIRD_PARTY_AUTH_ERROR") is Decision.PROVIDER_AUTH
    assert c(403, "SENDER_ID_MISMATCH") is Decision.PROVIDER_AUTH
    assert c(400, "") is Decision.GIVE_UP
    for status in (0, 429, 500, 503):
        assert c(status) is Decision.RETRY


@given(st.sampled_from(AttemptState), st.sampled_from(Decision))
def test_every_state_and_decision(state: AttemptState, decision: Decision) -> None:
    if (state, decision) in TRANSITIONS:
        assert advance(state, decision) is TRANSITIONS[(state, decision)]
    else:
        assert state is not AttemptState.QUEUED  # only QUEUED moves on
        with pytest.raises(PushStateError):
            advance(state, decision)


def test_only_a_retry_stays_queued() -> None:
    stays = [d for d in Decision if advance(AttemptState.QUEUED, d) is AttemptState.QUEUED]
    assert stays == [Decision.RETRY]


@given(st.integers(1, 30), st.floats(0, 0.999))
def test_backoff_is_bounded_and_grows(attempt: int, jitter: float) -> None:
    delay = backoff(attempt, base=1.0, cap=60.0, jitter=jitter, retry_after=None)
    ceiling = min(60.0, 2.0 ** (attempt - 1))
    assert ceiling / 2 <= delay <= ceiling


def test_backoff_honours_retry_after_up_to_the_cap() -> None:
    assert backoff(1, base=1.0, cap=60.0, jitter=0.5, retry_after=7.0) == 7.0
    assert backoff(1, base=1.0, cap=60.0, jitter=0.5, retry_after=3600.0) == 60.0
